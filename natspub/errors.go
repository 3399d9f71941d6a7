package natspub

import "errors"

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrInvalidConfig reports a Config, ConnConfig or ServerConfig that
	// cannot work, such as a missing required field.
	ErrInvalidConfig = errors.New("natspub: invalid config")
	// ErrStreamSetup reports that a stream could not be created, updated or
	// found.
	ErrStreamSetup = errors.New("natspub: stream setup")
	// ErrNotConnected reports a publish attempted while the connection to
	// NATS is down. Deliver fails with it at once instead of waiting.
	ErrNotConnected = errors.New("natspub: not connected to NATS")
	// ErrNotAcknowledged reports messages of a batch that JetStream did not
	// acknowledge in time or refused. The batch must be redelivered;
	// deduplication keeps the messages that did land from landing twice.
	ErrNotAcknowledged = errors.New("natspub: publish not acknowledged")
	// ErrEncode reports a notification that could not be turned into a
	// message.
	ErrEncode = errors.New("natspub: encode")
	// ErrServerStart reports an embedded server that did not start.
	ErrServerStart = errors.New("natspub: embedded NATS server did not start")
)
