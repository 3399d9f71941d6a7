package receiver

import (
	"errors"
	"net/http"
)

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrMalformed reports a body or item that is not a valid
	// changeNotificationCollection.
	ErrMalformed = errors.New("receiver: malformed notification")
	// ErrTooLarge reports a body over Config.MaxBodyBytes.
	ErrTooLarge = errors.New("receiver: request body too large")
	// ErrTooManyItems reports a batch over Config.MaxItems notifications, or
	// over MaxDecryptsPerRequest rich ones.
	ErrTooManyItems = errors.New("receiver: too many notifications in one request")
	// ErrUnsupportedMediaType reports a notification POST that is not JSON.
	ErrUnsupportedMediaType = errors.New("receiver: content type is not application/json")
	// ErrMethod reports a method other than POST (or GET with a validationToken).
	ErrMethod = errors.New("receiver: method not allowed")
	// ErrTokenTooLong reports a validationToken over the handshake limit.
	ErrTokenTooLong = errors.New("receiver: validationToken too long")
	// ErrClientStateMismatch reports an item whose clientState does not match
	// the value expected for its subscription.
	ErrClientStateMismatch = errors.New("receiver: clientState mismatch")
	// ErrUnknownSubscription is returned by a ClientStateLookup that knows no
	// clientState for a subscription; the item is rejected like a mismatch.
	ErrUnknownSubscription = errors.New("receiver: unknown subscription")
	// ErrNoTokenValidator reports a rich notification arriving at a receiver
	// configured without token validation.
	ErrNoTokenValidator = errors.New("receiver: rich notification but no token validator configured")
	// ErrNoKeys reports encrypted content arriving at a receiver configured
	// without a key ring.
	ErrNoKeys = errors.New("receiver: encrypted content but no decryption keys configured")
	// ErrUnavailable reports our own transient inability to take the batch
	// (sink down, keys not yet fetched, decryption work over the batch
	// budget); it is answered 503 so Graph redelivers.
	ErrUnavailable = errors.New("receiver: temporarily unavailable")
)

// kind classifies an [Error]; it alone decides the HTTP status.
type kind int

const (
	kindInvalid     kind = iota + 1 // 400 Bad Request
	kindMethod                      // 405 Method Not Allowed
	kindTooLarge                    // 413 Content Too Large
	kindUnsupported                 // 415 Unsupported Media Type
	kindUnavailable                 // 503 Service Unavailable
)

func (k kind) status() int {
	switch k {
	case kindInvalid:
		return http.StatusBadRequest
	case kindMethod:
		return http.StatusMethodNotAllowed
	case kindTooLarge:
		return http.StatusRequestEntityTooLarge
	case kindUnsupported:
		return http.StatusUnsupportedMediaType
	case kindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is the error returned by [Receiver.Receive] and [Receiver.Handle]
// for a request that cannot be answered 202. Its Status and Message are
// the whole HTTP answer policy; match its cause with [errors.Is].
type Error struct {
	Op   string // what was being done: "read", "parse", "deliver", ...
	Err  error  // the cause; never carries secrets
	kind kind
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status code answered for e: 400, 405, 413, 415
// or 503.
func (e *Error) Status() int { return e.kind.status() }

// Message returns the text an HTTP answer may show for e: the error itself
// for a 4xx (it describes the caller's request and holds no secret), the
// bare status text for a 503, so that nothing about our internals leaks.
func (e *Error) Message() string {
	if s := e.Status(); s >= 500 {
		return http.StatusText(s)
	}
	return e.Error()
}

// statusOf returns the HTTP status for err: the status of an [*Error] in
// its chain, 503 for [ErrUnavailable], else 500.
func statusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status()
	}
	if errors.Is(err, ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ConfigError reports an invalid [Config] field. [New] and
// [Config.Validate] return it; a daemon finds it with [errors.As] and maps
// Field to its own flag or setting name.
type ConfigError struct {
	Field string // the Config field's Go name, e.g. "ClientStates", "Sink"
	Err   error  // what is wrong; it never quotes a secret value
}

// Error returns "receiver: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "receiver: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }
