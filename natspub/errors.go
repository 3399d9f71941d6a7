package natspub

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrInvalidConfig reports a Config or ServerConfig that cannot work,
	// such as a missing required field. Every [*ConfigError] matches it.
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
	// ErrStreamFull reports a stream that refuses new messages because it
	// is at its limits (discard new), so every batch is answered 503.
	ErrStreamFull = errors.New("natspub: stream full")
	// ErrStreamUnavailable reports a stream that has no leader or does not
	// answer, so no batch can be stored.
	ErrStreamUnavailable = errors.New("natspub: stream unavailable")
	// ErrEncode reports a notification that could not be turned into a
	// message.
	ErrEncode = errors.New("natspub: encode")
	// ErrServerStart reports an embedded server that did not start.
	ErrServerStart = errors.New("natspub: embedded NATS server did not start")
)

// ConfigError reports an invalid [Config] field. It matches
// [ErrInvalidConfig] with [errors.Is] and unwraps to Err.
type ConfigError struct {
	Field string // the Config field's Go name, e.g. "SubjectPrefix", "Stream"
	Err   error  // what is wrong
}

// Error returns "natspub: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "natspub: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns e.Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func configError(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}
