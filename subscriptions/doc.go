// Package subscriptions keeps Microsoft Graph change-notification
// subscriptions alive, across restarts and replicas, so that a user
// declares the subscriptions they want and none lapses silently.
//
// It has three parts:
//
//   - [Client], a typed client for Graph's subscription endpoints (create,
//     get, list, update/renew, delete, reauthorize) on net/http. A failed
//     call is an [*Error] with Graph's status, code, message and
//     Retry-After, matched with errors.Is against [ErrConflict],
//     [ErrInvalid], [ErrLifetimeLimit] (with the stated cap in
//     Error.MaxLifetime), [ErrUnauthorized], [ErrForbidden],
//     [ErrQuotaExceeded], [ErrNotFound], [ErrMailboxNotEnabled],
//     [ErrThrottled] and [ErrUnavailable]; [ErrPermanent] and [Transient]
//     classify them.
//   - [NewCredential], an azidentity credential (client secret, client
//     certificate, managed identity, workload identity) from a small
//     [CredentialConfig], for a [Cloud] (global, US Gov, US Gov DoD, China)
//     or any authority URL.
//   - [Manager], the reconciler: it creates, renews, recreates and deletes
//     subscriptions to match Config.Subscriptions, with its state and a
//     renewal lease in a JetStream key-value bucket.
//
// # Wiring
//
// The receiver's per-subscription clientState check reads the Manager's
// bucket, and its Sink is wrapped so the Manager learns which subscriptions
// deliver and which keys they use:
//
//	mgr, err := subscriptions.New(ctx, subscriptions.Config{Client: c, JetStream: js, Subscriptions: specs, Key: &key})
//	rcv, err := receiver.New(receiver.Config{
//		Sink:              mgr.Observe(publisher),
//		ClientStateLookup: mgr.ClientStateLookup,
//		Keys:              ring,
//	})
//	reg.MustRegister(mgr.Collectors()...)
//
// # Renewal policy
//
// Designed from the failures users report (graph-protocol.md §11):
//
//   - A subscription asks for a lifetime below its resource's cap
//     ([MaxLifetime], the table of §8) by a margin ([Policy.Lifetime]):
//     Graph checks the cap at the second, when the request arrives.
//   - It is renewed when a third of its lifetime (plus up to a tenth,
//     random) remains, so at least two attempts fit before expiry.
//   - A lifetime-limit answer teaches the cap for that resource; the call is
//     retried once under it, and later requests use it.
//   - Graph's list is throttled at 40 calls per 20 s: the Manager lists
//     once, at its first pass as lease holder, to adopt what exists.
//   - Transient failures (429, 503, 5xx, 401, no answer) back off
//     exponentially from Policy.MinBackoff to Policy.MaxBackoff, never
//     sooner than Retry-After.
//   - A renewal answered 404 becomes a recreate. 403 (permissions,
//     licence, quota) and 404 MailboxNotEnabledForRESTAPI are permanent:
//     the subscription is tried once, marked Permanent in its [Record],
//     counted in graphhook_subscription_permanent_failures and published
//     as a permanent_failure event, and never retried in a loop.
//   - A 409 on create adopts the existing subscription it names: recorded
//     without an owner mark, so the Manager never deletes it. Subscriptions
//     it created carry Config.Owner and are deleted when they leave the
//     configuration.
//
// # Shared state and the lease
//
// Each subscription is a JSON [Record] under sub.<hash> in Config.Bucket:
// id, resource, clientState, expiry, certificate id, owner, last renewal
// and outcome, learned cap, backoff; the last notification seen is under
// seen.<id>. Every replica watches the bucket, so ClientStateLookup is a
// map read. Exactly one replica acts, the holder of the lease key (a
// revision compare-and-set, expiring after Config.LeaseTTL without a
// refresh); before each Graph call it also claims the record with a
// compare-and-set, so two replicas never call Graph for one subscription
// state. Close releases the lease; a crashed holder's lease expires and
// another replica takes over at its next pass.
//
// # Lifecycle events
//
// The lease holder consumes <prefix>.lifecycle.> from the receiver's
// stream (Config.GraphStream, durable Config.Consumer), as natspub
// publishes them, and acts at once (see [Manager.HandleLifecycle]):
// reauthorizationRequired gets one PATCH renewal, unless the subscription
// had one in the last 10 minutes (never a reauthorize and a PATCH within
// 10 minutes); subscriptionRemoved is recreated; missed yields a resync
// event.
//
// # Events and gaps
//
// Every action and its outcome is an [Event] on
// <prefix>.subscriptions.<tenant>.<subscription>.<action>, and every range
// in which notifications may be lost is a [Gap] on
// <prefix>.gaps.<tenant>.<subscription> with its start and end, so a
// consumer knows which range to fetch with a delta query: a subscription
// removed until recreated, an authorization lapse, a missed event, a
// replacement after a Spec change, and the receiver's own 503 windows (seen
// through [Manager.Observe]). Both go to Config.EventStream. Metrics: see
// [Manager.Collectors].
//
// # Key rotation
//
// [Manager.RotateKey] moves every rich subscription to a new encryption
// key with one PATCH each; [Manager.Retirable] reports the old key once no
// subscription uses it and no notification has used it for
// Config.RetireAfter.
package subscriptions
