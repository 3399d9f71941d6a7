package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ServeHTTP answers a validation handshake or receives a notification
// batch. Every answer it gives, and why, is listed in the package
// documentation; errors are a JSON object {"error": "..."}.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if err := r.Handle(w, req); err != nil {
		writeError(w, err)
	}
}

// Handle is [Receiver.ServeHTTP] for adapters that render error answers
// themselves, as an Echo or Gin error handler does. It answers a handshake
// or a batch exactly as ServeHTTP does, except that on failure it writes
// only the headers the answer needs (Retry-After with a 503, Allow with a
// 405) and returns an [*Error]: answer with its Status and Message.
func (r *Receiver) Handle(w http.ResponseWriter, req *http.Request) error {
	if tok, ok := ValidationToken(req.URL.RawQuery); ok {
		return r.setHeaders(w, r.handshake(w, req, tok))
	}
	query := req.URL.Query()
	ctx, span := r.tracer.start(req.Context(), spanReceive, receiveKind(req.Context()))
	body, err := r.readRequest(w, req)
	if err != nil {
		endReceive(span, nil, err)
		r.stats.invalid.Add(1)
		r.log.WarnContext(ctx, "notification request refused", "status", statusOf(err), "error", err)
		return r.setHeaders(w, err)
	}
	if _, err := r.receiveSpan(ctx, span, body, query); err != nil {
		return r.setHeaders(w, err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// setHeaders sets the headers err's answer carries, and returns err.
func (r *Receiver) setHeaders(w http.ResponseWriter, err error) error {
	switch statusOf(err) {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", r.retryAfter)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", "POST")
	}
	return err
}

// handshake answers a validation handshake: 200 with the decoded token as a
// text/plain body, byte-exact, with X-Content-Type-Options: nosniff so no
// browser renders it as HTML; or an error for a token over
// Config.MaxTokenBytes (400) or a method other than POST or GET (405).
func (r *Receiver) handshake(w http.ResponseWriter, req *http.Request, tok string) error {
	switch {
	case req.Method != http.MethodPost && req.Method != http.MethodGet:
		r.stats.invalid.Add(1)
		return &Error{Op: "handshake", kind: kindMethod, Err: ErrMethod}
	case len(tok) > r.cfg.MaxTokenBytes:
		r.stats.invalid.Add(1)
		return &Error{Op: "handshake", kind: kindInvalid, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTokenTooLong, len(tok), r.cfg.MaxTokenBytes)}
	}
	r.stats.handshakes.Add(1)
	// The keys are canonical, so they are set directly, and the values share
	// one array: one allocation rather than one per header.
	vals := [...]string{"text/plain; charset=utf-8", "nosniff", strconv.Itoa(len(tok)), "no-store"}
	h := w.Header()
	h["Content-Type"] = vals[0:1:1]
	h["X-Content-Type-Options"] = vals[1:2:2]
	h["Content-Length"] = vals[2:3:3]
	h["Cache-Control"] = vals[3:4:4]
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tok)
	if r.log.Enabled(req.Context(), slog.LevelInfo) {
		r.log.InfoContext(req.Context(), "validation handshake answered", "path", logText(req.URL.Path, maxLogValueLen))
	}
	return nil
}

// ValidationToken returns the first validationToken parameter of a raw
// query (a URL's RawQuery), decoded, and whether there is one: whether a
// request is a validation handshake. It answers exactly as
// url.ParseQuery(rawQuery) would, without building the map: pairs
// are split at '&'; a pair holding a ';', or whose key or value is not
// valid query escaping, is skipped. It allocates only for a value (or a
// key) that needs unescaping. A query of many parameters goes through
// url.ParseQuery itself, which has its own limit on their number.
// Middleware that must tell handshakes apart calls it rather than
// parsing the query per request.
func ValidationToken(rawQuery string) (string, bool) {
	const name = "validationToken"
	if strings.Count(rawQuery, "&") >= maxScannedParams {
		q, _ := url.ParseQuery(rawQuery)
		return q.Get(name), q.Has(name)
	}
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if strings.Contains(pair, ";") {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if key != name {
			if !strings.ContainsAny(key, "%+") {
				continue // unescaping cannot make it the name
			}
			if k, err := url.QueryUnescape(key); err != nil || k != name {
				continue
			}
		}
		if v, err := url.QueryUnescape(value); err == nil {
			return v, true
		}
	}
	return "", false
}

// maxScannedParams is the most query parameters ValidationToken scans
// itself.
const maxScannedParams = 1000

// readRequest checks a notification POST and reads its body, at most
// Config.MaxBodyBytes. It fails with [ErrMethod] (405) for anything but
// POST, [ErrUnsupportedMediaType] (415) for a body that is not
// application/json (parameters such as charset are accepted), [ErrTooLarge]
// (413) over the limit, whether the body has a Content-Length or is
// chunked, or over a smaller http.MaxBytesReader an adapter put in front.
func (r *Receiver) readRequest(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if req.Method != http.MethodPost {
		return nil, &Error{Op: "check", kind: kindMethod, Err: ErrMethod}
	}
	if !isJSON(req.Header.Get("Content-Type")) {
		return nil, &Error{Op: "check", kind: kindUnsupported, Err: ErrUnsupportedMediaType}
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		return nil, &Error{Op: "read", kind: kindTooLarge, Err: fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, r.cfg.MaxBodyBytes)}
	}
	body, err := readBody(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes), req.ContentLength)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &Error{Op: "read", kind: kindTooLarge, Err: fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, mbe.Limit)}
		}
		return nil, &Error{Op: "read", kind: kindInvalid, Err: fmt.Errorf("%w: reading body: %v", ErrMalformed, err)}
	}
	return body, nil
}

// isJSON reports whether the Content-Type ct is application/json, with
// or without parameters. What Graph sends is recognised without
// mime.ParseMediaType, which allocates a map for the parameters.
func isJSON(ct string) bool {
	switch ct {
	case "application/json", "application/json; charset=utf-8":
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// maxPrealloc bounds the buffer readBody allocates on a request's word
// (its Content-Length) before the bytes arrive.
const maxPrealloc = 512 << 10

// readBody is io.ReadAll with a first buffer as large as the declared
// length (at most maxPrealloc), instead of 512 bytes that are grown and
// copied: for a 4 MiB batch io.ReadAll allocates about 8 MiB.
func readBody(rd io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 {
		// ReadFrom wants bytes.MinRead free before each read, EOF included.
		buf.Grow(int(min(length, maxPrealloc)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(rd)
	return buf.Bytes(), err
}

// writeError writes {"error": "..."} with err's status and Message.
func writeError(w http.ResponseWriter, err error) {
	status, msg := statusOf(err), http.StatusText(statusOf(err))
	if e, ok := errors.AsType[*Error](err); ok {
		msg = e.Message()
	}
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
