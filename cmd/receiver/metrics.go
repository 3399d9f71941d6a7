package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/standing"
)

// metrics holds the receiver's Prometheus metrics, on a private registry.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // endpoint, code
	duration *prometheus.HistogramVec // endpoint

	// Per-request label lookups cost a hash and a lock in the vector
	// (and a sync.Map key boxed in an interface, an allocation): each
	// endpoint's series are resolved once and kept here, read without a
	// lock; the map is not written after newMetrics.
	endpoints map[string]*endpointMetrics
	inFlight  prometheus.Gauge
	publish   *prometheus.HistogramVec // outcome
	shed      *prometheus.CounterVec   // reason
}

// newMetrics registers the HTTP and process metrics. The receiver's and
// publisher's counters are added by registerStats once they exist.
func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphhook_http_requests_total",
			Help: "HTTP requests answered, by endpoint (notifications, lifecycle, healthz, readyz, metrics, other) and status code.",
		}, []string{"endpoint", "code"}),
		duration: latencyVec("graphhook_request_duration_seconds",
			"Time to answer an HTTP request, by endpoint. Graph counts answers over 3 s as failed.", "endpoint"),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "graphhook_http_requests_in_flight",
			Help: "HTTP requests being handled now.",
		}),
		publish: latencyVec("graphhook_publish_duration_seconds",
			"Time to publish one batch to JetStream and receive every acknowledgement, by outcome (ok, error).", "outcome"),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphhook_requests_shed_total",
			Help: "Requests answered 503 with Retry-After before their body was read, by reason: budget (--max-inflight-bytes was reached). Graph redelivers them.",
		}, []string{"reason"}),
	}
	m.shed.WithLabelValues("budget")
	m.endpoints = map[string]*endpointMetrics{}
	for _, ep := range []string{"notifications", "lifecycle", "healthz", "readyz", "metrics", "status", "other"} { // see daemon.endpoint
		m.endpoints[ep] = &endpointMetrics{duration: m.duration.WithLabelValues(ep)}
	}
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.publish, m.shed,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "graphhook_build_info",
			Help:        "Always 1; the version label is the receiver's version.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
	)
	return m
}

// latencyVec returns a histogram of seconds by label, in the buckets
// Graph's deadlines make meaningful (standing.Buckets).
func latencyVec(name, help, label string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: standing.Buckets()}, []string{label})
}

// endpointMetrics are one endpoint's series, resolved once.
type endpointMetrics struct {
	duration prometheus.Observer
	// codes holds the requests counter of each status code from 100 to
	// 599, resolved at the code's first answer (a series appears only
	// once it counts something).
	codes [500]atomic.Pointer[prometheus.Counter]
}

// observe records one answered request of endpoint, a name
// daemon.endpoint returns.
func (m *metrics) observe(endpoint string, code int, d time.Duration) {
	em := m.endpoints[endpoint]
	em.duration.Observe(d.Seconds())
	if code < 100 || code > 599 {
		m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
		return
	}
	p := &em.codes[code-100]
	c := p.Load()
	if c == nil {
		// Two first answers may race here; both resolve the same series.
		counter := m.requests.WithLabelValues(endpoint, strconv.Itoa(code))
		c = &counter
		p.Store(c)
	}
	(*c).Inc()
}

// timedSink wraps a Sink and records each Deliver's latency, and the
// batch's counts for the access log line.
func (m *metrics) timedSink(s receiver.Sink) receiver.Sink {
	return receiver.SinkFunc(func(ctx context.Context, b *receiver.Batch) error {
		if note := noteOf(ctx); note != nil {
			note.accepted.Store(int64(len(b.Notifications)))
			note.rejected.Store(int64(len(b.Rejected)))
			note.delivered.Store(true)
		}
		start := time.Now()
		err := s.Deliver(ctx, b)
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		m.publish.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
		return err
	})
}

// registerStats exposes the receiver's and the publisher's counters.
func (m *metrics) registerStats(r *receiver.Receiver, p *natspub.Publisher) error {
	return m.reg.Register(newStatsCollector(r, p))
}

// statsCollector reads the counters the receiver and publisher keep
// themselves, at scrape time.
type statsCollector struct {
	rcv *receiver.Receiver
	pub *natspub.Publisher

	notifications, batches, handshakes, quarantined, quarantineDuplicates, quarantineDropped, publishFailures *prometheus.Desc
}

func newStatsCollector(r *receiver.Receiver, p *natspub.Publisher) *statsCollector {
	return &statsCollector{
		rcv: r,
		pub: p,
		notifications: prometheus.NewDesc("graphhook_notifications_total",
			"Notifications received, by outcome: published (accepted and in the stream: stored plus duplicate), "+
				"stored (new events the stream stored; agrees with the stream), "+
				"duplicate (a redelivery the stream already had), "+
				"client_state (forged or unknown clientState), token_invalid, token_missing (bad or missing validationTokens), "+
				"decrypt (encryptedContent failed verification or decryption), malformed. Rejected items go to the quarantine stream.",
			[]string{"outcome"}, nil),
		batches: prometheus.NewDesc("graphhook_batches_total",
			"Notification requests, by outcome: accepted (202), invalid (4xx), unavailable (503, Graph redelivers).",
			[]string{"outcome"}, nil),
		handshakes: prometheus.NewDesc("graphhook_handshakes_total",
			"Validation handshakes answered.", nil, nil),
		quarantined: prometheus.NewDesc("graphhook_quarantined_total",
			"Rejected items stored in the quarantine streams (new to their stream).", nil, nil),
		quarantineDuplicates: prometheus.NewDesc("graphhook_quarantine_duplicates_total",
			"Rejected items in a quarantine message its stream already had (a redelivery rejected again).", nil, nil),
		quarantineDropped: prometheus.NewDesc("graphhook_quarantine_dropped_total",
			"Rejected items anyone can cause (wrong clientState, malformed) that the unverified stream refused because it was full; the request was still answered 202.", nil, nil),
		publishFailures: prometheus.NewDesc("graphhook_publish_failures_total",
			"Batches that could not be stored in JetStream (answered 503).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.notifications, c.batches, c.handshakes, c.quarantined, c.quarantineDuplicates, c.quarantineDropped, c.publishFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	rs := c.rcv.Stats()
	ps := c.pub.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.notifications, rs.Accepted, "published")
	counter(c.notifications, ps.Stored, "stored")
	counter(c.notifications, ps.Duplicates, "duplicate")
	for _, r := range []receiver.Reason{
		receiver.ReasonClientState, receiver.ReasonTokenInvalid, receiver.ReasonTokenMissing,
		receiver.ReasonDecrypt, receiver.ReasonMalformed,
	} {
		counter(c.notifications, rs.Rejected[r], string(r))
	}
	counter(c.batches, rs.Batches, "accepted")
	counter(c.batches, rs.Invalid, "invalid")
	counter(c.batches, rs.Unavailable, "unavailable")
	counter(c.handshakes, rs.Handshakes)
	counter(c.quarantined, ps.Quarantined)
	counter(c.quarantineDuplicates, ps.QuarantineDuplicates)
	counter(c.quarantineDropped, ps.UnverifiedDropped)
	counter(c.publishFailures, ps.Failed)
}
