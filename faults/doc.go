// Package faults is graphhook's fault suite: it checks the promise that
// every notification Graph was answered 2xx for reaches the stream exactly
// once, and nothing forged gets in, while real faults happen. It holds no
// code of its own, only tests; run it with
//
//	go test ./faults                      # short settings, about two minutes
//	go test ./faults -faults.long         # longer faults and more load
//	go test ./faults -faults.update       # also regenerate RELIABILITY.md
//
// (GRAPHHOOK_FAULTS_LONG=1 selects the long settings too; -short skips the
// suite.)
//
// # How a scenario runs
//
// The suite builds the real receiver (cmd/receiver) and nats-server (the
// module dependency github.com/nats-io/nats-server/v2) once, into a
// temporary directory, and runs them as processes on 127.0.0.1 on free
// ports. graphsim plays Microsoft Graph: a subscription with the
// receiver's clientState and one with a wrong clientState (forged
// notifications) are created against the receiver, and changes are driven
// continuously while the fault happens. graphsim retries every answer that
// is not 2xx as Graph does, on a schedule shrunk 500-fold, and records
// every attempt. At the end, the ledger waits for graphsim to finish and
// reads the GRAPH stream: every notification graphsim saw answered 2xx
// must be there exactly once (counted by ce-id and by
// resource id), every retried one must have landed, and nothing from the
// forged subscription may be there (each forged one answered 202 must be in
// the quarantine stream instead). Each scenario also reports the recovery
// time: from the end of the fault to the first 2xx. The results go to
// RELIABILITY.md at the repository root (with -faults.update; otherwise
// only to the test's temporary directory and the verbose log).
//
// # Scenarios
//
//   - nats-restart: the external nats-server stopped (SIGTERM) for a while
//     under load and started again on the same port and store.
//   - receiver-sigkill: the receiver killed mid-load and restarted.
//   - receiver-sigterm: the receiver drains on SIGTERM mid-load, exits 0,
//     and is restarted.
//   - stream-full: GRAPH limited to a few more messages with discard new,
//     then freed.
//   - jwks-down: rich notifications with the signing-key endpoint down
//     when the receiver starts, and again during a key rotation.
//   - slow-clients: connections trickling headers, and bodies, while
//     graphsim delivers.
//   - cluster-leader-loss: the scale-out deployment, receivers behind a
//     load balancer and a three-node NATS cluster with R3 streams, with
//     the GRAPH stream leader killed under load; it rejoins and catches up.
//   - lease-holder-killed: two receivers with a subscriptions section
//     share one nats-server and the manager's bucket behind a load
//     balancer; the lease holder is killed (SIGKILL) shortly before the
//     renewals fall due; the other must hold the lease within the lease
//     TTL and renew every subscription once.
//   - graph-throttles-renewals: graphsim answers the renewal with 429
//     (Retry-After 4 s), then 503 twice; the manager's calls are counted
//     and timed (never before the Retry-After, then backing off) and the
//     renewal lands before the expiry.
//   - kv-unavailable: the nats-server holding the manager's bucket (and
//     GRAPH) is stopped shortly before the renewals fall due and started
//     again: the receiver answers 503 meanwhile, the manager makes no
//     Graph call without its lease, and renews once NATS is back.
//   - kv-leaderless: a three-node NATS cluster with GRAPH R3; the node
//     leading the manager's bucket (which the manager creates with one
//     replica) is killed and restarted, so the bucket has no leader while
//     GRAPH stays writable: the receiver keeps accepting notifications
//     with the clientStates it has cached (or answers 503), the manager
//     makes no Graph call meanwhile, and renews once the bucket is back.
//
// # The subscription manager's scenarios
//
// The last four run the receiver with a subscriptions section against
// graphsim over TLS (the app's secret, graphsim's CA in caFile), and the
// load goes through the managed subscription. Graph raises every
// expiration to at least 45 minutes; graphsim's clock is set 44 minutes
// behind the wall clock and the desired subscriptions ask for 1 minute
// (maxLifetime), so a renewal falls due 34 to 40 s after each create or
// renewal. Their ledger also checks the subscriptions: every desired one
// exists with its first id (renewed, not recreated) and an expiry in the
// future at the end, was never missing or expired meanwhile (polled
// every 50 ms), was never renewed twice within 34 s, and graphsim's
// PATCH calls (Sim.APICalls) stay within the policy's bound. They spend
// most of their time waiting for renewals, so they run in parallel with
// each other, after the others, as subtests of TestFaults/manager.
package faults
