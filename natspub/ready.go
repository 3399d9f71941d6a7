package natspub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// health remembers the streams that refused a write because they were
// full, until they have room again.
type health struct {
	any     atomic.Bool // refusal is not empty: lets wrote skip the lock
	mu      sync.Mutex
	refusal map[string]*refusal // by stream
}

type refusal struct {
	err        error
	at         time.Time // of the last refusal
	seen       bool      // the state below is set
	msgs, size uint64
}

// refusalHold is how long a refusal keeps a stream that is not at its
// limits unready without a new refusal: long enough for a probe to see
// it, short enough that a receiver taken out of service by its probe
// comes back once the stream has room.
const refusalHold = 10 * time.Second

// refused records that stream refused a message with err.
func (h *health) refused(stream string, err error) {
	if !isStreamFull(err) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refusal == nil {
		h.refusal = map[string]*refusal{}
	}
	if r, ok := h.refusal[stream]; ok {
		r.at = time.Now()
		return
	}
	h.refusal[stream] = &refusal{err: err, at: time.Now()}
	h.any.Store(true)
}

// wrote records that stream stored a message.
func (h *health) wrote(stream string) {
	if !h.any.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forget(stream)
}

// forget drops the refusal of stream; h.mu is held.
func (h *health) forget(stream string) {
	delete(h.refusal, stream)
	h.any.Store(len(h.refusal) > 0)
}

// check reports the refusal recorded for a stream whose state is st,
// forgetting it once the stream holds less than when it was first checked.
func (h *health) check(stream string, st jetstream.StreamState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.refusal[stream]
	switch {
	case !ok:
		return nil
	case time.Since(r.at) > refusalHold:
		h.forget(stream)
		return nil
	case !r.seen:
		r.seen, r.msgs, r.size = true, st.Msgs, st.Bytes
	case st.Msgs < r.msgs || st.Bytes < r.size:
		h.forget(stream)
		return nil
	}
	return r.err
}

// Ready reports whether the Publisher can deliver now, for a readiness
// probe. It fails, naming the cause, when the Publisher is closed, when the
// connection is down ([ErrNotConnected]), when a stream is missing
// ([ErrStreamSetup]), when a stream has no leader or does not answer
// ([ErrStreamUnavailable]), and when Stream or QuarantineStream refuses writes
// because it is full ([ErrStreamFull]): at its limits with discard new, or
// after refusing a message for its limits, until it holds less. A full
// UnverifiedStream does not make the Publisher unready: its new items are
// dropped and counted.
func (p *Publisher) Ready(ctx context.Context) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("natspub: ready: %w", net.ErrClosed)
	}
	if !p.nc.IsConnected() {
		return fmt.Errorf("%w (status %s)", ErrNotConnected, p.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	for _, name := range []string{p.cfg.Stream, p.cfg.QuarantineStream, p.cfg.UnverifiedStream} {
		s, err := p.js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("%w: stream %s is missing (restart the receiver to create it)", ErrStreamSetup, name)
		case err != nil:
			return fmt.Errorf("%w: stream %s: %w", ErrStreamUnavailable, name, err)
		}
		info := s.CachedInfo()
		if info.Cluster != nil && info.Cluster.Leader == "" {
			return fmt.Errorf("%w: stream %s has no leader", ErrStreamUnavailable, name)
		}
		if name == p.cfg.UnverifiedStream {
			continue
		}
		refusedErr := p.health.check(name, info.State) // also when full: it records the state
		if err := full(info); err != nil {
			return err
		}
		if refusedErr != nil {
			return fmt.Errorf("%w: stream %s refused a write: %w", ErrStreamFull, name, refusedErr)
		}
	}
	return nil
}

// full reports a stream at its limits that discards new messages.
func full(info *jetstream.StreamInfo) error {
	c, st := info.Config, info.State
	if c.Discard != jetstream.DiscardNew {
		return nil
	}
	switch {
	case c.MaxMsgs > 0 && st.Msgs >= uint64(c.MaxMsgs):
		return fmt.Errorf("%w: stream %s holds %d messages, its max_msgs, and discards new ones: raise max_msgs or free the stream", ErrStreamFull, c.Name, st.Msgs)
	case c.MaxBytes > 0 && st.Bytes >= uint64(c.MaxBytes):
		return fmt.Errorf("%w: stream %s holds %d bytes, its max_bytes, and discards new messages: raise max_bytes or free the stream", ErrStreamFull, c.Name, st.Bytes)
	}
	return nil
}
