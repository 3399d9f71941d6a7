package receiver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/token"
)

// Defaults for [Config].
const (
	DefaultMaxBodyBytes   = 4 << 20
	DefaultMaxTokenBytes  = 2048
	DefaultTimeout        = 2500 * time.Millisecond
	DefaultRetryAfter     = 5 * time.Second
	DefaultMaxDecryptWait = time.Second
	MaxClientStateLen     = 255
	DefaultMaxItems       = 10000
	// MaxValidationTokens and MaxValidationTokenBytes bound a batch's
	// validationTokens (Graph sends one per app and tenant; Entra tokens
	// are a few KiB); beyond them the request is answered 400.
	MaxValidationTokens     = 1000
	MaxValidationTokenBytes = 16 << 10
)

// Config configures a [Receiver]. Sink and one of ClientStates,
// ClientStateLookup or InsecureSkipClientState are required; every other
// field has a working zero value.
type Config struct {
	// Sink stores every batch before the Receiver answers 202. Required.
	Sink Sink

	// ClientStates are the accepted clientState values, for any
	// subscription. Several may be listed while a secret is rotated. Each is
	// at most 255 characters.
	ClientStates []string
	// ClientStateLookup returns the clientState expected for a subscription.
	// It overrides ClientStates. Return ErrUnknownSubscription (or an error
	// wrapping it) for a subscription you do not know: the item is rejected.
	// Any other error means the lookup is unavailable: the request is
	// answered 503 and Graph redelivers.
	ClientStateLookup func(ctx context.Context, subscriptionID string) (string, error)
	// InsecureSkipClientState accepts every item without a clientState
	// check. WARNING: anyone who knows the URL can then inject
	// notifications. For tests only.
	InsecureSkipClientState bool

	// Tokens validates the validationTokens of rich batches. Without it a
	// batch carrying encryptedContent is rejected (fail closed) unless
	// InsecureSkipTokenValidation is set.
	Tokens *token.Validator
	// InsecureSkipTokenValidation accepts rich notifications without
	// validating their JWTs. WARNING: the clientState is then the only proof
	// of origin. For tests only.
	InsecureSkipTokenValidation bool

	// Keys decrypts encryptedContent. Without it rich items are rejected
	// with ReasonDecrypt.
	Keys *decrypt.KeyRing
	// MaxDecryptWait bounds how long a rich batch waits for CPU while
	// other batches decrypt. Batches get the cores in arrival order, each
	// using up to one core per item; past this wait the batch is answered
	// 503 at once, so that under overload the batches we take stay fast
	// and Graph retries the others later, instead of every answer drifting
	// past Graph's 3 s limit (which gets the endpoint throttled). Default 1 s.
	MaxDecryptWait time.Duration

	// MaxBodyBytes caps the request body. Default 4 MiB; over it: 413.
	MaxBodyBytes int64
	// MaxItems caps the notifications in one request. Default 10,000;
	// over it: 413.
	MaxItems int
	// MaxTokenBytes caps the decoded validationToken of a handshake.
	// Default 2048; over it: 400.
	MaxTokenBytes int
	// Timeout bounds the work on one batch (token validation and delivery),
	// within Graph's 3 s budget. Default 2.5 s.
	Timeout time.Duration
	// RetryAfter is sent with 503 answers. Default 5 s.
	RetryAfter time.Duration

	// Logger receives one line per request (Info) and one per rejected
	// item (Warn), never with secrets. Nil discards.
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Receiver receives Graph change notifications. It is an [http.Handler] and
// safe for concurrent use.
type Receiver struct {
	cfg          Config
	log          *slog.Logger
	stateHashes  [][sha256.Size]byte
	retryAfter   string
	stats        counters
	decryptLimit int
	cpu          *semaphore.Weighted // decryption slots, one per core, granted in arrival order
}

// New returns a Receiver for cfg. It validates cfg and copies it.
func New(cfg Config) (*Receiver, error) {
	if cfg.Sink == nil {
		return nil, errors.New("receiver: Config.Sink is required")
	}
	if len(cfg.ClientStates) == 0 && cfg.ClientStateLookup == nil && !cfg.InsecureSkipClientState {
		return nil, errors.New("receiver: set Config.ClientStates or Config.ClientStateLookup (or, for tests only, InsecureSkipClientState)")
	}
	r := &Receiver{cfg: cfg}
	r.cfg.ClientStates = append([]string(nil), cfg.ClientStates...)
	for i, s := range r.cfg.ClientStates {
		if s == "" {
			return nil, fmt.Errorf("receiver: Config.ClientStates[%d] is empty", i)
		}
		if len(s) > MaxClientStateLen {
			return nil, fmt.Errorf("receiver: Config.ClientStates[%d] is %d bytes, over Graph's limit of %d", i, len(s), MaxClientStateLen)
		}
		r.stateHashes = append(r.stateHashes, sha256.Sum256([]byte(s)))
	}
	if r.cfg.MaxBodyBytes <= 0 {
		r.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if r.cfg.MaxItems <= 0 {
		r.cfg.MaxItems = DefaultMaxItems
	}
	if r.cfg.MaxTokenBytes <= 0 {
		r.cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if r.cfg.Timeout <= 0 {
		r.cfg.Timeout = DefaultTimeout
	}
	if r.cfg.RetryAfter <= 0 {
		r.cfg.RetryAfter = DefaultRetryAfter
	}
	r.retryAfter = strconv.Itoa(int((r.cfg.RetryAfter + time.Second - 1) / time.Second))
	if r.cfg.Now == nil {
		r.cfg.Now = time.Now
	}
	r.log = r.cfg.Logger
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.decryptLimit = runtime.GOMAXPROCS(0)
	r.cpu = semaphore.NewWeighted(int64(r.decryptLimit))
	if r.cfg.MaxDecryptWait <= 0 {
		r.cfg.MaxDecryptWait = DefaultMaxDecryptWait
	}
	return r, nil
}

// ValidationToken returns the decoded validationToken query parameter of
// req, and whether req is a validation handshake at all.
func ValidationToken(req *http.Request) (string, bool) {
	q := req.URL.Query()
	if !q.Has("validationToken") {
		return "", false
	}
	return q.Get("validationToken"), true
}

// ServeHTTP answers a validation handshake or receives a notification batch.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.Handshake(w, req) {
		return
	}
	body, err := r.ReadRequest(w, req)
	if err != nil {
		r.writeError(w, err)
		return
	}
	if _, err := r.Receive(req.Context(), body, req.URL.Query()); err != nil {
		r.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// RetryAfter returns the Retry-After header value (seconds) sent with 503.
func (r *Receiver) RetryAfter() string { return r.retryAfter }

// MaxBodyBytes returns the configured body limit.
func (r *Receiver) MaxBodyBytes() int64 { return r.cfg.MaxBodyBytes }

// Handshake answers req if it is a validation handshake (it carries the
// validationToken query parameter) and reports whether it did. The answer is
// 200 with the decoded token as a text/plain body, byte-exact, with
// X-Content-Type-Options: nosniff so no browser renders it as HTML; or 400
// when the token is over Config.MaxTokenBytes; or 405 for a method other
// than POST or GET.
func (r *Receiver) Handshake(w http.ResponseWriter, req *http.Request) bool {
	tok, ok := ValidationToken(req)
	if !ok {
		return false
	}
	switch {
	case req.Method != http.MethodPost && req.Method != http.MethodGet:
		r.stats.invalid.Add(1)
		r.writeError(w, &Error{Op: "handshake", Kind: KindMethod, Err: ErrMethod})
	case len(tok) > r.cfg.MaxTokenBytes:
		r.stats.invalid.Add(1)
		r.writeError(w, &Error{Op: "handshake", Kind: KindInvalid, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTokenTooLong, len(tok), r.cfg.MaxTokenBytes)})
	default:
		r.stats.handshakes.Add(1)
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(tok)))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, tok)
		r.log.InfoContext(req.Context(), "validation handshake answered", "path", req.URL.Path)
	}
	return true
}

// ReadRequest checks a notification POST and reads its body, at most
// Config.MaxBodyBytes. It fails with an [*Error]: [ErrMethod] (405) for
// anything but POST, [ErrUnsupportedMediaType] (415) for a body that is not
// application/json (parameters such as charset are accepted), [ErrTooLarge]
// (413) over the limit. Failures are counted in Stats.Invalid.
func (r *Receiver) ReadRequest(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	body, err := r.readRequest(w, req)
	if err != nil {
		r.stats.invalid.Add(1)
		r.log.WarnContext(req.Context(), "notification request refused", "status", StatusOf(err), "error", err)
	}
	return body, err
}

func (r *Receiver) readRequest(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if req.Method != http.MethodPost {
		return nil, &Error{Op: "check", Kind: KindMethod, Err: ErrMethod}
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &Error{Op: "check", Kind: KindUnsupported, Err: ErrUnsupportedMediaType}
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		return nil, &Error{Op: "read", Kind: KindTooLarge, Err: fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, r.cfg.MaxBodyBytes)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &Error{Op: "read", Kind: KindTooLarge, Err: fmt.Errorf("%w: limit is %d bytes", ErrTooLarge, mbe.Limit)}
		}
		return nil, &Error{Op: "read", Kind: KindInvalid, Err: fmt.Errorf("%w: reading body: %v", ErrMalformed, err)}
	}
	return body, nil
}

