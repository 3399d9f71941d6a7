package subscriptions

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	expiry        *prometheus.GaugeVec   // subscription_id, resource
	actions       *prometheus.CounterVec // action, outcome
	lifecycle     *prometheus.CounterVec // event, outcome
	permanent     *prometheus.GaugeVec   // resource
	gaps          *prometheus.CounterVec // reason
	leaseHeld     prometheus.Gauge
	publishErrors prometheus.Counter
}

func newMetrics(instance string) metrics {
	return metrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "graphhook_subscription_expiry_seconds",
			Help: "Seconds until the subscription expires (negative: lapsed).",
		}, []string{"subscription_id", "resource"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphhook_subscription_actions_total",
			Help: "Subscription manager actions (create, renew, recreate, adopt, delete, rotate_certificate, resync, ...) by outcome.",
		}, []string{"action", "outcome"}),
		lifecycle: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphhook_subscription_lifecycle_events_total",
			Help: "Lifecycle events acted on, by event and outcome.",
		}, []string{"event", "outcome"}),
		permanent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "graphhook_subscription_permanent_failures",
			Help: "Desired subscriptions stopped after a permanent failure (403, 404 MailboxNotEnabledForRESTAPI), by resource.",
		}, []string{"resource"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphhook_subscription_gaps_total",
			Help: "Gap events published, by reason.",
		}, []string{"reason"}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "graphhook_subscription_lease_held",
			Help:        "1 while this replica holds the renewal lease.",
			ConstLabels: prometheus.Labels{"instance_id": instance},
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "graphhook_subscription_event_publish_errors_total",
			Help: "Events or gaps that could not be published.",
		}),
	}
}

// Collectors returns the Manager's Prometheus collectors, for the daemon to
// register:
//
//	graphhook_subscription_expiry_seconds{subscription_id,resource}
//	graphhook_subscription_actions_total{action,outcome}
//	graphhook_subscription_lifecycle_events_total{event,outcome}
//	graphhook_subscription_permanent_failures{resource}
//	graphhook_subscription_gaps_total{reason}
//	graphhook_subscription_lease_held{instance_id}
//	graphhook_subscription_event_publish_errors_total
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.met.expiry, m.met.actions, m.met.lifecycle, m.met.permanent, m.met.gaps, m.met.leaseHeld, m.met.publishErrors}
}
