// Package graphsim is a local stand-in for the Microsoft Graph side of
// change notifications: a subscriptions API, identity endpoints, the
// validation handshake, notification delivery with Graph's retries and
// throttling, lifecycle events, and a load generator. Tests, benchmarks,
// examples and users' own development loops use it instead of a tenant and
// a public HTTPS URL.
//
// Everything follows graphhook's protocol reference (graph-protocol.md):
// handshake (§1), body shapes (§2), timing and retries (§3), clientState
// (§4), encryption (§5, through [decrypt.Encrypt]), validationToken claims
// (§6), lifecycle events (§7) and the subscription API (§8).
//
// # Serving
//
// A [Sim] is both a Go API and an HTTP server:
//
//	sim, err := graphsim.New(graphsim.Config{})
//	defer sim.Close()
//	base, err := sim.Start("127.0.0.1:0")
//	// base+"/v1.0/subscriptions"             Graph API (bearer token required)
//	// sim.TokenURL("")                        client-credentials token endpoint
//	// sim.JWKSURL()                           keys that verify validationTokens
//	// base+"/_sim/changes", "/_sim/lifecycle" admin API, see [Sim.Handler]
//
// [Sim.CreateSubscription] runs the same checks as POST /subscriptions:
// required properties, changeType per resource, clientState of at most 128
// characters, a certificate for includeResourceData, the maximum lifetime of
// the resource (an expiration under 45 minutes is raised to 45 minutes), 409
// for a second subscription with the same changeType and resource, and the
// validation handshake with notificationUrl and lifecycleNotificationUrl
// (POST, validationToken query, 10 s, body must equal the token). Errors are
// [*Error] values with Graph's status, code and message, wrapping a sentinel
// such as [ErrConflict].
//
// # Changes and delivery
//
// [Sim.Change] generates notifications for the matching subscriptions,
// batches them per notificationUrl (Config.MaxBatch) and delivers them in
// the background: a POST with a 3 s budget, then retries with a 10 s budget
// and exponential backoff (10 s doubling to 10 min) for up to 4 hours, on
// any non-2xx answer, timeout or connection error. Config.TimeScale shrinks
// that schedule, so a test sees an outage and its recovery in milliseconds.
// Rich subscriptions get encryptedContent for their certificate and
// validationTokens (one per app and tenant in the batch) signed by the
// simulator's own key, with the v2.0 claims (or v1.0, Config.TokenVersion).
// [Sim.Wait] waits for the deliveries; [Sim.Deliveries] and
// [Sim.Endpoints] report every attempt and each endpoint's throttling state:
// slow (more than 10 % of responses over 3 s: new notifications delayed 10
// minutes) or drop (more than 15 % over the 10 s retry budget: new
// notifications dropped), evaluated over a 10 minute window once
// Config.ThrottleMinSamples responses are in it.
//
// # Lifecycle
//
// A background sweep (or [Sim.Sweep]) removes expired subscriptions and
// sends subscriptionRemoved to the lifecycle URL for resources that support
// it (Outlook message, event, contact; Teams chatMessage). A subscription's
// authorization lasts as long as the access token that created, renewed or
// reauthorized it (Config.AccessTokenLifetime); from Config.ReauthorizeBefore
// ahead of that (or of the expiration) it gets reauthorizationRequired every
// 15 minutes, and once it lapses its changes are lost (reported as Paused)
// until PATCH or POST /reauthorize. [Sim.Lifecycle] sends any event on
// demand.
//
// # Payloads without a server
//
// [BasicNotification], [RichNotification], [LifecycleNotification],
// [Marshal] and [Sim.Batch] build Graph's wire format for unit tests and
// fuzz seeds of other packages.
//
// # Load
//
// [Load] POSTs generated batches straight to a receiver at a fixed rate
// (open loop) or concurrency (closed loop) and reports notifications per
// second and latency percentiles ([LoadReport]). The graphsim command
// exposes all of this on the command line.
package graphsim
