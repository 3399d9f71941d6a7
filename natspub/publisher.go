package natspub

import (
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
)

// Defaults for [Config].
const (
	DefaultStream             = "GRAPH"
	DefaultQuarantineStream   = "GRAPH_REJECTED"
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
// a working zero value.
type Config struct {
	// Conn is the connection to publish on. Required. The Publisher never
	// closes it. Use [Connect] for one that reconnects forever.
	Conn *nats.Conn

	// SubjectPrefix starts every subject. It may hold several tokens
	// ("acme.graph") but no wildcards or whitespace. Default "graph".
	SubjectPrefix string

	// Stream is the stream of accepted notifications, covering
	// <prefix>.notifications.> and <prefix>.lifecycle.>, file storage.
	// New creates it, or updates it to these settings. Default "GRAPH".
	Stream string
	// Replicas is the number of copies of each stream in a cluster.
	// Default 1.
	Replicas int
	// MaxAge is how long Stream keeps messages. Default 7 days, so
	// consumers can be down over a long weekend; negative keeps them until
	// deleted.
	MaxAge time.Duration
	// DuplicateWindow is how long the streams remember a Nats-Msg-Id, so
	// that a batch redelivered by Graph is not stored twice. Default 1 h.
	// Graph retries a batch for up to 4 h with exponential backoff, so most
	// retries come within minutes; set 4 h to cover the whole horizon at
	// the cost of the server keeping 4 h of ids in memory. It is capped at
	// the stream's max age.
	DuplicateWindow time.Duration

	// QuarantineStream is the stream of rejected items, covering
	// <prefix>.rejected.>, file storage, discarding old messages at its
	// limits. Default "GRAPH_REJECTED".
	QuarantineStream string
	// QuarantineMaxAge is how long rejected items are kept. Default 24 h.
	QuarantineMaxAge time.Duration
	// QuarantineMaxBytes bounds the quarantine stream, so a flood of
	// forged notifications cannot fill the disk. Default 64 MiB.
	QuarantineMaxBytes int64

	// PublishTimeout bounds one Deliver even when its ctx allows more,
	// keeping the answer inside Graph's 3 s budget. Default 2 s.
	PublishTimeout time.Duration

	// Source is the CloudEvents source (ce-source) of every event.
	// Default "/graphhook". Set it to tell several receivers apart, e.g.
	// "/graphhook/eu-west".
	Source string

	// Logger receives stream set-up at Info and failed batches at Warn,
	// never with secrets. Nil discards.
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

	published   atomic.Uint64
	duplicates  atomic.Uint64
	quarantined atomic.Uint64
	failed      atomic.Uint64
}

// Stats are a Publisher's counters since New.
type Stats struct {
	Published   uint64 // accepted notifications stored (duplicates included)
	Duplicates  uint64 // accepted notifications the stream had already (Graph redeliveries)
	Quarantined uint64 // rejected items stored in the quarantine stream
	Failed      uint64 // Deliver calls that returned an error
}

// New checks cfg, creates or updates both streams, and returns a Publisher.
func New(ctx context.Context, cfg Config) (*Publisher, error) {
	if cfg.Conn == nil {
		return nil, fmt.Errorf("%w: Conn is required", ErrInvalidConfig)
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if err := checkPrefix(cfg.SubjectPrefix); err != nil {
		return nil, err
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.QuarantineStream == "" {
		cfg.QuarantineStream = DefaultQuarantineStream
	}
	if cfg.Stream == cfg.QuarantineStream {
		return nil, fmt.Errorf("%w: Stream and QuarantineStream are both %q", ErrInvalidConfig, cfg.Stream)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
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
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	p := &Publisher{cfg: cfg, nc: cfg.Conn, log: cfg.Logger}
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
	for _, sc := range p.streamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			js.CleanupPublisher()
			return nil, fmt.Errorf("%w: stream %s: %w", ErrStreamSetup, sc.Name, err)
		}
		p.log.Info("stream ready", "stream", sc.Name, "subjects", sc.Subjects, "max_age", sc.MaxAge, "duplicate_window", sc.Duplicates)
	}
	if mp := cfg.Conn.MaxPayload(); mp > 0 && mp < receiver.DefaultMaxBodyBytes {
		p.log.Warn("the NATS server's max_payload is below the receiver's default body limit: a larger notification cannot be published, "+
			"and Graph retries its batch until it gives up; raise max_payload on the server or lower the receiver's body limit",
			"max_payload", mp, "receiver_body_limit", receiver.DefaultMaxBodyBytes)
	}
	return p, nil
}

func checkPrefix(prefix string) error {
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("%w: SubjectPrefix %q is not a literal subject", ErrInvalidConfig, prefix)
		}
	}
	return nil
}

