// Package natspub publishes Microsoft Graph change notifications to NATS
// JetStream. Its [Publisher] is the [receiver.Sink] of graphhook: the
// receiver answers Graph 202 only after every notification of a batch has
// been stored by JetStream (a PubAck), and answers 503 otherwise, so that
// Graph redelivers. What is guaranteed:
//
//   - Every item of a batch answered 202 was stored before the answer:
//     accepted items in the events stream (kept Config.MaxAge), rejected
//     ones in a quarantine stream (kept for a bounded time and size), except
//     items anyone could have sent (a wrong clientState, malformed) while
//     their stream is full: those are dropped and counted (see Quarantine).
//
//   - Graph's redelivery of an item within Config.DuplicateWindow is stored
//     once: the stream drops a message whose id (the ce-id header) it has seen.
//     The default window is 1 h; Graph retries for up to 4 h, so a
//     redelivery later than the window is stored again (set the window to
//     4 h to cover Graph's whole horizon).
//
//   - Two different notifications are stored as two events, except when an
//     item has no id and equals an earlier one in every part the id is
//     computed from; see "Event ids and deduplication" below.
//
//     nc, err := nats.Connect("nats://127.0.0.1:4222", nats.MaxReconnects(-1))
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
// and rejected items to a quarantine stream on
//
//	graph.rejected.<reason>.<tenantId or _>
//
// (see Quarantine) where reason is a [receiver.Reason]: token_invalid,
// token_missing and decrypt in Config.QuarantineStream ("GRAPH_REJECTED"),
// client_state and malformed in Config.UnverifiedStream
// ("GRAPH_UNVERIFIED"). "graph" is Config.SubjectPrefix.
// Every token taken from a notification goes through [SubjectToken]: a missing
// value becomes "_", and '.', '*', '>', '%', '~', whitespace, control and
// non-ASCII bytes are written as %XX, so nothing in a notification can add
// a token or a wildcard to a subject. Graph's GUIDs and enum values pass
// unchanged ('~' is escaped too, as it marks a token shortened to
// 64 characters). Useful consumer filters:
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
//	ce-id            see below
//	ce-type          com.microsoft.graph.change.<changeType> or
//	                 com.microsoft.graph.lifecycle.<lifecycleEvent>
//	ce-source        Config.Source, default /graphhook
//	ce-subject       the resource; the subscriptionId for lifecycle items
//	ce-time          when the receiver got the batch, RFC 3339 UTC
//	content-type     application/json
//	graphhook-subscription-id, graphhook-tenant-id
//	graphhook-verified-content
//	                 only on an event whose content graphhook decrypted
//	                 after checking its dataSignature: the body member
//	                 holding it, "content" or "contentBase64"
//	Nats-Msg-Id      22 characters derived from ce-id: see below
//	traceparent, tracestate
//	                 W3C Trace Context of the batch, when it was traced
//	                 (see Tracing); also on quarantine messages
//
// Header values never contain CR, LF or other control bytes: those are
// written as %XX.
//
// # Body
//
// The body of an accepted item is a JSON object with the notification's
// Graph fields as [receiver.Notification.MarshalJSON] writes them (id,
// subscriptionId, subscriptionExpirationDateTime in Graph's own spelling,
// changeType or lifecycleEvent, resource, resourceData, tenantId), keys
// sorted, except two:
//
//   - clientState is left out. It is the subscription's shared secret.
//   - encryptedContent is left out. For a rich notification the decrypted
//     resource is under "content" as a JSON value (an object, not a
//     string). Decrypted content that is not valid JSON goes under
//     "contentBase64" as a base64 string.
//
// Every field graphhook does not know (organizationId, sequenceNumber,
// @odata.type, anything a sender adds) is kept verbatim under "extra"
// (extraKey), never beside graphhook's own: encoding/json matches keys
// case-insensitively and with Unicode folding, so an unknown "Content",
// "ContentBaſe64" (long s), "LifecycleEvent" or "TenantId" next to the
// real fields would be read as decrypted content, a lifecycle event or
// another tenant. A consumer that acts on decrypted content should still
// check the graphhook-verified-content header rather than the body's
// shape.
//
// See testdata/events.golden for exact examples.
//
// # Event ids and deduplication
//
// The event id (ce-id) is "<subscriptionId>:<id>" when Graph sent an id. Otherwise
// it is "sha256:" and a hash of every part of the item as received except
// clientState and encryptedContent: subscriptionId, tenantId, changeType
// or lifecycleEvent, resource, all of resourceData, the
// subscriptionExpirationDateTime, every unknown field, and the SHA-256 of
// the decrypted content of rich items (Graph may encrypt a retry again
// with a fresh key, so the ciphertext identifies nothing). Graph's
// redelivery of an item is the same item, so it gets the same id.
//
// The Nats-Msg-Id, by which the streams drop a redelivered item, is the
// unpadded base64url form of the first 16 bytes of SHA-256(ce-id): 22
// characters. It is derived rather than equal to ce-id because
// nats-server keeps every id of the duplicate window in memory: about 110
// bytes of heap per message with 22 characters, against 180 with a
// 73-character "<subscriptionId>:<id>" (BenchmarkDuplicateWindowMemory).
// That memory is rate times window: 1,000 notifications/s with the
// default 1 h window is 3.6 million ids, about 400 MB of heap in the NATS
// server. Size Config.DuplicateWindow (and the server's memory) for the
// rate you expect.
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
// reason, to one of two streams, each with its own bound:
//
//   - Config.QuarantineStream ("GRAPH_REJECTED") holds items that passed
//     the clientState check and failed later (token_invalid, token_missing,
//     decrypt): only a sender that knows a clientState can put items there.
//     It keeps Config.QuarantineMaxAge (24 h) and Config.QuarantineMaxBytes
//     (64 MiB), dropping the oldest at the bound.
//   - Config.UnverifiedStream ("GRAPH_UNVERIFIED") holds what anyone who can
//     reach the receiver can cause: items with a wrong clientState (forged,
//     or Graph's after a clientState rotation) and malformed items. It keeps
//     Config.UnverifiedMaxAge (24 h) and Config.UnverifiedMaxBytes (64 MiB)
//     and refuses new messages at the bound: their items are dropped,
//     counted in Stats.UnverifiedDropped, and the batch is still answered
//     202 (its accepted items were stored).
//
// So a flood of forged items of any size can fill GRAPH_UNVERIFIED, but
// never evict an item that passed the clientState check. Its subject is
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
// many items it holds. Both streams are bounded, so a flood of forgeries
// cannot fill the disk.
//
// Upgrading from a version with one quarantine stream: New narrows the
// subjects of GRAPH_REJECTED to its three reasons and creates
// GRAPH_UNVERIFIED; client_state and malformed items stored before stay in
// GRAPH_REJECTED until they age out.
//
// SECURITY: raw items include the clientState Graph sent. For items
// rejected after the clientState check (token or decrypt failures) that
// is the real secret, so restrict who may read GRAPH_REJECTED (its
// subjects are separate from the events' for exactly this purpose).
//
// # Streams
//
// New creates a stream that is missing with the Config's settings:
// Replicas (QuarantineReplicas for the two quarantine streams), the max
// age and bytes, the discard policy, the duplicate window. A stream that
// exists may have been set up or tuned by an operator, so New
//
//   - checks what graphhook needs and cannot change: file storage,
//     acknowledgements, and a stream that takes messages (not a mirror).
//     A stream without them stops New with an error wrapping
//     [ErrStreamSetup] that says what to change;
//   - sets what graphhook needs and can change: its subjects (subjects an
//     operator added that collide with none of graphhook's stay), and a
//     duplicate window of at least DuplicateWindow (a longer one is kept).
//     Each change is logged;
//   - keeps the rest: replicas, max age, max bytes, max messages, discard
//     policy, placement. It never lowers replicas or loosens a limit. Where
//     one differs from the Config it logs a warning naming the setting,
//     both values and how to change it on the server (nats stream edit).
//
// One exception keeps the Config in charge of the streams graphhook made:
// New records the limits it applied in the stream's metadata
// ("graphhook.max_age", ...), and a limit that still holds its recorded
// value (nobody changed it since) follows the Config on the next start. A
// limit an operator changed no longer matches its record and is kept, and
// so are the limits of a stream without records (created by hand or by an
// earlier version).
//
// In a cluster, run with Replicas 3 (a three-node cluster), so that losing
// a node, the stream leader included, loses no acknowledged event: see
// TestClusterLeaderLossKeepsTheLedger. Receivers are stateless; run as
// many as needed against the same streams.
//
// # Readiness
//
// [Publisher.Ready] fails, naming the cause, while the connection is down,
// while a stream is missing, while a stream has no leader
// ([ErrStreamUnavailable]), and while Stream or QuarantineStream refuses
// writes because
// it is full ([ErrStreamFull]): at its limits with discard new, or after
// refusing a message for its limits, until it holds less or 10 s pass
// without another refusal. Use it for a readiness probe: it reports the
// conditions in which Deliver fails and the receiver answers 503.
//
// # Tracing
//
// When Deliver's ctx carries an OpenTelemetry span (the receiver's batch
// span, with receiver.Config.TracerProvider set), every message of the
// batch gets the W3C traceparent and tracestate headers of that trace, so
// a consumer in any stack continues it. With Config.TracerProvider set,
// Deliver is itself a producer span, graphhook.publish (attributes
// messaging.system=nats, messaging.batch.message_count, graphhook.accepted
// and graphhook.rejected; an error status when Deliver fails), and the
// headers name it. In Go, extract the context with [HeaderCarrier], since
// NATS headers are case-sensitive:
//
//	ctx := propagation.TraceContext{}.Extract(ctx, natspub.HeaderCarrier(msg.Headers()))
//	ctx, span := tracer.Start(ctx, "process notification", trace.WithSpanKind(trace.SpanKindConsumer))
//	defer span.End()
//
// The headers are not part of the event: the event id ignores them, and a
// batch Graph redelivers keeps, in the stream, the headers of its first
// delivery (JetStream drops the duplicate).
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
