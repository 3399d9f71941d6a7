package graphsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ValidationTokenPrefix starts every validationToken the simulator sends,
// as Graph's do; the rest is a request id. Receivers must treat the token
// as opaque.
const ValidationTokenPrefix = "Validation: Testing client application reachability for subscription Request-Id: "

// HandshakeURL returns rawURL with validationToken=token appended to its
// query (existing parameters are kept), encoded as Graph does: form
// encoding (+ for spaces) with lower-case percent escapes such as %3a.
func HandshakeURL(rawURL, token string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := "validationToken=" + lowerEscapes(url.QueryEscape(token))
	if u.RawQuery != "" {
		u.RawQuery += "&" + q
	} else {
		u.RawQuery = q
	}
	return u.String(), nil
}

func lowerEscapes(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			b[i+1] = toLowerHex(b[i+1])
			b[i+2] = toLowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func toLowerHex(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + ('a' - 'A')
	}
	return c
}

// validateEndpoint performs the validation handshake of the protocol doc
// §1: POST with an empty text/plain body and the validationToken query,
// no Authorization header, within HandshakeTimeout, over at most the
// subscription's latestSupportedTlsVersion; the answer must be 200, with
// Content-Type text/plain and a body equal to the decoded token. A failure
// names its cause (connection refused, timeout, TLS, status, media type,
// body) in the log and in the 400's message, after Graph's own sentence.
func (s *Sim) validateEndpoint(ctx context.Context, rawURL, tlsVersion string) error {
	token := ValidationTokenPrefix + NewGUID()
	target, err := HandshakeURL(rawURL, token)
	if err != nil {
		return badRequest(ErrBadRequest, "Invalid request: notificationUrl is not a URL.")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, http.NoBody)
	if err != nil {
		return badRequest(ErrBadRequest, "Invalid request: notificationUrl is not a URL.")
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	start := time.Now()
	resp, err := s.clientFor(tlsVersion).Do(req)
	fail := func(msg, cause string) error {
		s.log.Warn("validation failed", "url", redactURL(rawURL), "reason", cause, "duration", time.Since(start))
		return badRequestCode("ValidationError", ErrValidationFailed, "%s (graphsim: %s)", msg, cause)
	}
	const must200 = "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail("Subscription validation request timed out.", fmt.Sprintf("no answer within %s", s.cfg.HandshakeTimeout))
		}
		return fail(must200, transportCause(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail("Subscription validation request timed out.", fmt.Sprintf("body not complete within %s", s.cfg.HandshakeTimeout))
		}
		return fail(must200, "the answer's body could not be read")
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Sprintf("Subscription validation request failed. HTTP status code is '%s'.", statusName(resp.StatusCode)),
			fmt.Sprintf("status %d, want 200", resp.StatusCode))
	}
	if string(body) != token {
		cause := fmt.Sprintf("the body (%d bytes) is not the decoded validationToken", len(body))
		if strings.Contains(string(body), "%3a") || strings.Contains(string(body), "%3A") || strings.Contains(string(body), "+") {
			cause = "the body is the URL-encoded token; answer the decoded validationToken"
		}
		return fail("Subscription validation request failed. Response must exactly match validationToken query parameter.", cause)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		// §1: "respond ... with a content type of text/plain".
		return fail("Subscription validation request failed. Response must have a Content-Type of text/plain.",
			fmt.Sprintf("Content-Type %q, want text/plain", clip(resp.Header.Get("Content-Type"))))
	}
	s.log.Info("validation passed", "url", redactURL(rawURL), "duration", time.Since(start))
	return nil
}

// statusName returns .NET's name of an HTTP status, as Graph prints it.
func statusName(code int) string {
	return strings.ReplaceAll(http.StatusText(code), " ", "")
}

func badRequestCode(code string, sentinel error, format string, args ...any) *Error {
	e := badRequest(sentinel, format, args...)
	e.Code = code
	return e
}

// redactURL drops the query of a URL for logs: it may carry keys.
func redactURL(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] + "?REDACTED"
	}
	return raw
}
