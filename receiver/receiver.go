package receiver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/token"
)

// Defaults and limits for [Config].
const (
	DefaultMaxBodyBytes  = 4 << 20
	DefaultMaxTokenBytes = 2048
	DefaultTimeout       = 2500 * time.Millisecond
	DefaultRetryAfter    = 5 * time.Second
	// DefaultMaxDecryptWait leaves a batch 500 ms of DefaultTimeout for
	// delivery after its decryption.
	DefaultMaxDecryptWait = 2 * time.Second
	DefaultMaxItems       = 10000
	// MaxClientStateLen is the longest clientState, in characters, that
	// Config.ClientStates accepts: Graph's documented limit for a
	// subscription's clientState.
	MaxClientStateLen = 128
	// MaxValidationTokens and MaxValidationTokenBytes bound a batch's
	// validationTokens (Graph sends one per app and tenant; Entra tokens
	// are a few KiB); beyond them the request is answered 400.
	MaxValidationTokens     = 1000
	MaxValidationTokenBytes = 16 << 10
	// MaxDecryptsPerRequest caps the rich items of one request that are
	// decrypted, one RSA private-key operation each: 1,000 is ten of the
	// 100-item batches Graph sends, about 0.4 s of RSA-2048 on two cores.
	// Rich items beyond it are rejected (quarantined, so they can be
	// replayed) with an error wrapping [ErrTooManyItems], so one request of
	// garbage dataKeys cannot cost more than that.
	MaxDecryptsPerRequest = 1000
)

// Config configures a [Receiver]. Sink and one of ClientStates,
// ClientStateLookup or InsecureSkipClientState are required; every other
// field has a working zero value. Negative numbers and durations are
// invalid.
type Config struct {
	// Sink stores every batch before the Receiver answers 202. Required.
	Sink Sink

	// ClientStates are the accepted clientState values, for any
	// subscription. Several may be listed while a secret is rotated. Each is
	// at most MaxClientStateLen (128) characters.
	ClientStates []string
	// ClientStateLookup returns the clientState expected for a subscription.
	// It takes precedence over ClientStates. Return ErrUnknownSubscription
	// (or an error wrapping it) for a subscription you do not know: the
	// item is then checked against ClientStates, and rejected when none
	// matches (or none is set).
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
	// MaxDecryptWait is a rich batch's decryption budget: the longest its
	// decryption may take, the decryption work admitted before it
	// included. A rich batch is admitted when the work already queued plus
	// its own, estimated from the measured cost of recent items of the same
	// key size and spread over the cores, fits in this budget (and in what
	// is left of Timeout); otherwise it is answered 503 with Retry-After at
	// once, so that under overload the batches we take stay within Graph's
	// 3 s limit (a slower endpoint gets throttled) and Graph retries the
	// others later. A batch arriving when nothing is queued is always
	// admitted. Items whose unwrapped key Keys has cached (a batch Graph
	// delivers again) need no RSA: they count as no work and are decrypted
	// at once. Admitted batches get the cores in arrival order. Default
	// 2 s.
	MaxDecryptWait time.Duration

	// MaxBodyBytes caps the request body. Default 4 MiB; over it: 413.
	MaxBodyBytes int64
	// MaxItems caps the notifications in one request. Default 10,000;
	// over it: 413.
	MaxItems int
	// MaxTokenBytes caps the decoded validationToken of a handshake.
	// Default 2048; over it: 400.
	MaxTokenBytes int
	// Timeout bounds the work on one batch (token validation, decryption and
	// delivery), within Graph's 3 s budget. Default 2.5 s.
	Timeout time.Duration
	// RetryAfter is sent with 503 answers, rounded up to whole seconds.
	// Default 5 s.
	RetryAfter time.Duration

	// Logger receives one line per request: Info for a request answered
	// 200 or 202, Warn for one refused or not taken; a batch with rejected
	// items adds one Warn line, whatever their number, and at Debug a line
	// for each of the first 8. Lines never carry secrets, and every value
	// taken from the request is clipped and sanitised. Nil discards.
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time

	// TracerProvider, when set, traces every notification batch (see
	// "Tracing" in the package documentation): a span per batch with a
	// child span for each verification step, and the batch span's context
	// handed to the Sink, so that the publish and the consumers continue
	// the trace. Spans carry counts and outcomes, never a clientState, a
	// token, content or a string from the request. Nil or a
	// noop.TracerProvider: no spans, at no cost (the global provider is
	// never used).
	TracerProvider trace.TracerProvider
}

// Validate reports the first invalid field of c as a [*ConfigError], or
// nil. [New] calls it.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Sink == nil {
		return bad("Sink", "required")
	}
	if len(c.ClientStates) == 0 && c.ClientStateLookup == nil && !c.InsecureSkipClientState {
		return bad("ClientStates", "required: set ClientStates or ClientStateLookup (or, for tests only, InsecureSkipClientState)")
	}
	for i, s := range c.ClientStates {
		// The message names the entry, never its value.
		if s == "" {
			return bad("ClientStates", "entry %d is empty", i+1)
		}
		if n := utf8.RuneCountInString(s); n > MaxClientStateLen {
			return bad("ClientStates", "entry %d is %d characters, over Graph's limit of %d", i+1, n, MaxClientStateLen)
		}
	}
	for _, d := range []struct {
		field string
		v     int64
	}{
		{"MaxDecryptWait", int64(c.MaxDecryptWait)},
		{"MaxBodyBytes", c.MaxBodyBytes},
		{"MaxItems", int64(c.MaxItems)},
		{"MaxTokenBytes", int64(c.MaxTokenBytes)},
		{"Timeout", int64(c.Timeout)},
		{"RetryAfter", int64(c.RetryAfter)},
	} {
		if d.v < 0 {
			return bad(d.field, "negative (0 means the default)")
		}
	}
	return nil
}

// Receiver receives Graph change notifications. It is an [http.Handler] and
// safe for concurrent use.
type Receiver struct {
	cfg         Config
	log         *slog.Logger
	stateHashes [][sha256.Size]byte
	retryAfter  string
	stats       counters
	work        *admission
	tracer      tracer
}

