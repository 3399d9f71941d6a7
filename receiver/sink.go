package receiver

import (
	"context"
	"net/url"
	"time"
)

// Sink takes the outcome of one notification request. The natspub package
// provides the JetStream Sink; [Callbacks] adapts plain functions.
type Sink interface {
	// Deliver stores b durably: every accepted notification, and every
	// rejected one in a quarantine. It returns nil only when all of them are
	// stored; on error the Receiver answers 503 and Graph redelivers the whole
	// batch, so Deliver must tolerate seeing the same items again.
	Deliver(ctx context.Context, b *Batch) error
}

// SinkFunc adapts a function to [Sink].
type SinkFunc func(ctx context.Context, b *Batch) error

// Deliver calls f(ctx, b).
func (f SinkFunc) Deliver(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Batch is what one notification request produced.
type Batch struct {
	// Notifications are the accepted items, change and lifecycle, in the
	// order they arrived. Rich items carry their decrypted Content.
	Notifications []*Notification
	// Rejected are the items that failed a check. They must never reach
	// consumers of the accepted items.
	Rejected []*Rejected
	// Query is the request's query string: the parameters carried on the
	// subscription's notificationUrl.
	Query url.Values
	// ReceivedAt is when the request arrived.
	ReceivedAt time.Time
	// ValidationTokens are the batch's validationTokens, kept so that
	// quarantined rich items can be replayed with them.
	ValidationTokens []string
}

// Reason says why an item was rejected. It is stable and safe to use in
// subjects, metrics and logs.
type Reason string

// The reasons an item is rejected.
const (
	ReasonMalformed    Reason = "malformed"     // not a valid changeNotification
	ReasonClientState  Reason = "client_state"  // clientState mismatch or unknown subscription
	ReasonTokenInvalid Reason = "token_invalid" // a validationToken of the batch failed validation
	ReasonTokenMissing Reason = "token_missing" // encrypted content without validationTokens
	ReasonDecrypt      Reason = "decrypt"       // encryptedContent could not be verified or decrypted
)

// Rejected is an item that failed a check.
type Rejected struct {
	// Notification is the item as parsed (never with decrypted Content).
	// Its Raw field holds the bytes as received, for replay.
	Notification *Notification
	// Reason is the class of failure.
	Reason Reason
	// Err is the detailed cause, for logs; it never carries secrets.
	Err error
}

// Callbacks is a [Sink] that routes each item to a function by kind. A nil
// function ignores its items. The first error stops the batch and is
// returned, so the Receiver answers 503 and Graph redelivers.
type Callbacks struct {
	OnChange    func(ctx context.Context, n *Notification, query url.Values) error
	OnLifecycle func(ctx context.Context, n *Notification, query url.Values) error
	OnRejected  func(ctx context.Context, r *Rejected, query url.Values) error
}

// Deliver calls the callbacks for every item of b in order.
func (c Callbacks) Deliver(ctx context.Context, b *Batch) error {
	for _, n := range b.Notifications {
		f := c.OnChange
		if n.IsLifecycle() {
			f = c.OnLifecycle
		}
		if f == nil {
			continue
		}
		if err := f(ctx, n, b.Query); err != nil {
			return err
		}
	}
	if c.OnRejected != nil {
		for _, r := range b.Rejected {
			if err := c.OnRejected(ctx, r, b.Query); err != nil {
				return err
			}
		}
	}
	return nil
}
