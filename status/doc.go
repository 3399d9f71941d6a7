// Package status renders graphhook's operator status page: one snapshot of
// what an operator asks first — are my subscriptions alive, is Graph about to
// throttle or drop my endpoint, is anything stuck in quarantine, is the stream
// keeping up — as server-rendered HTML at /status and as JSON at /status.json.
//
// The page needs no JavaScript and loads no external asset: its CSS is
// embedded, and it refreshes itself every [RefreshSeconds] seconds with a
// meta refresh. Every value is escaped by html/template: subscription ids,
// resources and quarantine reasons are strings an attacker can influence.
//
// A [Source] gathers the [Snapshot] on each request; [JetStreamSource] fills
// the stream, consumer and quarantine parts from a JetStream account, and the
// daemon adds the subscriptions (from the subscription manager's bucket) and
// the endpoint's standing with Graph.
//
//	page := status.Handler(func(ctx context.Context) (*status.Snapshot, error) {
//		return snapshot(ctx)
//	})
//	ops.Handle("/status", page)
//	ops.Handle("/status.json", page)
package status
