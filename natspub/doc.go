// Package natspub publishes Microsoft Graph change notifications to NATS
// JetStream. Its [Publisher] is the [receiver.Sink] of graphhook: the
// receiver answers Graph 202 only after every notification of a batch has
// been stored by JetStream (a PubAck), and answers 503 otherwise, so that
// Graph redelivers. What is guaranteed:
//
//   - Every item of a batch answered 202 was stored before the answer:
//     accepted items in the events stream (kept Config.MaxAge), rejected
//     ones in the quarantine stream (kept for a bounded time and size).
//
//   - Graph's redelivery of an item within Config.DuplicateWindow is stored
//     once: the stream drops a message whose id ([EventID]) it has seen.
//     The default window is 1 h; Graph retries for up to 4 h, so a
//     redelivery later than the window is stored again (set the window to
//     4 h to cover Graph's whole horizon).
//
//   - Two different notifications are stored as two events, except when an
//     item has no id and equals an earlier one in every part the id is
//     computed from; see "Event ids and deduplication" below.
//
//     nc, err := natspub.Connect(natspub.ConnConfig{URLs: []string{"nats://127.0.0.1:4222"}})
//     ...
//     pub, err := natspub.New(ctx, natspub.Config{Conn: nc})
//     ...
//     rcv, err := receiver.New(receiver.Config{Sink: pub, ClientStates: ...})
//
// [StartServer] runs an in-process nats-server with JetStream, for a
// single binary that needs no set-up, and for tests.
//
// # Subjects
//
// Accepted items are published to the stream Config.Stream ("GRAPH", file
// storage) on
//
//	graph.notifications.<tenantId>.<subscriptionId>.<changeType>
//	graph.lifecycle.<tenantId>.<subscriptionId>.<lifecycleEvent>
//
// and rejected items to the quarantine stream Config.QuarantineStream
// ("GRAPH_REJECTED") on
//
//	graph.rejected.<reason>.<tenantId or _>
//
// (see Quarantine) where reason is a [receiver.Reason]: malformed, client_state,
// token_invalid, token_missing or decrypt. "graph" is Config.SubjectPrefix.
// Every token taken from a notification goes through [Token]: a missing
// value becomes "_", and '.', '*', '>', '%', '~', whitespace, control and
// non-ASCII bytes are written as %XX, so nothing in a notification can add
// a token or a wildcard to a subject. Graph's GUIDs and enum values pass
// unchanged ('~' is escaped too, as it marks a token shortened to
// [MaxTokenLen]). Useful consumer filters:
//
//	graph.notifications.<tenantId>.>     one tenant
//	graph.notifications.*.*.created      one change type
//	graph.lifecycle.>                    lifecycle events only
//
// # Headers
//
// Accepted items carry CloudEvents 1.0 attributes in binary mode, so any
// CloudEvents SDK with a NATS binding reads them:
//
//	ce-specversion   1.0
//	ce-id            see below; also the Nats-Msg-Id
//	ce-type          com.microsoft.graph.change.<changeType> or
//	                 com.microsoft.graph.lifecycle.<lifecycleEvent>
//	ce-source        Config.Source, default /graphhook
//	ce-subject       the resource; the subscriptionId for lifecycle items
//	ce-time          when the receiver got the batch, RFC 3339 UTC
//	content-type     application/json
//	graphhook-subscription-id, graphhook-tenant-id
//	Nats-Msg-Id      = ce-id
//
// Header values never contain CR, LF or other control bytes: those are
// written as %XX.
//
// # Body
//
// The body of an accepted item is a JSON object with the notification's
// Graph fields as [receiver.Notification.MarshalJSON] writes them (id,
// subscriptionId, subscriptionExpirationDateTime in Graph's own spelling,
// changeType or lifecycleEvent, resource, resourceData, tenantId, and
// unknown fields such as organizationId), keys sorted, except two:
//
//   - clientState is left out. It is the subscription's shared secret.
//   - encryptedContent is left out. For a rich notification the decrypted
//     resource is under "content" as a JSON value (an object, not a
//     string). Decrypted content that is not valid JSON goes under
//     "contentBase64" as a base64 string.
//
// See testdata/events.golden for exact examples.
//
// # Event ids and deduplication
//
// [EventID] is "<subscriptionId>:<id>" when Graph sent an id. Otherwise
// it is "sha256:" and a hash of every part of the item as received except
// clientState and encryptedContent: subscriptionId, tenantId, changeType
// or lifecycleEvent, resource, all of resourceData, the
// subscriptionExpirationDateTime, every unknown field, and the SHA-256 of
// the decrypted content of rich items (Graph may encrypt a retry again
// with a fresh key, so the ciphertext identifies nothing). Graph's
// redelivery of an item is the same item, so it gets the same id.
//
// The limit: two notifications without id that are identical in all those
// parts within the duplicate window, for example two updates of the same
// user whose resourceData carries nothing that changed, are stored once.
// Nothing in them tells them apart from a redelivery. Consumers that must
// not miss the second change should not rely on the events alone: run a
// delta query for the resource (Graph's /delta functions) when an event
// arrives, which returns every change since the last query, both of these
// included.
//
// The streams drop a message whose id they have seen within
// Config.DuplicateWindow (default 1 h). A duplicate only arises when a
// batch was stored, fully or in part, but Graph did not get our 2xx (a
// timeout, a lost ack, one failed message of many). Graph retries for up
// to 4 h with exponential backoff, so most retries come within minutes;
// the window covers them while keeping the server's in-memory id set
// small. A retry after the window is stored a second time. Set
// DuplicateWindow to 4 h to cover Graph's whole retry horizon.
// Deduplication state is rebuilt from the stored messages when the server
// restarts.
//
// # Quarantine
//
// Deliver publishes one quarantine message per reason present in a batch
// (so at most five per request), holding every item rejected for that
// reason. Its subject is
//
//	graph.rejected.<reason>.<tenantId>
//
// where tenantId is the tenantId all of its items share, or "_" when they
// do not share one or have none. Its body is a changeNotificationCollection
// that can be POSTed to a receiver as it is (see examples/replay):
//
//	{"value":[<item>, ...],"validationTokens":[...]}
//
// with each item's bytes exactly as Graph sent them, in the order they
// came, and the batch's validationTokens when it had any (rich items need
// them to be replayed). Its headers are graphhook-reason,
// graphhook-items (the number of items), graphhook-error (the cause for
// the first item, at most 256 bytes, never holding secrets),
// graphhook-received-at and content-type. Its Nats-Msg-Id is "sha256:"
// and a hash of the reason and the body, so Graph's redelivery of the same
// batch is stored once (unless Graph encrypted its rich items again, which
// makes other bytes). Decrypted content is never written there.
//
// The size of the quarantine messages of a request is bounded by about
// five times its body (the validationTokens are repeated in each), however
// many items it holds. The stream is bounded (24 h, 64 MiB, oldest dropped
// first) so a flood of forgeries cannot fill the disk.
//
// SECURITY: raw items include the clientState Graph sent. For items
// rejected after the clientState check (token or decrypt failures) that
// is the real secret, so restrict who may read the quarantine stream (its
// subjects are separate from the events' for exactly this purpose).
//
// # Failures
//
// Deliver publishes all messages of a batch at once and then waits for
// every acknowledgement, at most Config.PublishTimeout (2 s, inside
// Graph's 3 s budget) and never past its ctx's deadline: it looks at the
// deadline while publishing as well as while waiting, and then fails with
// an error wrapping [ErrNotAcknowledged] and the context's error. While
// the connection is down it fails at once with [ErrNotConnected]; a
// refused or missing acknowledgement gives [ErrNotAcknowledged]. The
// receiver turns any of these into 503 with Retry-After, and Graph
// redelivers.
//
// A message larger than the server's max_payload is refused every time,
// so its batch is answered 503 until Graph gives up: run nats-server
// with a max_payload above the receiver's body limit ([StartServer] uses
// 8 MiB).
package natspub

import "github.com/graphhook/graphhook/receiver"

// The import above makes [receiver.Sink] and friends linkable from the
// package documentation.
var _ receiver.Sink = (*Publisher)(nil)
