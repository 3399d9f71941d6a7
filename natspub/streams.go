package natspub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go/jetstream"
)

// reasons returns the receiver's reasons; isUnverified says which stream
// holds each.
func reasons() []receiver.Reason {
	return []receiver.Reason{
		receiver.ReasonClientState, receiver.ReasonMalformed,
		receiver.ReasonTokenInvalid, receiver.ReasonTokenMissing, receiver.ReasonDecrypt,
	}
}

// isUnverified reports whether items rejected for reason may come from a
// sender who knows no clientState (client_state, malformed): those go to
// Config.UnverifiedStream, all others to Config.QuarantineStream.
func isUnverified(reason receiver.Reason) bool {
	return reason == receiver.ReasonClientState || reason == receiver.ReasonMalformed
}

// metaPrefix starts the stream metadata keys in which New records the
// limits it applied, so that a later New can tell its own values (which it
// may change as configured) from an operator's (which it keeps).
const metaPrefix = "graphhook."

// streamConfigs returns the configurations New applies to streams it
// creates.
func (p *Publisher) streamConfigs() []jetstream.StreamConfig {
	c := p.cfg
	dup := c.DuplicateWindow
	if c.MaxAge > 0 && dup > c.MaxAge {
		dup = c.MaxAge
	}
	var trusted, unverified []string
	for _, r := range reasons() {
		subj := c.SubjectPrefix + ".rejected." + SubjectToken(string(r)) + ".>"
		if isUnverified(r) {
			unverified = append(unverified, subj)
		} else {
			trusted = append(trusted, subj)
		}
	}
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
		Description: "Microsoft Graph notifications rejected by graphhook after their clientState matched, raw, for inspection and replay",
		Subjects:    trusted,
		Storage:     jetstream.FileStorage,
		Replicas:    c.QuarantineReplicas,
		MaxAge:      c.QuarantineMaxAge,
		MaxBytes:    c.QuarantineMaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  min(c.DuplicateWindow, c.QuarantineMaxAge),
	}, {
		Name:        c.UnverifiedStream,
		Description: "Microsoft Graph notifications rejected by graphhook for a wrong clientState or a malformed item (anyone can send these), raw",
		Subjects:    unverified,
		Storage:     jetstream.FileStorage,
		Replicas:    c.QuarantineReplicas,
		MaxAge:      c.UnverifiedMaxAge,
		MaxBytes:    c.UnverifiedMaxBytes,
		Discard:     jetstream.DiscardNew,
		Duplicates:  min(c.DuplicateWindow, c.UnverifiedMaxAge),
	}}
}

// limit is a stream setting New applies on create and afterwards changes
// only while it still holds the value New recorded.
type limit struct {
	key string // metadata key and log name
	get func(*jetstream.StreamConfig) string
	set func(dst *jetstream.StreamConfig, src *jetstream.StreamConfig)
}

// limits returns the stream limits New records and may change.
func limits() []limit {
	return []limit{
		{"max_age", func(c *jetstream.StreamConfig) string { return c.MaxAge.String() },
			func(d, s *jetstream.StreamConfig) { d.MaxAge = s.MaxAge }},
		{"max_bytes", func(c *jetstream.StreamConfig) string { return strconv.FormatInt(max(c.MaxBytes, -1), 10) },
			func(d, s *jetstream.StreamConfig) { d.MaxBytes = s.MaxBytes }},
		{"max_msgs", func(c *jetstream.StreamConfig) string {
			return strconv.FormatInt(cmpZero(c.MaxMsgs, -1), 10)
		}, func(d, s *jetstream.StreamConfig) { d.MaxMsgs = s.MaxMsgs }},
		{"discard", func(c *jetstream.StreamConfig) string { return c.Discard.String() },
			func(d, s *jetstream.StreamConfig) { d.Discard = s.Discard }},
	}
}

