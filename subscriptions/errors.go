package subscriptions

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. A failed Graph call returns an [*Error]; errors.Is
// matches it against the sentinels below by its status, Graph code and
// message, so callers branch without reading text.
var (
	// ErrConflict means a subscription with the same changeType and resource
	// already exists (409). [Error.ExistingID] names it when Graph does.
	ErrConflict = errors.New("subscriptions: subscription already exists")
	// ErrInvalid means Graph rejected the request as invalid (400),
	// including a failed validation handshake and [ErrLifetimeLimit].
	ErrInvalid = errors.New("subscriptions: invalid request")
	// ErrLifetimeLimit means the requested expirationDateTime is beyond the
	// resource's maximum lifetime (400). [Error.MaxLifetime] holds the cap
	// when Graph stated one.
	ErrLifetimeLimit = errors.New("subscriptions: expiration beyond the resource's maximum lifetime")
	// ErrUnauthorized means the access token was missing, invalid or
	// expired (401).
	ErrUnauthorized = errors.New("subscriptions: unauthorized")
	// ErrForbidden means the application lacks a permission, a licence, or
	// is past a quota (403), including [ErrQuotaExceeded]. It is permanent
	// for that subscription until an administrator acts.
	ErrForbidden = errors.New("subscriptions: forbidden")
	// ErrQuotaExceeded means the maximum number of subscriptions for the
	// mailbox, tenant or application has been reached (403).
	ErrQuotaExceeded = errors.New("subscriptions: subscription quota exceeded")
	// ErrNotFound means the subscription (or the resource) does not exist
	// (404), including [ErrMailboxNotEnabled].
	ErrNotFound = errors.New("subscriptions: not found")
	// ErrMailboxNotEnabled means the mailbox of the resource is not enabled
	// for the REST API (404 MailboxNotEnabledForRESTAPI): an inactive,
	// unlicensed or on-premises mailbox. It is permanent.
	ErrMailboxNotEnabled = errors.New("subscriptions: mailbox not enabled for the REST API")
	// ErrThrottled means Graph asked us to slow down (429) or is
	// temporarily unavailable (503). [Error.RetryAfter] holds its
	// Retry-After.
	ErrThrottled = errors.New("subscriptions: throttled")
	// ErrUnavailable means Graph failed with a server error (5xx other
	// than 503) or the request did not reach it. It is transient.
	ErrUnavailable = errors.New("subscriptions: Graph unavailable")
	// ErrNotHolder means this replica does not hold the renewal lease, so
	// it does not act (HandleLifecycle).
	ErrNotHolder = errors.New("subscriptions: not the lease holder")
	// ErrPermanent marks a failure that retrying cannot fix (403, 404
	// MailboxNotEnabledForRESTAPI): the Manager stops retrying the
	// subscription and reports it.
	ErrPermanent = errors.New("subscriptions: permanent failure")
)

// Error is a failed Graph subscription call, with Graph's error body.
// Its text holds Graph's code and message, which never contain the
// clientState or a token.
type Error struct {
	// Op is the call: create, get, list, update, delete or reauthorize.
	Op string
	// SubscriptionID is the subscription of the call, if any.
	SubscriptionID string
	// Status is the HTTP status, or 0 when no response arrived.
	Status int
	// Code and Message are Graph's error.code and error.message.
	Code    string
	Message string
	// RequestID is Graph's request-id header, for Microsoft support.
	RequestID string
	// RetryAfter is the wait Graph asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// MaxLifetime is the lifetime cap stated in a lifetime-limit answer,
	// or 0.
	MaxLifetime time.Duration
	// ExistingID is the id of the existing subscription a 409 names, or "".
	ExistingID string
	// Err is the transport error when no response arrived.
	Err error
}