// Receive processes one notification body (the request's query string
// carried along) and delivers the outcome to the Sink. It returns the Batch
// that was delivered, or an [*Error]: [KindInvalid] for a body that is not a
// changeNotificationCollection, [KindUnavailable] when the batch could not
// be stored or verified right now. Forged or undecryptable items do not make
// an error: they are in Batch.Rejected.
func (r *Receiver) Receive(ctx context.Context, body []byte, query url.Values) (*Batch, error) {
	start := r.cfg.Now()
	b, err := r.receive(ctx, body, query)
	attrs := []any{"duration", r.cfg.Now().Sub(start)}
	if b != nil {
		attrs = append(attrs, "accepted", len(b.Notifications), "rejected", len(b.Rejected))
	}
	if err != nil {
		attrs = append(attrs, "status", StatusOf(err), "error", err)
		if StatusOf(err) == http.StatusServiceUnavailable {
			r.stats.unavailable.Add(1)
			r.log.WarnContext(ctx, "notification batch not taken", attrs...)
		} else {
			r.stats.invalid.Add(1)
			r.log.WarnContext(ctx, "notification batch refused", attrs...)
		}
		return nil, err
	}
	r.stats.batches.Add(1)
	r.stats.accepted.Add(uint64(len(b.Notifications)))
	if len(b.Rejected) > 0 {
		// One line per request, however many items a forger sent; the
		// per-item lines are at Debug.
		byReason := map[Reason]int{}
		for _, rj := range b.Rejected {
			r.stats.reject(rj.Reason)
			byReason[rj.Reason]++
		}
		first := b.Rejected[0]
		r.log.WarnContext(ctx, "notifications rejected", "by_reason", byReason,
			"first", first.Notification, "first_reason", string(first.Reason), "first_error", first.Err)
	}
	r.log.InfoContext(ctx, "notification batch accepted", append(attrs, "status", http.StatusAccepted)...)
	return b, nil
}

