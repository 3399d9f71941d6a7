// Package natspub publishes Microsoft Graph change notifications to NATS
// JetStream. Its [Publisher] is the [receiver.Sink] of graphhook: the
// receiver answers Graph 202 only after every notification of a batch has
// been stored by JetStream (a PubAck), and answers 503 otherwise, so that
// Graph redelivers. Deduplication by message id makes the redelivery land
// once. No notification Graph was told we accepted is lost, and none is
// published twice.
//
//	nc, err := natspub.Connect(natspub.ConnConfig{URLs: []string{"nats://127.0.0.1:4222"}})
//	...
//	pub, err := natspub.New(ctx, natspub.Config{Conn: nc})
//	...
//	rcv, err := receiver.New(receiver.Config{Sink: pub, ClientStates: ...})
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
//	graph.rejected.<reason>.<tenantId>
//
// where reason is a [receiver.Reason]: malformed, client_state,
// token_invalid, token_missing or decrypt. "graph" is Config.SubjectPrefix.
// Every token taken from a notification goes through [Token]: a missing
// value becomes "_", and '.', '*', '>', '%', whitespace, control and
// non-ASCII bytes are written as %XX, so nothing in a notification can add
// a token or a wildcard to a subject. Graph's GUIDs and enum values pass
// unchanged. Useful consumer filters:
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
// Graph fields as received (id, subscriptionId,
// subscriptionExpirationDateTime, changeType or lifecycleEvent, resource,
// resourceData, tenantId, and unknown fields such as organizationId),
// keys sorted, except two:
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
// it is "sha256:" and a hash of subscriptionId, tenantId, changeType or
// lifecycleEvent, resource, resourceData's @odata.etag, the
// subscriptionExpirationDateTime of lifecycle items, and the SHA-256 of
// the decrypted content of rich items: Graph may encrypt a retry again
// with a fresh key, so the ciphertext identifies nothing. Two basic
// notifications without id and without etag for the same resource and
// change type are indistinguishable and are stored once within the
// duplicate window; consumers of basic notifications fetch the resource's
// current state anyway.
//
// The streams drop a message whose id they have seen within
// Config.DuplicateWindow (default 1 h). A duplicate only arises when a
// batch was stored, fully or in part, but Graph did not get our 2xx (a
// timeout, a lost ack, one failed message of many). Graph retries for up
// to 4 h with exponential backoff, so most retries come within minutes;
// the window covers them while keeping the server's in-memory id set
// small. Set DuplicateWindow to 4 h to cover Graph's whole retry horizon.
// Deduplication state is rebuilt from the stored messages when the server
// restarts.
//
// # Quarantine
//
// A rejected item's message body is the item's raw bytes as Graph sent
// them, so it can be replayed unchanged (see examples/replay). Its
// headers are graphhook-reason, graphhook-error (the cause, which never
// holds secrets), graphhook-validation-token (one value per token of the
// batch, needed to replay rich items), graphhook-received-at,
// graphhook-subscription-id and graphhook-tenant-id. Its Nats-Msg-Id is
// "raw:" and a hash of the raw bytes. Decrypted content is never written
// there. The stream is bounded (24 h, 64 MiB, oldest dropped first) so a
// flood of forgeries cannot fill the disk.
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
// Graph's 3 s budget) even when its ctx allows more. While the connection
// is down it fails at once with [ErrNotConnected]; a refused or missing
// acknowledgement gives [ErrNotAcknowledged]. The receiver turns either
// into 503 with Retry-After, and Graph redelivers.
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