// Error returns "subscriptions: <op> [<id>]: <status> <code>: <message>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("subscriptions: ")
	b.WriteString(e.Op)
	if e.SubscriptionID != "" {
		b.WriteString(" " + e.SubscriptionID)
	}
	b.WriteString(": ")
	if e.Status == 0 {
		if e.Err != nil {
			b.WriteString(e.Err.Error())
		} else {
			b.WriteString("no response")
		}
		return b.String()
	}
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e matches one of the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	case ErrLifetimeLimit:
		return e.Status == http.StatusBadRequest && isLifetimeMessage(e.Message)
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrQuotaExceeded:
		return e.Status == http.StatusForbidden && strings.Contains(strings.ToLower(e.Message), "maximum number of subscriptions")
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrMailboxNotEnabled:
		return e.Status == http.StatusNotFound && (strings.EqualFold(e.Code, "MailboxNotEnabledForRESTAPI") || strings.Contains(e.Message, "MailboxNotEnabledForRESTAPI"))
	case ErrThrottled:
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
	case ErrUnavailable:
		return e.Status == 0 || e.Status >= 500 && e.Status != http.StatusServiceUnavailable
	case ErrPermanent:
		return e.Is(ErrForbidden) || e.Is(ErrMailboxNotEnabled)
	}
	return false
}

// Transient reports whether retrying err later may succeed: throttling,
// server errors, no response, 401 (a token refresh may help) and a 400
// with an empty body.
func Transient(err error) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	switch {
	case e.Is(ErrThrottled), e.Is(ErrUnavailable), e.Is(ErrUnauthorized):
		return true
	case e.Status == http.StatusBadRequest && e.Code == "" && e.Message == "":
		return true
	}
	return false
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// parseError builds the *Error of a non-2xx answer from its headers and
// body. It never fails: an unparsable body leaves Code and Message empty.
func parseError(op, id string, status int, h http.Header, body []byte, now time.Time) *Error {
	e := &Error{Op: op, SubscriptionID: id, Status: status, RequestID: h.Get("request-id")}
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) == nil {
		e.Code = clean(b.Error.Code, 128)
		e.Message = clean(b.Error.Message, 1024)
	}
	e.RetryAfter = parseRetryAfter(h.Get("Retry-After"), now)
	if status == http.StatusBadRequest {
		e.MaxLifetime = parseLifetimeCap(e.Message)
	}
	if status == http.StatusConflict {
		e.ExistingID = parseExistingID(e.Message)
	}
	return e
}

// clean bounds s and drops control characters, so Graph's text cannot
// forge log lines.
func clean(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// MaxRetryAfter bounds a Retry-After, so a bad header cannot park a
// subscription for days.
const MaxRetryAfter = time.Hour

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

var (
	minutesCap  = regexp.MustCompile(`(?i)can only be (\d{1,7}) minutes`)
	timeSpanCap = regexp.MustCompile(`(?i)max(?:imum)?[^']{0,40}'(?:(\d{1,4})\.)?(\d{1,2}):(\d{2}):(\d{2})'`)
	existingID  = regexp.MustCompile(`(?i)subscription id ([0-9a-f-]{36}) already exists`)
)

func isLifetimeMessage(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "expiration") && (minutesCap.MatchString(msg) || timeSpanCap.MatchString(msg) || strings.Contains(m, "beyond") || strings.Contains(m, "max"))
}

// parseLifetimeCap reads the cap from Graph's lifetime-limit answers:
// "Subscription expiration can only be 4230 minutes in the future." and
// "... beyond allowed max '3.00:00:00'" (a .NET TimeSpan, d.hh:mm:ss).
func parseLifetimeCap(msg string) time.Duration {
	if !isLifetimeMessage(msg) {
		return 0
	}
	if m := minutesCap.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return time.Duration(n) * time.Minute
	}
	if m := timeSpanCap.FindStringSubmatch(msg); m != nil {
		days, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[2])
		mi, _ := strconv.Atoi(m[3])
		s, _ := strconv.Atoi(m[4])
		return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(s)*time.Second
	}
	return 0
}

func parseExistingID(msg string) string {
	if m := existingID.FindStringSubmatch(msg); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field string // the Config field's Go name, e.g. "Subscriptions[0].Resource"
	Err   error  // what is wrong
}

// Error returns "subscriptions: Config.<Field>: <Err>".
func (e *ConfigError) Error() string {
	return fmt.Sprintf("subscriptions: Config.%s: %v", e.Field, e.Err)
}

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// Sentinels a ConfigError wraps.
var (
	// ErrRequired means a required field is empty.
	ErrRequired = errors.New("required")
	// ErrOutOfRange means a number or duration is outside its bounds.
	ErrOutOfRange = errors.New("out of range")
	// ErrBadValue means a value is malformed (a URL, a change type).
	ErrBadValue = errors.New("malformed value")
)
