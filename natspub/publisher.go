package natspub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for [Config].
const (
	DefaultStream             = "GRAPH"
	DefaultQuarantineStream   = "GRAPH_REJECTED"
	DefaultUnverifiedStream   = "GRAPH_UNVERIFIED"
	DefaultMaxAge             = 7 * 24 * time.Hour
	DefaultDuplicateWindow    = time.Hour
	DefaultQuarantineMaxAge   = 24 * time.Hour
	DefaultQuarantineMaxBytes = 64 << 20
	DefaultPublishTimeout     = 2 * time.Second
)

// maxPending bounds the messages in flight (published, not yet
// acknowledged) over all concurrent Deliver calls of a Publisher.
const maxPending = 8192

// stallWait is how long one publish waits for room when maxPending messages
// are in flight before Deliver looks at its deadline again. It bounds how
// far past its deadline Deliver can run.
const stallWait = 50 * time.Millisecond

// Config configures a [Publisher]. Conn is required; every other field has
// a working zero value. The stream settings (Replicas, MaxAge, the
// quarantine limits) are applied when New creates a stream; for a stream
// that exists New keeps the operator's values (see "Streams" in the package
// documentation).
type Config struct {
	// Conn is the connection to publish on. Required. The Publisher never
	// closes it.
	Conn *nats.Conn

	// SubjectPrefix starts every subject. It may hold several tokens
	// ("acme.graph") but no wildcards or whitespace. Default "graph".
	SubjectPrefix string

	// Stream is the stream of accepted notifications, covering
	// <prefix>.notifications.> and <prefix>.lifecycle.>, file storage.
	// Default "GRAPH".
	Stream string
	// Replicas is the number of copies of Stream in a cluster, 1 to
	// 5 (JetStream's most), applied when New creates it. Default 1. Use 3 in a
	// three-node cluster so that losing a node loses nothing.
	Replicas int
	// MaxAge is how long Stream keeps messages. Default 7 days, so
	// consumers can be down over a long weekend; negative keeps them until
	// deleted.
	MaxAge time.Duration
	// DuplicateWindow is how long the streams remember a Nats-Msg-Id, so
	// that a batch redelivered by Graph is not stored twice. Default 1 h.
	// Graph retries a batch for up to 4 h with exponential backoff, so most
	// retries come within minutes; set 4 h to cover the whole horizon at
	// the cost of the server keeping 4 h of ids in memory (about 110 bytes
	// of heap per message in the window: see "Event ids and
	// deduplication" in the package documentation). It is capped at each
	// stream's max age.
	DuplicateWindow time.Duration

	// QuarantineStream is the stream of rejected items that passed the
	// clientState check (reasons token_invalid, token_missing, decrypt):
	// <prefix>.rejected.<reason>.> for those reasons, file storage,
	// discarding old messages at its limits. Only a sender that knows a
	// clientState can put items here. Default "GRAPH_REJECTED".
	QuarantineStream string
	// QuarantineReplicas is the number of copies of QuarantineStream and
	// UnverifiedStream, applied when New creates them. Default Replicas.
	QuarantineReplicas int
	// QuarantineMaxAge is how long QuarantineStream keeps items. Default
	// 24 h.
	QuarantineMaxAge time.Duration
	// QuarantineMaxBytes bounds QuarantineStream, in bytes; at the bound
	// the oldest messages go. Default 64 MiB.
	QuarantineMaxBytes int64

	// UnverifiedStream is the stream of rejected items that anyone who can
	// reach the receiver can cause: items failing the clientState check
	// (forgeries, or Graph's items after a clientState rotation) and
	// malformed items (reasons client_state and malformed), on
	// <prefix>.rejected.<reason>.> for those reasons, file storage. It is
	// apart from QuarantineStream so that forged traffic can never evict
	// an item that passed the clientState check. At its limits it refuses
	// new messages: their items are dropped, counted in
	// Stats.UnverifiedDropped, and their batch is still answered 202.
	// Default "GRAPH_UNVERIFIED".
	UnverifiedStream string
	// UnverifiedMaxAge is how long UnverifiedStream keeps items, and so
	// how long a flood can keep it full. Default 24 h.
	UnverifiedMaxAge time.Duration
	// UnverifiedMaxBytes bounds UnverifiedStream, in bytes. Default 64 MiB.
	UnverifiedMaxBytes int64

	// PublishTimeout bounds one Deliver even when its ctx allows more,
	// keeping the answer inside Graph's 3 s budget. Default 2 s.
	PublishTimeout time.Duration

	// Source is the CloudEvents source (ce-source) of every event.
	// Default "/graphhook". Set it to tell several receivers apart, e.g.
	// "/graphhook/eu-west".
	Source string

	// TracerProvider, when set, makes each Deliver a span,
	// graphhook.publish, the child of the span in Deliver's ctx (the
	// receiver's batch span). Whether set or not, every message of a
	// Deliver whose ctx carries a span gets that span's W3C traceparent and
	// tracestate headers (the publish span's when there is one), so that
	// consumers continue the trace; see "Tracing" in the package
	// documentation. Nil or a noop.TracerProvider: no spans, at no cost
	// (the global provider is never used).
	TracerProvider trace.TracerProvider

	// Logger receives stream set-up at Info, stream settings New kept or
	// could not apply and failed batches at Warn, never with secrets. Nil
	// discards.
	Logger *slog.Logger
}