// New returns a Receiver for cfg. It validates cfg (see [Config.Validate])
// and copies it.
func New(cfg Config) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg}
	r.cfg.ClientStates = slices.Clone(cfg.ClientStates)
	for _, s := range r.cfg.ClientStates {
		r.stateHashes = append(r.stateHashes, sha256.Sum256([]byte(s)))
	}
	if r.cfg.MaxBodyBytes == 0 {
		r.cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if r.cfg.MaxItems == 0 {
		r.cfg.MaxItems = DefaultMaxItems
	}
	if r.cfg.MaxTokenBytes == 0 {
		r.cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if r.cfg.Timeout == 0 {
		r.cfg.Timeout = DefaultTimeout
	}
	if r.cfg.RetryAfter == 0 {
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
	if r.cfg.MaxDecryptWait == 0 {
		r.cfg.MaxDecryptWait = DefaultMaxDecryptWait
	}
	r.work = newAdmission(decryptWorkers())
	r.tracer = newTracer(r.cfg.TracerProvider)
	return r, nil
}

// Receive processes one notification body (the request's query string
// carried along) and delivers the outcome to the Sink. It returns the Batch
// that was delivered, or an [*Error]: status 400 or 413 for a body that is
// not an acceptable changeNotificationCollection, 503 ([ErrUnavailable])
// when the batch could not be verified or stored right now. Forged or
// undecryptable items do not make an error: they are in Batch.Rejected.
func (r *Receiver) Receive(ctx context.Context, body []byte, query url.Values) (*Batch, error) {
	ctx, span := r.tracer.start(ctx, spanReceive, receiveKind(ctx))
	return r.receiveSpan(ctx, span, body, query)
}

// receiveSpan is Receive within the batch span span, which it ends.
func (r *Receiver) receiveSpan(ctx context.Context, span trace.Span, body []byte, query url.Values) (*Batch, error) {
	start := r.cfg.Now()
	b, err := r.receive(ctx, span, body, query)
	endReceive(span, b, err)
	if err != nil {
		attrs := []any{"duration", r.cfg.Now().Sub(start), "status", statusOf(err), "error", err}
		if b != nil {
			attrs = append(attrs, "accepted", len(b.Notifications), "rejected", len(b.Rejected))
		}
		if statusOf(err) == 503 {
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
		// One line per request, however many items a forger sent and
		// however long their fields: every value taken from the request is
		// clipped and sanitised (see logText). The per-item lines are at
		// Debug, for the first few items only.
		var byReason [numReasons]int
		for _, rj := range b.Rejected {
			r.stats.reject(rj.Reason)
			byReason[rj.Reason.index()]++
		}
		counts := make([]slog.Attr, 0, numReasons)
		for i, n := range byReason {
			if n > 0 {
				counts = append(counts, slog.Int(string(reasons()[i]), n))
			}
		}
		first := b.Rejected[0]
		r.log.WarnContext(ctx, "notifications rejected", slog.Attr{Key: "by_reason", Value: slog.GroupValue(counts...)},
			"first", first.Notification, "first_reason", string(first.Reason), "first_error", logText(first.Err.Error(), maxLogErrorLen))
	}
	if r.log.Enabled(ctx, slog.LevelInfo) {
		// Guarded: the arguments cost allocations even when discarded.
		r.log.InfoContext(ctx, "notification batch accepted", "duration", r.cfg.Now().Sub(start),
			"accepted", len(b.Notifications), "rejected", len(b.Rejected), "status", 202)
	}
	return b, nil
}

func (r *Receiver) receive(ctx context.Context, span trace.Span, body []byte, query url.Values) (*Batch, error) {
	// The budget covers parsing too: Graph's 3 s clock is already running.
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	coll, err := Parse(body)
	if err != nil {
		return nil, &Error{Op: "parse", kind: kindInvalid, Err: err}
	}
	batchAttrs(span, coll)
	if len(coll.Value) > r.cfg.MaxItems {
		return nil, &Error{Op: "parse", kind: kindTooLarge, Err: fmt.Errorf("%w: %d items, limit %d", ErrTooManyItems, len(coll.Value), r.cfg.MaxItems)}
	}
	if len(coll.ValidationTokens) > MaxValidationTokens {
		return nil, &Error{Op: "parse", kind: kindInvalid, Err: fmt.Errorf("%w: %d validationTokens, limit %d", ErrMalformed, len(coll.ValidationTokens), MaxValidationTokens)}
	}
	for i, t := range coll.ValidationTokens {
		if len(t) > MaxValidationTokenBytes {
			return nil, &Error{Op: "parse", kind: kindInvalid, Err: fmt.Errorf("%w: validationTokens[%d] is %d bytes, limit %d", ErrMalformed, i, len(t), MaxValidationTokenBytes)}
		}
		// A JWT is base64url and dots; anything else (which would also grow
		// when re-encoded for the quarantine) is not a token.
		if strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return nil, &Error{Op: "parse", kind: kindInvalid, Err: fmt.Errorf("%w: validationTokens[%d] is not printable ASCII", ErrMalformed, i)}
		}
	}

	// Each step keeps some items and rejects others; the rejected ones
	// keep the order of the steps, then of the items.
	kept, rejected, err := r.checkClientStates(ctx, coll.Value)
	if err != nil {
		return nil, err
	}
	kept, rj, err := r.checkTokens(ctx, coll, kept)
	if err != nil {
		return nil, err
	}
	rejected = append(rejected, rj...)
	kept, rj, err = r.decryptAll(ctx, kept)
	if err != nil {
		return nil, err
	}
	rejected = append(rejected, rj...)
	r.logRejected(ctx, rejected)

	b := &Batch{Notifications: kept, Rejected: rejected, Query: query, ReceivedAt: r.cfg.Now(), ValidationTokens: coll.ValidationTokens}
	if len(b.Notifications) == 0 && len(b.Rejected) == 0 {
		return b, nil
	}
	if err := r.cfg.Sink.Deliver(ctx, b); err != nil {
		return b, &Error{Op: "deliver", kind: kindUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	return b, nil
}

// maxDebugRejects bounds the per-item Debug lines of one request.
const maxDebugRejects = 8

func (r *Receiver) logRejected(ctx context.Context, rejected []*Rejected) {
	if len(rejected) == 0 || !r.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	for _, rj := range rejected[:min(len(rejected), maxDebugRejects)] {
		r.log.DebugContext(ctx, "notification rejected", "reason", string(rj.Reason), "notification", rj.Notification,
			"error", logText(rj.Err.Error(), maxLogErrorLen))
	}
	if len(rejected) > maxDebugRejects {
		r.log.DebugContext(ctx, "more notifications rejected, not logged one by one", "count", len(rejected)-maxDebugRejects)
	}
}

func reject(n *Notification, reason Reason, err error) *Rejected {
	return &Rejected{Notification: n, Reason: reason, Err: err}
}

// checkClientStates keeps the well-formed items whose clientState matches
// and rejects the others. Event Hubs' validation placeholders are dropped.
func (r *Receiver) checkClientStates(ctx context.Context, items []*Notification) (kept []*Notification, rejected []*Rejected, err error) {
	ctx, span := r.tracer.start(ctx, spanClientState, trace.SpanKindInternal)
	defer func() { endStep(span, len(rejected), err) }()
	if span.IsRecording() {
		span.SetAttributes(attrItems.Int(len(items)), attrLookup.Bool(r.cfg.ClientStateLookup != nil), attrSkipped.Bool(r.cfg.InsecureSkipClientState))
	}
	kept = make([]*Notification, 0, len(items))
	for _, n := range items {
		if err := n.Validate(); err != nil {
			rejected = append(rejected, reject(n, ReasonMalformed, err))
			continue
		}
		if isEventHubsValidation(n) {
			continue
		}
		ok, err := r.checkClientState(ctx, n)
		if err != nil {
			return nil, nil, &Error{Op: "clientState lookup", kind: kindUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		}
		if !ok {
			rejected = append(rejected, reject(n, ReasonClientState, ErrClientStateMismatch))
			continue
		}
		kept = append(kept, n)
	}
	return kept, rejected, nil
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
		switch {
		case errors.Is(err, ErrUnknownSubscription):
			// Fall back to ClientStates (none: rejected).
		case err != nil:
			return false, err
		case want == "":
			return false, nil
		default:
			w := sha256.Sum256([]byte(want))
			return subtle.ConstantTimeCompare(got[:], w[:]) == 1, nil
		}
	}
	match := 0
	for i := range r.stateHashes {
		match |= subtle.ConstantTimeCompare(got[:], r.stateHashes[i][:])
	}
	return match == 1, nil
}

// checkTokens applies the validationTokens rule (protocol doc §6): when any
// candidate is rich, every token of the batch must be valid and cover every
// rich candidate's tenant, else every candidate is rejected.
func (r *Receiver) checkTokens(ctx context.Context, coll *Collection, candidates []*Notification) (kept []*Notification, rejected []*Rejected, err error) {
	rich := slices.ContainsFunc(candidates, (*Notification).IsRich)
	if len(candidates) == 0 || !rich && (len(coll.ValidationTokens) == 0 || r.cfg.Tokens == nil) {
		return candidates, nil, nil
	}
	ctx, span := r.tracer.start(ctx, spanTokens, trace.SpanKindInternal)
	defer func() { endStep(span, len(rejected), err) }()
	if span.IsRecording() {
		span.SetAttributes(attrItems.Int(len(candidates)), attrTokens.Int(len(coll.ValidationTokens)),
			attrSkipped.Bool(r.cfg.Tokens == nil && r.cfg.InsecureSkipTokenValidation))
	}
	rejectAll := func(reason Reason, err error) ([]*Notification, []*Rejected, error) {
		rejected := make([]*Rejected, len(candidates))
		for i, n := range candidates {
			rejected[i] = reject(n, reason, err)
		}
		return nil, rejected, nil
	}
	switch {
	case len(coll.ValidationTokens) == 0 && coll.TokensNull:
		r.log.WarnContext(ctx, "rich notifications arrived with validationTokens: null: Graph could not sign them because of the app's configuration; "+
			"either set appRoleAssignmentRequired=false on the app's service principal or assign an app role to the 'Microsoft Graph Change Tracking' service principal")
		return rejectAll(ReasonTokenMissing, fmt.Errorf("%w: validationTokens is null", token.ErrNoTokens))
	case len(coll.ValidationTokens) == 0:
		return rejectAll(ReasonTokenMissing, token.ErrNoTokens)
	case r.cfg.Tokens == nil && r.cfg.InsecureSkipTokenValidation:
		return candidates, nil, nil
	case r.cfg.Tokens == nil:
		r.log.WarnContext(ctx, "rich notifications arrived but no token validator is configured: set the app id to validate their validationTokens")
		return rejectAll(ReasonTokenInvalid, ErrNoTokenValidator)
	}
	// Tokens vouch for the rich items' tenants; basic items are
	// authenticated by their clientState alone (protocol doc §4, §6).
	tenants := make([]string, 0, 1)
	for _, n := range candidates {
		if n.IsRich() && !slices.Contains(tenants, n.TenantID) {
			tenants = append(tenants, n.TenantID)
		}
	}
	if span.IsRecording() {
		span.SetAttributes(attrTenants.Int(len(tenants)))
	}
	err = r.cfg.Tokens.Validate(ctx, coll.ValidationTokens, tenants)
	switch {
	case err == nil:
		return candidates, nil, nil
	case errors.Is(err, token.ErrUnavailable):
		return nil, nil, &Error{Op: "validate tokens", kind: kindUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	default:
		return rejectAll(ReasonTokenInvalid, err)
	}
}

// decryptWorkers is how many rich items a Receiver decrypts at once: one
// per core the Go scheduler runs (GOMAXPROCS), and one more with the
// OpenSSL backend. Its RSA runs in C, outside the scheduler: a worker
// whose call returns waits to get a P back, and the one more keeps the
// cores busy meanwhile (load harness, RSA-2048 batches of 100, medians of
// 3 runs: the cores 1.78 busy and 83 % of the raw 2-core rate with two
// workers, 1.86 and 89 % with three). The pure-Go backend gains nothing
// from it (94 % either way). Admission is unchanged: the estimate is the
// wall time an item takes on its worker, so more workers than cores make
// each item look slower by as much.
func decryptWorkers() int {
	n := runtime.GOMAXPROCS(0)
	if decrypt.Backend == "openssl" {
		n++
	}
	return n
}