func (r *Receiver) receive(ctx context.Context, body []byte, query url.Values) (*Batch, error) {
	// The budget covers parsing too: Graph's 3 s clock is already running.
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	coll, err := Parse(body)
	if err != nil {
		return nil, &Error{Op: "parse", Kind: KindInvalid, Err: err}
	}
	if len(coll.Value) > r.cfg.MaxItems {
		return nil, &Error{Op: "parse", Kind: KindTooLarge, Err: fmt.Errorf("%w: %d items, limit %d", ErrTooManyItems, len(coll.Value), r.cfg.MaxItems)}
	}
	if len(coll.ValidationTokens) > MaxValidationTokens {
		return nil, &Error{Op: "parse", Kind: KindInvalid, Err: fmt.Errorf("%w: %d validationTokens, limit %d", ErrMalformed, len(coll.ValidationTokens), MaxValidationTokens)}
	}
	for i, t := range coll.ValidationTokens {
		if len(t) > MaxValidationTokenBytes {
			return nil, &Error{Op: "parse", Kind: KindInvalid, Err: fmt.Errorf("%w: validationTokens[%d] is %d bytes, limit %d", ErrMalformed, i, len(t), MaxValidationTokenBytes)}
		}
		// A JWT is base64url and dots; anything else (which would also grow
		// when re-encoded for the quarantine) is not a token.
		if strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return nil, &Error{Op: "parse", Kind: KindInvalid, Err: fmt.Errorf("%w: validationTokens[%d] is not printable ASCII", ErrMalformed, i)}
		}
	}

	b := &Batch{Query: query, ReceivedAt: r.cfg.Now(), ValidationTokens: coll.ValidationTokens}
	var rejected []*Rejected
	reject := func(n *Notification, reason Reason, err error) {
		rejected = append(rejected, &Rejected{Notification: n, Reason: reason, Err: err})
		r.log.DebugContext(ctx, "notification rejected", "reason", string(reason), "notification", n, "error", err)
	}

	candidates := make([]*Notification, 0, len(coll.Value))
	for _, n := range coll.Value {
		if err := n.Validate(); err != nil {
			reject(n, ReasonMalformed, err)
			continue
		}
		if isEventHubsValidation(n) {
			continue
		}
		ok, err := r.checkClientState(ctx, n)
		if err != nil {
			return nil, &Error{Op: "clientState lookup", Kind: KindUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		}
		if !ok {
			reject(n, ReasonClientState, ErrClientStateMismatch)
			continue
		}
		candidates = append(candidates, n)
	}

	candidates, err = r.checkTokens(ctx, coll, candidates, reject)
	if err != nil {
		return nil, err
	}
	candidates, err = r.decryptAll(ctx, candidates, reject)
	if err != nil {
		return nil, err
	}

	b.Notifications = candidates
	b.Rejected = rejected
	if len(b.Notifications) == 0 && len(b.Rejected) == 0 {
		return b, nil
	}
	if err := r.cfg.Sink.Deliver(ctx, b); err != nil {
		return b, &Error{Op: "deliver", Kind: KindUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	return b, nil
}

// isEventHubsValidation reports the placeholder item Event Hubs delivery
// sends instead of a handshake (protocol doc §1); it is ignored.
func isEventHubsValidation(n *Notification) bool {
	return n.SubscriptionID == "NA" && strings.HasPrefix(n.ChangeType, "Validation:")
}

// checkClientState compares n's clientState with the expected value(s) in
// constant time. Both sides are hashed first so that neither the length nor
// the content of a secret leaks through timing.
func (r *Receiver) checkClientState(ctx context.Context, n *Notification) (bool, error) {
	if r.cfg.InsecureSkipClientState {
		return true, nil
	}
	got := sha256.Sum256([]byte(n.ClientState))
	if r.cfg.ClientStateLookup != nil {
		want, err := r.cfg.ClientStateLookup(ctx, n.SubscriptionID)
		if errors.Is(err, ErrUnknownSubscription) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if want == "" {
			return false, nil
		}
		w := sha256.Sum256([]byte(want))
		return subtle.ConstantTimeCompare(got[:], w[:]) == 1, nil
	}
	match := 0
	for i := range r.stateHashes {
		match |= subtle.ConstantTimeCompare(got[:], r.stateHashes[i][:])
	}
	return match == 1, nil
}

// checkTokens applies the validationTokens rule (protocol doc §6): when any
// candidate is rich, every token of the batch must be valid and cover every
// candidate's tenant, else every candidate is rejected. It returns the
// candidates that remain.
func (r *Receiver) checkTokens(ctx context.Context, coll *Collection, candidates []*Notification, reject func(*Notification, Reason, error)) ([]*Notification, error) {
	rich := false
	for _, n := range candidates {
		if n.IsRich() {
			rich = true
			break
		}
	}
	if len(candidates) == 0 || !rich && (len(coll.ValidationTokens) == 0 || r.cfg.Tokens == nil) {
		return candidates, nil
	}
	rejectAll := func(reason Reason, err error) []*Notification {
		for _, n := range candidates {
			reject(n, reason, err)
		}
		return nil
	}
	switch {
	case len(coll.ValidationTokens) == 0 && coll.TokensNull:
		r.log.WarnContext(ctx, "rich notifications arrived with validationTokens: null: Graph could not sign them because of the app's configuration; "+
			"either set appRoleAssignmentRequired=false on the app's service principal or assign an app role to the 'Microsoft Graph Change Tracking' service principal")
		return rejectAll(ReasonTokenMissing, fmt.Errorf("%w: validationTokens is null", token.ErrNoTokens)), nil
	case len(coll.ValidationTokens) == 0:
		return rejectAll(ReasonTokenMissing, token.ErrNoTokens), nil
	case r.cfg.Tokens == nil && r.cfg.InsecureSkipTokenValidation:
		return candidates, nil
	case r.cfg.Tokens == nil:
		r.log.WarnContext(ctx, "rich notifications arrived but no token validator is configured: set the app id to validate their validationTokens")
		return rejectAll(ReasonTokenInvalid, ErrNoTokenValidator), nil
	}
	// Tokens vouch for the rich items' tenants; basic items are
	// authenticated by their clientState alone (protocol doc §4, §6).
	tenants := make([]string, 0, 1)
	for _, n := range candidates {
		if n.IsRich() && !contains(tenants, n.TenantID) {
			tenants = append(tenants, n.TenantID)
		}
	}
	err := r.cfg.Tokens.Validate(ctx, coll.ValidationTokens, tenants)
	switch {
	case err == nil:
		return candidates, nil
	case errors.Is(err, token.ErrUnavailable):
		return nil, &Error{Op: "validate tokens", Kind: KindUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	default:
		return rejectAll(ReasonTokenInvalid, err), nil
	}
}

// clip bounds untrusted text for a log line.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// decryptAll decrypts the rich candidates, in parallel when there are
// several, and returns the candidates that remain in their original order.
// It fails with KindUnavailable when the CPU is not free within
// Config.MaxDecryptWait. An item encrypted for a certificate we do not
// hold is quarantined like any undecryptable item (and stays replayable
// once its key is added); an operator warning names the certificate.
func (r *Receiver) decryptAll(ctx context.Context, candidates []*Notification, reject func(*Notification, Reason, error)) ([]*Notification, error) {
	var rich []int
	for i, n := range candidates {
		if n.IsRich() {
			rich = append(rich, i)
		}
	}
	if len(rich) == 0 {
		return candidates, nil
	}
	errs := make([]error, len(candidates))
	work := func(i int) {
		n := candidates[i]
		if r.cfg.Keys == nil {
			errs[i] = ErrNoKeys
			return
		}
		pt, err := r.cfg.Keys.Decrypt(n.EncryptedContent)
		if err != nil {
			errs[i] = err
			return
		}
		n.Content = pt
	}
	workers := min(r.decryptLimit, len(rich))
	wait, cancel := context.WithTimeout(ctx, r.cfg.MaxDecryptWait)
	err := r.cpu.Acquire(wait, int64(workers))
	cancel()
	if err != nil {
		return nil, &Error{Op: "decrypt", Kind: KindUnavailable, Err: fmt.Errorf("%w: no CPU for decryption within %v", ErrUnavailable, r.cfg.MaxDecryptWait)}
	}
	if workers == 1 {
		for _, i := range rich {
			work(i)
		}
	} else {
		var wg sync.WaitGroup
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				for {
					k := int(next.Add(1)) - 1
					if k >= len(rich) {
						return
					}
					work(rich[k])
				}
			})
		}
		wg.Wait()
	}
	r.cpu.Release(int64(workers))
	for i, err := range errs {
		if errors.Is(err, decrypt.ErrUnknownKey) {
			ec := candidates[i].EncryptedContent
			r.log.WarnContext(ctx, "rich notification encrypted for a certificate this receiver does not hold: add its key, then replay the quarantined items",
				"encryption_certificate_id", clip(ec.EncryptionCertificateID), "encryption_certificate_thumbprint", clip(ec.EncryptionCertificateThumbprint))
			break
		}
	}
	kept := candidates[:0:0]
	for i, n := range candidates {
		if errs[i] != nil {
			reject(n, ReasonDecrypt, errs[i])
			continue
		}
		kept = append(kept, n)
	}
	return kept, nil
}

func (r *Receiver) writeError(w http.ResponseWriter, err error) {
	status := StatusOf(err)
	h := w.Header()
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", r.retryAfter)
	}
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", "POST")
	}
	WriteJSONError(w, status, err)
}

// WriteJSONError writes {"error": "..."} with status. For 503 the message is
// generic, so that nothing about our internals leaks.
func WriteJSONError(w http.ResponseWriter, status int, err error) {
	msg := http.StatusText(status)
	if status < 500 && err != nil {
		msg = err.Error()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "{\"error\":%s}\n", strconv.Quote(msg))
}