// Publisher publishes batches to JetStream. It implements [receiver.Sink]
// and is safe for concurrent use.
type Publisher struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger

	mu     sync.RWMutex // held for reading by Deliver, for writing by Close
	closed bool

	health health
	tracer tracer

	// publishOpts are the options of every publish to a stream, by stream
	// name, made once in New rather than per message.
	publishOpts map[string][]jetstream.PublishOpt

	stored            atomic.Uint64
	duplicates        atomic.Uint64
	quarantined       atomic.Uint64
	quarantineDup     atomic.Uint64
	unverifiedDropped atomic.Uint64
	unverifiedFull    atomic.Bool
	failed            atomic.Uint64
}

// Stats are a Publisher's counters since New. Stored and Duplicates count
// apart what the PubAcks report (PubAck.Duplicate), so Stored agrees with
// the stream. They count every acknowledgement Deliver saw, also in a
// Deliver that failed later in its batch (Graph's redelivery of that
// batch then counts those events as Duplicates).
type Stats struct {
	Stored               uint64 // accepted notifications the stream stored (new events)
	Duplicates           uint64 // accepted notifications the stream had already (Graph redeliveries)
	Quarantined          uint64 // rejected items stored in a quarantine message new to its stream
	QuarantineDuplicates uint64 // rejected items in a quarantine message its stream had already
	UnverifiedDropped    uint64 // rejected items UnverifiedStream refused because it was full
	Failed               uint64 // Deliver calls that returned an error
}

// Limits checked by [Config.Validate]. JetStream enforces both; they are
// checked before connecting so that a daemon can name the bad setting.
const (
	maxStreamNameLen = 255 // JetStream's longest stream name
	maxReplicas      = 5   // JetStream's most replicas of a stream
)

// Validate reports the first invalid field of c as a [*ConfigError]. It
// does not look at Conn (which [New] requires), so a daemon can check its
// settings before it connects.
func (c Config) Validate() error {
	if err := checkPrefix(c.SubjectPrefix); err != nil {
		return &ConfigError{Field: "SubjectPrefix", Err: err}
	}
	names := map[string]string{}
	for _, f := range []struct{ field, name, def string }{
		{"Stream", c.Stream, DefaultStream},
		{"QuarantineStream", c.QuarantineStream, DefaultQuarantineStream},
		{"UnverifiedStream", c.UnverifiedStream, DefaultUnverifiedStream},
	} {
		name := cmp.Or(f.name, f.def)
		if err := checkStreamName(name); err != nil {
			return &ConfigError{Field: f.field, Err: err}
		}
		if other, ok := names[name]; ok {
			return configError(f.field, "%q is also Config.%s: each stream needs its own name", name, other)
		}
		names[name] = f.field
	}
	for _, f := range []struct {
		field string
		n     int
	}{{"Replicas", c.Replicas}, {"QuarantineReplicas", c.QuarantineReplicas}} {
		if f.n < 0 || f.n > maxReplicas {
			return configError(f.field, "%d is outside 1 to %d", f.n, maxReplicas)
		}
	}
	return nil
}

// checkPrefix is the rule for Config.SubjectPrefix: empty (the default), or
// literal subject tokens separated by dots.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("%q is not a literal subject (example: graph or acme.graph)", prefix)
		}
	}
	return nil
}

