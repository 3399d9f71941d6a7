package standing

import "github.com/prometheus/client_golang/prometheus"

// descs are the metrics a Monitor exports, all labelled by endpoint (the
// name given to Middleware).
type descs struct {
	state, window, slowRatio, timeoutRatio, failedRatio, responses *prometheus.Desc
}

func newDescs() descs {
	// desc is a metric labelled by endpoint and labels.
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"endpoint"}, labels...), nil)
	}
	return descs{
		state: desc("graphhook_standing_state",
			"The state Graph would put the endpoint in now: 1 for the current state (normal, slow, drop), 0 for the others.", "state"),
		window: desc("graphhook_standing_window_responses",
			"Delivery requests in Graph's rolling throttling window (10 minutes)."),
		slowRatio: desc("graphhook_standing_slow_ratio",
			"Share of delivery requests in the window answered after 3 s or given up on by the client; Graph marks the endpoint slow above 0.10."),
		timeoutRatio: desc("graphhook_standing_timeout_ratio",
			"Share of delivery requests in the window that exceeded Graph's 10 s retry budget; Graph drops notifications above 0.15."),
		failedRatio: desc("graphhook_standing_failed_ratio",
			"Share of delivery requests in the window answered other than 2xx or given up on; Graph redelivers them."),
		responses: desc("graphhook_standing_responses_total",
			"Delivery requests observed, by class: all, slow (over 3 s or given up on), timed_out (over 10 s), failed (not 2xx or given up on).", "class"),
	}
}

// Describe implements [prometheus.Collector].
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.desc.state, m.desc.window, m.desc.slowRatio, m.desc.timeoutRatio, m.desc.failedRatio, m.desc.responses} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]; the values are those of
// [Monitor.Snapshot] at scrape time.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc.responses, prometheus.CounterValue, float64(v), labels...)
	}
	for _, e := range m.Snapshot().Endpoints {
		for _, st := range []State{StateNormal, StateSlow, StateDrop} {
			v := 0.0
			if e.State == st {
				v = 1
			}
			gauge(m.desc.state, v, e.Name, string(st))
		}
		gauge(m.desc.window, float64(e.Responses), e.Name)
		gauge(m.desc.slowRatio, e.SlowRatio, e.Name)
		gauge(m.desc.timeoutRatio, e.TimedOutRatio, e.Name)
		gauge(m.desc.failedRatio, e.FailedRatio, e.Name)
		counter(e.Total.Responses, e.Name, "all")
		counter(e.Total.Slow, e.Name, "slow")
		counter(e.Total.TimedOut, e.Name, "timed_out")
		counter(e.Total.Failed, e.Name, "failed")
	}
}
