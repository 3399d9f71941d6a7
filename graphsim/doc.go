// Package graphsim is a local stand-in for the Microsoft Graph side of
// change notifications: a subscriptions API, identity endpoints that
// Azure's identity library accepts, the validation handshake, notification
// delivery with Graph's retries and throttling, lifecycle events, API
// throttling and quotas, and a clock that tests move forward. Tests,
// benchmarks, examples and users' own development loops use it instead of
// a tenant and a public HTTPS URL.
//
// Everything follows graphhook's protocol reference (graph-protocol.md):
// handshake (§1), body shapes (§2), timing and retries (§3), clientState
// (§4), encryption (§5, [Encrypt]), validationToken claims (§6), lifecycle
// events (§7), the subscription API (§8) and the field facts of real
// tenants (§11).
//
// # Serving
//
// A [Sim] is both a Go API and an HTTP server:
//
//	sim, err := graphsim.New(graphsim.Config{})
//	defer sim.Close()
//	base, pool, err := sim.StartTLS("127.0.0.1:0") // or Start for plain HTTP
//	// base+"/v1.0/subscriptions"             Graph API (bearer token required)
//	// sim.TokenURL("")                        token endpoint (client secret or certificate)
//	// sim.JWKSURL()                           keys that verify validationTokens
//	// base+"/_sim/changes", "/_sim/advance"   admin API, see [Sim.Handler]
//
// Only apps registered in Config.Apps get tokens, with their secret or a
// client assertion signed by their certificate; tokens carry the app's
// permissions as roles, and POST /subscriptions requires the application
// permission Microsoft's table names for the resource ([RequiredPermissions]).
// azidentity's ClientSecretCredential and ClientCertificateCredential work
// unmodified with the authority host set to the simulator, its CA in the
// transport and DisableInstanceDiscovery.
//
// [Sim.CreateSubscription] runs the same checks as POST /subscriptions:
// required properties, a known resource, changeType per resource,
// clientState of at most 128 characters, a certificate for
// includeResourceData (and for presence), the maximum lifetime of the
// resource (an expiration under 45 minutes is raised to 45 minutes), 409
// for a second subscription with the same changeType and resource, quotas,
// and the validation handshake with notificationUrl and
// lifecycleNotificationUrl (POST, validationToken query, 10 s, text/plain
// body equal to the token). Errors are [*Error] values with Graph's
// status, code and message, wrapping a sentinel such as [ErrConflict].
// Over HTTP, gzip request bodies are accepted, the API is throttled per app
// and tenant (429 with Retry-After), and [Sim.InjectFault] makes chosen
// calls fail.
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
// # Lifecycle and time
//
// Subscriptions, tokens and API throttling run on a simulated clock:
// Config.Now moved forward by [Sim.Advance], which stops at everything
// that falls due on the way. Expired subscriptions are removed, with
// subscriptionRemoved for resources that support it (Outlook message,
// event, contact; Teams chatMessage). A subscription's authorization lasts
// as long as the access token that created, renewed or reauthorized it
// (Config.AccessTokenLifetime); reauthorizationRequired follows the
// schedule of §7 towards the end of the authorization or of the
// subscription, and once the authorization lapses its changes are lost
// (reported as Paused) until PATCH or POST /reauthorize. [Sim.RevokeConsent]
// and [Sim.DisableMailbox] produce the permanent failures of §11;
// [Sim.Lifecycle] sends any event on demand. Lifecycle items carry
// organizationId and resource Subscriptions/{id}, as real tenants send
// them.
//
// # Payloads without a server
//
// [BasicNotification], [RichNotification], [LifecycleNotification],
// [Encrypt], [Marshal] and [Sim.Batch] build Graph's wire format for unit
// tests and fuzz seeds of other packages.
//
// The graphsim command exposes all of this on the command line, with a
// load generator for receivers.
package graphsim
