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
	// ErrTooManyItems reports a batch over Config.MaxItems notifications.
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
	// (sink down, keys not yet fetched); it is answered 503 so Graph redelivers.
	ErrUnavailable = errors.New("receiver: temporarily unavailable")
)

// Kind classifies an [Error]; it alone decides the HTTP status.
type Kind int

// The kinds of [Error].
const (
	KindInvalid     Kind = iota + 1 // 400 Bad Request
	KindMethod                      // 405 Method Not Allowed
	KindTooLarge                    // 413 Content Too Large
	KindUnsupported                 // 415 Unsupported Media Type
	KindUnavailable                 // 503 Service Unavailable
)

// Status returns the HTTP status code for k.
func (k Kind) Status() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindMethod:
		return http.StatusMethodNotAllowed
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindUnsupported:
		return http.StatusUnsupportedMediaType
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is the error returned by [Receiver.Receive] and [Receiver.ReadRequest]
// for a request that cannot be answered 202.
type Error struct {
	Op   string // what was being done: "read", "parse", "deliver", ...
	Kind Kind   // decides the HTTP status
	Err  error  // the cause; never carries secrets
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status code for e.
func (e *Error) Status() int { return e.Kind.Status() }

// StatusOf returns the HTTP status for err: the status of an [*Error] in its
// chain, 503 for [ErrUnavailable], else 500.
func StatusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status()
	}
	if errors.Is(err, ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
