package graphsim

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. The subscription API returns them wrapped in an [*Error]
// that carries Graph's HTTP status, code and message; match with
// [errors.Is].
var (
	// ErrBadRequest means a request is malformed: bad JSON, an unknown
	// changeType, a property that cannot be set, an unparsable URL.
	ErrBadRequest = errors.New("graphsim: bad request")
	// ErrMissingField means a required subscription property is absent:
	// changeType, notificationUrl, resource or expirationDateTime.
	ErrMissingField = errors.New("graphsim: required property missing")
	// ErrCertificateRequired means includeResourceData is true but
	// encryptionCertificate or encryptionCertificateId is missing.
	ErrCertificateRequired = errors.New("graphsim: encryption certificate required")
	// ErrBadCertificate means encryptionCertificate is not base64 DER of an
	// X.509 certificate with an RSA key of 2048 to 4096 bits.
	ErrBadCertificate = errors.New("graphsim: unusable encryption certificate")
	// ErrExpirationTooFar means expirationDateTime is beyond the maximum
	// lifetime of the resource.
	ErrExpirationTooFar = errors.New("graphsim: expiration beyond maximum lifetime")
	// ErrClientStateTooLong means clientState exceeds 128 characters.
	ErrClientStateTooLong = errors.New("graphsim: clientState too long")
	// ErrUnsupported means the resource does not support what was asked:
	// resource data, a changeType, or a subscription without a
	// lifecycleNotificationUrl where one is required.
	ErrUnsupported = errors.New("graphsim: not supported for resource")
	// ErrValidationFailed means the validation handshake with notificationUrl
	// or lifecycleNotificationUrl failed (status, body or timeout).
	ErrValidationFailed = errors.New("graphsim: notification endpoint validation failed")
	// ErrConflict means a subscription with the same changeType and resource
	// already exists for the application.
	ErrConflict = errors.New("graphsim: subscription already exists")
	// ErrNotFound means no subscription has the given id.
	ErrNotFound = errors.New("graphsim: subscription not found")
	// ErrUnauthorized means the bearer access token is missing, malformed,
	// not signed by the simulator, or expired.
	ErrUnauthorized = errors.New("graphsim: invalid access token")
	// ErrForbidden means the calling app lacks the application permission
	// the resource needs, or its consent was revoked (403).
	ErrForbidden = errors.New("graphsim: insufficient privileges")
	// ErrDelegatedOnly means a me/... resource was used with an app-only
	// token (400).
	ErrDelegatedOnly = errors.New("graphsim: resource needs a delegated token")
	// ErrUnknownResource means the resource path names nothing graphsim
	// (or Graph) can subscribe to (400 or 404).
	ErrUnknownResource = errors.New("graphsim: unknown resource")
	// ErrThrottled means the subscription API's request rate limit was
	// exceeded (429 with Retry-After).
	ErrThrottled = errors.New("graphsim: too many requests")
	// ErrQuotaExceeded means a subscription quota (per mailbox, tenant,
	// app or Teams organisation) is full (403).
	ErrQuotaExceeded = errors.New("graphsim: maximum number of subscriptions reached")
	// ErrMailboxNotEnabled means the resource's mailbox is inactive,
	// soft-deleted or on-premises (404 MailboxNotEnabledForRESTAPI).
	ErrMailboxNotEnabled = errors.New("graphsim: mailbox not enabled for REST API")
	// ErrUnsupportedEncoding means a request body had a Content-Encoding
	// other than gzip or identity (415).
	ErrUnsupportedEncoding = errors.New("graphsim: unsupported content encoding")
	// ErrInjected means the failure was injected with [Sim.InjectFault].
	ErrInjected = errors.New("graphsim: injected fault")
	// ErrNoLifecycleURL means a lifecycle event was requested for a
	// subscription without a lifecycleNotificationUrl.
	ErrNoLifecycleURL = errors.New("graphsim: subscription has no lifecycleNotificationUrl")
)

// Error is an error of the simulated Graph API: the HTTP status, Graph's
// error code and message, and the sentinel it wraps.
type Error struct {
	// Status is the HTTP status code, e.g. 400 or 409.
	Status int
	// Code is Graph's error code, e.g. "InvalidRequest" or "ExtensionError".
	Code string
	// Message is Graph's error message. It never contains secrets.
	Message string
	// Err is the sentinel, e.g. [ErrConflict].
	Err error
	// RetryAfter, when positive, is sent as the Retry-After header
	// (seconds), as on 429 answers.
	RetryAfter int
}

// Error returns the message with its code.
func (e *Error) Error() string {
	return fmt.Sprintf("graphsim: %d %s: %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the HTTP status for err: the Status of an [*Error] in
// its chain, or 500.
func StatusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

func badRequest(sentinel error, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: fmt.Sprintf(format, args...), Err: sentinel}
}

// Config field errors, matched with [errors.Is] through [ConfigError].
var (
	// ErrInvalidValue means a Config field holds a value outside its set
	// (TokenVersion, ExpirationWording) or range (a negative TimeScale).
	ErrInvalidValue = errors.New("invalid value")
	// ErrAppRegistration means an entry of Config.Apps cannot work: no
	// client id, a duplicate, or neither secret nor certificate.
	ErrAppRegistration = errors.New("unusable app registration")
)

// ConfigError reports an invalid [Config] field. It never quotes a secret.
type ConfigError struct {
	// Field is the Config field's Go name, e.g. "TokenVersion" or "Apps[1]".
	Field string
	// Err is what is wrong; it wraps ErrInvalidValue or ErrAppRegistration.
	Err error
}

// Error returns "graphsim: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "graphsim: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

func configError(field string, sentinel error, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