// checkStreamName is JetStream's rule for stream names.
func checkStreamName(name string) error {
	if len(name) > maxStreamNameLen {
		return fmt.Errorf("a stream name is at most %d bytes, not %d", maxStreamNameLen, len(name))
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r) }) {
		return fmt.Errorf("%q is not a stream name: it may not hold whitespace, control characters, '.', '*', '>', '/' or '\\' (example: GRAPH)", name)
	}
	return nil
}

// New checks cfg, creates the streams that are missing, checks those that
// exist (see "Streams" in the package documentation), and returns a
// Publisher. An invalid field is reported as a [*ConfigError]; a stream
// graphhook cannot work with as an error wrapping [ErrStreamSetup] that
// says what to change.
func New(ctx context.Context, cfg Config) (*Publisher, error) {
	if cfg.Conn == nil {
		return nil, configError("Conn", "required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.SubjectPrefix = cmp.Or(cfg.SubjectPrefix, DefaultSubjectPrefix)
	cfg.Stream = cmp.Or(cfg.Stream, DefaultStream)
	cfg.QuarantineStream = cmp.Or(cfg.QuarantineStream, DefaultQuarantineStream)
	cfg.UnverifiedStream = cmp.Or(cfg.UnverifiedStream, DefaultUnverifiedStream)
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	cfg.QuarantineReplicas = cmp.Or(cfg.QuarantineReplicas, cfg.Replicas)
	switch {
	case cfg.MaxAge == 0:
		cfg.MaxAge = DefaultMaxAge
	case cfg.MaxAge < 0:
		cfg.MaxAge = 0 // unlimited, in JetStream's terms
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.QuarantineMaxAge <= 0 {
		cfg.QuarantineMaxAge = DefaultQuarantineMaxAge
	}
	if cfg.QuarantineMaxBytes <= 0 {
		cfg.QuarantineMaxBytes = DefaultQuarantineMaxBytes
	}
	if cfg.UnverifiedMaxAge <= 0 {
		cfg.UnverifiedMaxAge = DefaultQuarantineMaxAge
	}
	if cfg.UnverifiedMaxBytes <= 0 {
		cfg.UnverifiedMaxBytes = DefaultQuarantineMaxBytes
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	cfg.Source = cmp.Or(cfg.Source, DefaultSource)
	p := &Publisher{cfg: cfg, nc: cfg.Conn, log: cfg.Logger, tracer: newTracer(cfg.TracerProvider)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(cfg.Conn,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStreamSetup, err)
	}
	p.js = js
	p.publishOpts = make(map[string][]jetstream.PublishOpt, 3)
	for _, name := range []string{cfg.Stream, cfg.QuarantineStream, cfg.UnverifiedStream} {
		p.publishOpts[name] = []jetstream.PublishOpt{jetstream.WithExpectStream(name), jetstream.WithStallWait(stallWait)}
	}
	streams := p.streamConfigs()
	for i, sc := range streams {
		var others []string
		for j, o := range streams {
			if j != i {
				others = append(others, o.Subjects...)
			}
		}
		if err := p.ensureStream(ctx, sc, others); err != nil {
			js.CleanupPublisher()
			return nil, err
		}
	}
	if mp := cfg.Conn.MaxPayload(); mp > 0 && mp < receiver.DefaultMaxBodyBytes {
		p.log.Warn("the NATS server's max_payload is below the receiver's default body limit: a larger notification cannot be published, "+
			"and Graph retries its batch until it gives up; raise max_payload on the server or lower the receiver's body limit",
			"max_payload", mp, "receiver_body_limit", receiver.DefaultMaxBodyBytes)
	}
	return p, nil
}

// Messages returns the messages Deliver publishes for b, in order: one per
// accepted notification (on eventSubject, with ce-time = b.ReceivedAt), then
// one quarantine message per [receiver.Reason] present among b.Rejected, in
// the order the reasons first occur (on rejectedSubject, its body a
// changeNotificationCollection of the raw items and b.ValidationTokens).
// It is the one route from a notification to its wire form; Deliver adds
// only the traceparent and tracestate headers, when its ctx carries a span.
func (p *Publisher) Messages(b *receiver.Batch) ([]*nats.Msg, error) {
	out, err := p.messages(context.Background(), b)
	if err != nil {
		return nil, err
	}
	msgs := make([]*nats.Msg, len(out))
	for i, o := range out {
		msgs[i] = o.msg
	}
	return msgs, nil
}

// outMsg is a message of a batch and where it goes.
type outMsg struct {
	msg        *nats.Msg
	stream     string
	items      int  // rejected items it holds; 0 for an event
	unverified bool // a quarantine message of items anyone could have sent
}

// messages is Messages, stopping when ctx is done.
func (p *Publisher) messages(ctx context.Context, b *receiver.Batch) ([]outMsg, error) {
	groups, err := rejectedByReason(b.Rejected)
	if err != nil {
		return nil, err
	}
	msgs := make([]outMsg, 0, len(b.Notifications)+len(groups))
	ceTime := formatTime(b.ReceivedAt)
	for i, n := range b.Notifications {
		if i%256 == 255 && ctx.Err() != nil {
			return nil, contextError(ctx, fmt.Sprintf("while encoding message %d of %d", i+1, len(b.Notifications)+len(groups)))
		}
		m, err := encode(p.cfg.SubjectPrefix, p.cfg.Source, n, ceTime)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, outMsg{msg: m, stream: p.cfg.Stream})
	}
	for _, g := range groups {
		m, err := encodeQuarantine(p.cfg.SubjectPrefix, g.reason, g.items, b.ValidationTokens, b.ReceivedAt)
		if err != nil {
			return nil, err
		}
		o := outMsg{msg: m, stream: p.cfg.QuarantineStream, items: len(g.items)}
		if isUnverified(g.reason) {
			o.stream, o.unverified = p.cfg.UnverifiedStream, true
		}
		msgs = append(msgs, o)
	}
	return msgs, nil
}

type reasonGroup struct {
	reason receiver.Reason
	items  []*receiver.Rejected
}

// rejectedByReason groups rejected items by reason, in the order the
// reasons first occur, keeping the items' order within a group.
func rejectedByReason(rejected []*receiver.Rejected) ([]reasonGroup, error) {
	var groups []reasonGroup
	for _, r := range rejected {
		if r == nil {
			return nil, fmt.Errorf("%w: nil rejected item", ErrEncode)
		}
		if !slices.Contains(reasons(), r.Reason) {
			return nil, fmt.Errorf("%w: unknown reason %q", ErrEncode, r.Reason)
		}
		i := slices.IndexFunc(groups, func(g reasonGroup) bool { return g.reason == r.Reason })
		if i < 0 {
			groups = append(groups, reasonGroup{reason: r.Reason})
			i = len(groups) - 1
		}
		groups[i].items = append(groups[i].items, r)
	}
	return groups, nil
}

// Deliver publishes every item of b (accepted notifications to Stream,
// rejected ones to QuarantineStream or UnverifiedStream, one message per
// reason) without waiting between messages, then waits for all their
// acknowledgements. It stops at the earlier of ctx's deadline and
// Config.PublishTimeout, while publishing as well as while waiting, and
// then returns an error wrapping [ErrNotAcknowledged] and the context's
// error. It returns nil only when every message was stored, or was already
// stored (a duplicate), or was a message for UnverifiedStream that the
// stream refused because it is full (counted in Stats.UnverifiedDropped).
// While the connection is down it fails at once with [ErrNotConnected];
// otherwise a failure wraps [ErrNotAcknowledged].
func (p *Publisher) Deliver(ctx context.Context, b *receiver.Batch) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("natspub: deliver: %w", net.ErrClosed)
	}
	var accepted, rejected int
	if b != nil {
		accepted, rejected = len(b.Notifications), len(b.Rejected)
	}
	ctx, span := p.tracer.startPublish(ctx, accepted, rejected)
	messages, err := p.deliver(ctx, b)
	endPublish(span, messages, err)
	if err != nil {
		p.failed.Add(1)
		p.log.Warn("batch not published", "accepted", accepted, "rejected", rejected, "error", err)
	}
	return err
}

// deliver is Deliver; it returns the number of messages of b, too.
func (p *Publisher) deliver(ctx context.Context, b *receiver.Batch) (int, error) {
	if b == nil || len(b.Notifications)+len(b.Rejected) == 0 {
		return 0, nil
	}
	if ctx.Err() != nil {
		return 0, contextError(ctx, "before publishing")
	}
	if !p.nc.IsConnected() {
		return 0, fmt.Errorf("%w (status %s)", ErrNotConnected, p.nc.Status())
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > p.cfg.PublishTimeout {
		// Only when it bounds more than ctx does: the receiver's ctx
		// usually ends first, and a derived ctx costs allocations and a
		// registration with its parent on every batch.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.PublishTimeout)
		defer cancel()
	}
	msgs, err := p.messages(ctx, b)
	if err != nil {
		return 0, err
	}
	if h := traceHeaders(ctx); h != nil {
		for _, o := range msgs {
			for k, v := range h {
				o.msg.Header.Set(k, v)
			}
		}
	}

	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, o := range msgs {
		if ctx.Err() != nil {
			return len(msgs), contextError(ctx, fmt.Sprintf("after publishing %d of %d messages", i, len(msgs)))
		}
		opts := p.publishOpts[o.stream]
		f, err := p.js.PublishMsgAsync(o.msg, opts...)
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
			// maxPending messages are in flight: wait for room, but look
			// at the deadline every stallWait.
			f, err = p.js.PublishMsgAsync(o.msg, opts...)
		}
		if err != nil {
			if ctx.Err() != nil {
				return len(msgs), contextError(ctx, fmt.Sprintf("after publishing %d of %d messages", i, len(msgs)))
			}
			return len(msgs), p.publishError(len(msgs), err)
		}
		futures[i] = f
	}
	// Count every acknowledgement seen, also of a Deliver that fails, so
	// that Stored follows the stream.
	var stored, dups, quarantined, qdups, dropped uint64
	defer func() {
		p.stored.Add(stored)
		p.duplicates.Add(dups)
		p.quarantined.Add(quarantined)
		p.quarantineDup.Add(qdups)
		p.unverifiedDropped.Add(dropped)
	}()
	for i, f := range futures {
		o := msgs[i]
		select {
		case ack := <-f.Ok():
			p.health.wrote(o.stream)
			if o.unverified {
				p.unverifiedFull.Store(false)
			}
			switch {
			case o.items == 0 && ack.Duplicate:
				dups++
			case o.items == 0:
				stored++
			case ack.Duplicate:
				qdups += uint64(o.items)
			default:
				quarantined += uint64(o.items)
			}
		case err := <-f.Err():
			if o.unverified && isStreamFull(err) {
				// The bound that keeps forged traffic away from
				// everything else: drop, count, carry on.
				dropped += uint64(o.items)
				continue
			}
			p.health.refused(o.stream, err)
			return len(msgs), p.publishError(len(msgs), err)
		case <-ctx.Done():
			return len(msgs), contextError(ctx, fmt.Sprintf("waiting for %d of %d acknowledgements", len(msgs)-i, len(msgs)))
		}
	}
	if dropped > 0 {
		// Once per episode, not once per forged request.
		if !p.unverifiedFull.Swap(true) {
			p.log.Warn("unverified quarantine full: dropping its new items until it has room (counted in the dropped metric)", "stream", p.cfg.UnverifiedStream)
		}
	}
	return len(msgs), nil
}

// contextError reports a Deliver stopped by its context; where says at
// which point. It wraps [ErrNotAcknowledged], ctx.Err() and, when it
// differs, the context's cause.
func contextError(ctx context.Context, where string) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause != nil && cause != err {
		return fmt.Errorf("%w: stopped %s: %w (%w)", ErrNotAcknowledged, where, err, cause)
	}
	return fmt.Errorf("%w: stopped %s: %w", ErrNotAcknowledged, where, err)
}

func (p *Publisher) publishError(total int, err error) error {
	if errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return fmt.Errorf("%w: %d messages: %w", ErrNotAcknowledged, total, err)
}

// Stats returns the Publisher's counters.
func (p *Publisher) Stats() Stats {
	return Stats{
		Stored:               p.stored.Load(),
		Duplicates:           p.duplicates.Load(),
		Quarantined:          p.quarantined.Load(),
		QuarantineDuplicates: p.quarantineDup.Load(),
		UnverifiedDropped:    p.unverifiedDropped.Load(),
		Failed:               p.failed.Load(),
	}
}

// Close waits for running Deliver calls to finish and releases the
// Publisher's subscription for acknowledgements. Later Deliver calls fail.
// It does not close Config.Conn. A second Close returns an error wrapping
// [net.ErrClosed].
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("natspub: close: %w", net.ErrClosed)
	}
	p.closed = true
	p.js.CleanupPublisher()
	return nil
}