// cmpZero maps 0 (unset) to def, as the server does for unlimited values.
func cmpZero(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

func normalizeLimits(c *jetstream.StreamConfig) {
	c.MaxBytes = cmpZero(c.MaxBytes, -1)
	c.MaxMsgs = cmpZero(c.MaxMsgs, -1)
}

// ensureStream creates want's stream when it is missing. For a stream that
// exists it checks what graphhook needs: file storage, acknowledgements and
// not being a mirror (a mismatch is an error saying what to change), its subjects (set to
// want's) and a duplicate window at least want's (raised). Replicas,
// placement and the limits are the operator's and kept, with a log line
// where they differ from the Config, except a limit that still holds the
// value an earlier New applied (recorded in the stream's metadata): that
// one follows the Config.
func (p *Publisher) ensureStream(ctx context.Context, want jetstream.StreamConfig, others []string) error {
	normalizeLimits(&want)
	want.Metadata = map[string]string{}
	for _, l := range limits() {
		want.Metadata[metaPrefix+l.key] = l.get(&want)
	}
	s, err := p.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := p.js.CreateStream(ctx, want); err != nil {
			if want.Replicas > 1 {
				return fmt.Errorf("%w: create stream %s with %d replicas (which needs a JetStream cluster of at least %d servers): %w", ErrStreamSetup, want.Name, want.Replicas, want.Replicas, err)
			}
			return fmt.Errorf("%w: create stream %s: %w", ErrStreamSetup, want.Name, err)
		}
		p.log.Info("stream ready", "stream", want.Name, "created", true, "subjects", want.Subjects, "replicas", want.Replicas,
			"max_age", want.MaxAge, "max_bytes", want.MaxBytes, "discard", want.Discard.String(), "duplicate_window", want.Duplicates)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrStreamSetup, want.Name, err)
	}
	have := s.CachedInfo().Config
	if have.Storage != want.Storage {
		return fmt.Errorf("%w: stream %s uses %s storage, and graphhook answers Graph 202 only for what survives a restart: "+
			"recreate the stream with file storage (nats stream add %s --storage file) or set another stream name",
			ErrStreamSetup, want.Name, have.Storage, want.Name)
	}
	if have.Mirror != nil {
		return fmt.Errorf("%w: stream %s mirrors stream %s and takes no messages of its own: "+
			"set another stream name for graphhook, or point the mirror at the stream graphhook writes", ErrStreamSetup, want.Name, have.Mirror.Name)
	}
	if have.NoAck {
		return fmt.Errorf("%w: stream %s does not acknowledge messages, and graphhook answers Graph 202 only after an acknowledgement: "+
			"turn acknowledgements on (nats stream edit %s --ack)", ErrStreamSetup, want.Name, want.Name)
	}
	next := have
	next.Metadata = copyMeta(have.Metadata)
	var changed []any
	if subj := subjects(have.Subjects, want.Subjects, others); !sameSet(have.Subjects, subj) {
		next.Subjects = subj
		changed = append(changed, "subjects", subj)
		p.log.Warn("stream subjects set to what graphhook publishes", "stream", want.Name, "had", have.Subjects, "subjects", subj)
	}
	if have.Duplicates < want.Duplicates {
		next.Duplicates = want.Duplicates
		changed = append(changed, "duplicate_window", want.Duplicates)
	}
	for _, l := range limits() {
		cur, cfg, rec := l.get(&have), l.get(&want), have.Metadata[metaPrefix+l.key]
		switch {
		case cur == cfg:
		case rec != "" && rec == cur:
			// graphhook's own earlier value: follow the Config.
			l.set(&next, &want)
			next.Metadata[metaPrefix+l.key] = cfg
			changed = append(changed, l.key, cfg)
		default:
			p.log.Warn("stream keeps the operator's setting", "stream", want.Name, "setting", l.key, "value", cur, "configured", cfg,
				"hint", "change it on the server (nats stream edit) to use the configured value")
		}
	}
	if have.Replicas != want.Replicas {
		p.log.Warn("stream keeps its replicas", "stream", want.Name, "replicas", have.Replicas, "configured", want.Replicas,
			"hint", "graphhook never changes the replicas of a stream that exists; change them on the server (nats stream edit --replicas)")
	}
	if len(changed) > 0 {
		if _, err := p.js.UpdateStream(ctx, next); err != nil {
			return fmt.Errorf("%w: update stream %s: %w", ErrStreamSetup, want.Name, err)
		}
		p.log.Info("stream updated", append([]any{"stream", want.Name}, changed...)...)
	}
	p.log.Info("stream ready", "stream", want.Name, "subjects", next.Subjects, "replicas", next.Replicas,
		"max_age", next.MaxAge, "max_bytes", next.MaxBytes, "discard", next.Discard.String(), "duplicate_window", next.Duplicates)
	return nil
}

// subjects returns the subjects a stream needs: graphhook's (want), and
// those it had that collide with none of graphhook's subjects (want and
// others, the other streams'), so that an operator's additions stay and a
// catch-all of an earlier version ("graph.rejected.>") goes.
func subjects(have, want, others []string) []string {
	out := slices.Clone(want)
	for _, s := range have {
		if slices.Contains(out, s) {
			continue
		}
		collides := slices.ContainsFunc(append(slices.Clone(want), others...), func(g string) bool { return subjectsOverlap(s, g) })
		if !collides {
			out = append(out, s)
		}
	}
	return out
}

// subjectsOverlap reports whether some subject matches both filters a and
// b ('*' one token, '>' one or more tokens at the end).
func subjectsOverlap(a, b string) bool {
	ta, tb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(ta) && i == len(tb):
			return true
		case i == len(ta) || i == len(tb):
			return false
		case ta[i] == ">" || tb[i] == ">":
			return true
		case ta[i] != "*" && tb[i] != "*" && ta[i] != tb[i]:
			return false
		}
	}
}

func copyMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// isStreamFull reports whether err is JetStream refusing a message because
// a stream (or the account or server) is at its limits.
func isStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10054, // message size exceeds maximum allowed
		10023, // insufficient resources
		10047: // insufficient storage resources available
		return true
	case 10077: // store failed: the server's text is the only tell
		for _, s := range []string{"maximum bytes exceeded", "maximum messages exceeded", "maximum messages per subject exceeded", "message too large"} {
			if strings.Contains(apiErr.Description, s) {
				return true
			}
		}
	}
	return false
}

// infoTimeout bounds the stream info requests of Ready.
const infoTimeout = 2 * time.Second
