// Package standing computes Microsoft Graph's view of a webhook endpoint
// from the endpoint's own answers, so that operators learn that Graph is
// about to delay or drop their notifications before it does. Graph never
// says when it throttles an endpoint; the only signal is the endpoint's
// own answer times (graph-protocol.md §3 and §11).
//
// # Graph's rule
//
// Graph evaluates each endpoint over a rolling 10 minute window:
//
//   - slow: more than 10 % of the responses took longer than the 3 s
//     delivery budget. New notifications are then delivered 10 minutes
//     late.
//   - drop: more than 15 % of the responses exceeded the 10 s budget of a
//     retried delivery. New notifications are then dropped for 10 minutes
//     (a missed lifecycle event may follow).
//
// A [Monitor] applies the same rule to the requests its middleware sees.
// Graph gives up on a first attempt after 3 s and on a retry after 10 s
// and closes the request; the middleware sees that as the client going
// away before the answer, and tells the two apart by when it happened, so
// it needs no knowledge of which request was a retry. Answers that are not
// 2xx, and requests the client gave up on, are counted as failures; Graph
// redelivers both.
//
// What the middleware cannot see: the time before a request reaches the
// handler (Graph's connection set-up, TLS, the network, a proxy's queue)
// counts against Graph's budget too, so the ratios here are a lower bound;
// keep answers well under 3 s. A client going away is seen through the
// request's context, which net/http cancels when the connection closes
// after the handler has read the body (the receiver reads it first).
// Behind a reverse proxy, the proxy must close the upstream request when
// Graph closes its own (nginx does by default); otherwise the middleware
// sees the proxy's timing, not Graph's.
//
// # Use
//
//	mon, err := standing.New(standing.Config{})
//	mux.Handle("/notifications", mon.Middleware("notifications")(rcv))
//	mux.Handle("/lifecycle", mon.Middleware("lifecycle")(rcv))
//	registry.MustRegister(mon)   // graphhook_standing_* metrics
//	snap := mon.Snapshot()       // for a status page; JSON-ready
//
// Request-duration histograms should use [Buckets], which has boundaries
// at Graph's 3 s and 10 s budgets so that the share of answers over each
// can be read off the histogram too.
package standing