// streamConfigs returns the configurations New applies.
func (p *Publisher) streamConfigs() []jetstream.StreamConfig {
	c := p.cfg
	dup := c.DuplicateWindow
	if c.MaxAge > 0 && dup > c.MaxAge {
		dup = c.MaxAge
	}
	qdup := min(c.DuplicateWindow, c.QuarantineMaxAge)
	return []jetstream.StreamConfig{{
		Name:        c.Stream,
		Description: "Microsoft Graph change and lifecycle notifications (graphhook)",
		Subjects:    []string{c.SubjectPrefix + ".notifications.>", c.SubjectPrefix + ".lifecycle.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.MaxAge,
		Duplicates:  dup,
	}, {
		Name:        c.QuarantineStream,
		Description: "Microsoft Graph notifications rejected by graphhook, raw, for inspection and replay",
		Subjects:    []string{c.SubjectPrefix + ".rejected.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.QuarantineMaxAge,
		MaxBytes:    c.QuarantineMaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  qdup,
	}}
}

// Messages returns the messages Deliver publishes for b, in order: one per
// accepted notification (on [Subject], with ce-time = b.ReceivedAt), then
// one quarantine message per [receiver.Reason] present among b.Rejected, in
// the order the reasons first occur (on [RejectedSubject], its body a
// changeNotificationCollection of the raw items and b.ValidationTokens).
func (p *Publisher) Messages(b *receiver.Batch) ([]*nats.Msg, error) {
	return p.messages(context.Background(), b)
}

// messages is Messages, stopping when ctx is done.
func (p *Publisher) messages(ctx context.Context, b *receiver.Batch) ([]*nats.Msg, error) {
	groups, err := rejectedByReason(b.Rejected)
	if err != nil {
		return nil, err
	}
	msgs := make([]*nats.Msg, 0, len(b.Notifications)+len(groups))
	for i, n := range b.Notifications {
		if i%256 == 255 && ctx.Err() != nil {
			return nil, contextError(ctx, fmt.Sprintf("while encoding message %d of %d", i+1, len(b.Notifications)+len(groups)))
		}
		m, err := encode(p.cfg.SubjectPrefix, p.cfg.Source, n, b.ReceivedAt)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	for _, g := range groups {
		m, err := encodeQuarantine(p.cfg.SubjectPrefix, g.reason, g.items, b.ValidationTokens, b.ReceivedAt)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
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
// rejected ones to QuarantineStream, one message per reason) without
// waiting between messages, then waits for all their acknowledgements. It
// stops at the earlier of ctx's deadline and Config.PublishTimeout, while
// publishing as well as while waiting, and then returns an error wrapping
// [ErrNotAcknowledged] and the context's error. It returns nil only when
// every message was stored, or was already stored (a duplicate). While the
// connection is down it fails at once with [ErrNotConnected]; otherwise a
// failure wraps [ErrNotAcknowledged].
func (p *Publisher) Deliver(ctx context.Context, b *receiver.Batch) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("natspub: deliver: %w", net.ErrClosed)
	}
	err := p.deliver(ctx, b)
	if err != nil {
		p.failed.Add(1)
		p.log.Warn("batch not published", "accepted", len(b.Notifications), "rejected", len(b.Rejected), "error", err)
	}
	return err
}

func (p *Publisher) deliver(ctx context.Context, b *receiver.Batch) error {
	if b == nil || len(b.Notifications)+len(b.Rejected) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		return contextError(ctx, "before publishing")
	}
	if !p.nc.IsConnected() {
		return fmt.Errorf("%w (status %s)", ErrNotConnected, p.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	msgs, err := p.messages(ctx, b)
	if err != nil {
		return err
	}

	accepted := len(b.Notifications)
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		if ctx.Err() != nil {
			return contextError(ctx, fmt.Sprintf("after publishing %d of %d messages", i, len(msgs)))
		}
		stream := p.cfg.Stream
		if i >= accepted {
			stream = p.cfg.QuarantineStream
		}
		f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream), jetstream.WithStallWait(stallWait))
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
			// maxPending messages are in flight: wait for room, but look
			// at the deadline every stallWait.
			f, err = p.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream), jetstream.WithStallWait(stallWait))
		}
		if err != nil {
			if ctx.Err() != nil {
				return contextError(ctx, fmt.Sprintf("after publishing %d of %d messages", i, len(msgs)))
			}
			return p.publishError(len(msgs), err)
		}
		futures[i] = f
	}
	var dups uint64
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate && i < accepted {
				dups++
			}
		case err := <-f.Err():
			return p.publishError(len(msgs), err)
		case <-ctx.Done():
			return contextError(ctx, fmt.Sprintf("waiting for %d of %d acknowledgements", len(msgs)-i, len(msgs)))
		}
	}
	p.published.Add(uint64(accepted))
	p.quarantined.Add(uint64(len(b.Rejected)))
	p.duplicates.Add(dups)
	return nil
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
		Published:   p.published.Load(),
		Duplicates:  p.duplicates.Load(),
		Quarantined: p.quarantined.Load(),
		Failed:      p.failed.Load(),
	}
}

// Ready reports whether the Publisher can deliver now: it is open, its
// connection is up and both streams exist. Use it for a readiness probe.
func (p *Publisher) Ready(ctx context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("natspub: ready: %w", net.ErrClosed)
	}
	if !p.nc.IsConnected() {
		return fmt.Errorf("%w (status %s)", ErrNotConnected, p.nc.Status())
	}
	for _, name := range []string{p.cfg.Stream, p.cfg.QuarantineStream} {
		if _, err := p.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("%w: stream %s: %w", ErrStreamSetup, name, err)
		}
	}
	return nil
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
