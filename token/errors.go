package token

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors returned (wrapped) by [New] and [Validator.Validate].
// Match them with [errors.Is]. Only [ErrUnavailable] means "our fault,
// ask Graph to retry" (HTTP 503); every other validation error means the
// batch is forged or invalid and must not reach the normal sink.
var (
	// ErrUnavailable reports that no signing keys are loaded yet (the key
	// endpoint was unreachable and nothing is cached), that a refresh for
	// an unknown key id could not reach the key endpoint, that a key id
	// never seen before arrived while refreshes are rate-limited (it may
	// be a newly published key), or that the Validator is closed. The caller should answer 503 so Graph retries.
	ErrUnavailable = errors.New("token: signing keys unavailable")

	// ErrNoTokens reports that a batch that needs validation tokens carried
	// none (missing, null or empty validationTokens).
	ErrNoTokens = errors.New("token: no validation tokens")

	// ErrMalformed reports a token that is not a compact JWS/JWT, or whose
	// header or claims cannot be decoded or lack a required claim (exp).
	ErrMalformed = errors.New("token: malformed token")

	// ErrSignature reports a bad signature, a signing algorithm other than
	// RS256 (including "none" and HS256), a missing kid, or a kid that is
	// not among the published keys even after a refresh.
	ErrSignature = errors.New("token: bad signature")

	// ErrExpired reports a token whose exp, nbf or iat lies outside the
	// accepted clock skew.
	ErrExpired = errors.New("token: expired or not yet valid")

	// ErrAudience reports a token whose aud is none of Config.AppIDs.
	ErrAudience = errors.New("token: audience not accepted")

	// ErrIssuer reports a token whose tid is missing or not allowed, or
	// whose iss is not the v1.0 or v2.0 issuer of that tid.
	ErrIssuer = errors.New("token: issuer not accepted")

	// ErrTenantNotCovered reports a notification tenant for which no valid
	// token of that tenant was sent.
	ErrTenantNotCovered = errors.New("token: tenant not covered by a validation token")

	// ErrPublisher reports a token not issued to the Microsoft Graph Change
	// Tracking app ([GraphChangeTrackingAppID]): appid (v1.0) or azp (v2.0)
	// differs or is missing.
	ErrPublisher = errors.New("token: publisher is not Microsoft Graph Change Tracking")

	// ErrConfig reports an invalid [Config] passed to [New] or found by
	// [Config.Validate]; the error holds a [*ConfigError] per bad field.
	ErrConfig = errors.New("token: invalid config")
)

// Error describes why a batch failed validation. Its text names the check
// that failed and never contains the token itself. Kind is one of the
// sentinels above; errors.Is(err, ErrSignature) and the like work on it.
type Error struct {
	// Index is the position of the failing token in the tokens slice, or
	// -1 when the failure is not about one token (ErrNoTokens,
	// ErrTenantNotCovered, ErrUnavailable before any key was loaded).
	Index int
	// Kind is the sentinel for the failed check.
	Kind error
	// Detail is a short, token-free explanation (for logs).
	Detail string
	// TenantID is the uncovered tenant for ErrTenantNotCovered.
	TenantID string

	cause error // underlying library error; reachable via errors.As, never printed
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("token: ")
	if e.Index >= 0 {
		b.WriteString("validation token ")
		b.WriteString(strconv.Itoa(e.Index))
		b.WriteString(": ")
	}
	b.WriteString(strings.TrimPrefix(e.Kind.Error(), "token: "))
	if e.TenantID != "" {
		b.WriteString(": tenant ")
		b.WriteString(strconv.Quote(e.TenantID))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns Kind and, when present, the underlying library error.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.cause}
}
