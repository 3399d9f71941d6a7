package status

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream fills a snapshot's stream, consumer and quarantine parts from a
// JetStream account.
type JetStream struct {
	// JS is the account's JetStream context. Required.
	JS jetstream.JetStream
	// Streams are the streams to describe, with their durable consumers'
	// lag (for example "GRAPH").
	Streams []string
	// Quarantine are the quarantine streams. Their messages are counted
	// per reason: the subject token after "rejected"
	// (<prefix>.rejected.<reason>.<tenant>).
	Quarantine []string
}

// Fill adds the streams and quarantine counts to snap. A stream that does not
// exist is skipped; any other error is returned, wrapped with the stream's
// name.
func (j JetStream) Fill(ctx context.Context, snap *Snapshot) error {
	for _, name := range append(append([]string(nil), j.Streams...), j.Quarantine...) {
		st, err := j.describe(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("status: stream %s: %w", name, err)
		}
		snap.Streams = append(snap.Streams, *st)
	}
	for _, name := range j.Quarantine {
		q, err := j.quarantine(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("status: quarantine stream %s: %w", name, err)
		}
		snap.Quarantine = append(snap.Quarantine, q...)
	}
	return nil
}

func (j JetStream) describe(ctx context.Context, name string) (*Stream, error) {
	s, err := j.JS.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info := s.CachedInfo()
	out := &Stream{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes, Replicas: info.Config.Replicas}
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Config.Durable == "" {
			continue
		}
		out.Consumers = append(out.Consumers, Consumer{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending})
	}
	if err := lister.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out.Consumers, func(a, b int) bool { return out.Consumers[a].Name < out.Consumers[b].Name })
	return out, nil
}

func (j JetStream) quarantine(ctx context.Context, name string) ([]Quarantine, error) {
	s, err := j.JS.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return nil, err
	}
	counts := map[string]uint64{}
	prefixes := map[string]string{}
	for subj, n := range info.State.Subjects {
		reason, prefix := reasonOf(subj)
		counts[reason] += n
		prefixes[reason] = prefix
	}
	out := make([]Quarantine, 0, len(counts))
	for reason, n := range counts {
		q := Quarantine{Stream: name, Reason: reason, Messages: n}
		if m, err := s.GetLastMsgForSubject(ctx, prefixes[reason]); err == nil {
			q.Latest = m.Time
		}
		out = append(out, q)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Reason < out[b].Reason })
	return out, nil
}

// reasonOf returns the reason token of a quarantine subject and a filter
// matching every subject of that reason.
func reasonOf(subject string) (reason, filter string) {
	toks := strings.Split(subject, ".")
	for i, t := range toks {
		if t == "rejected" && i+1 < len(toks) {
			return toks[i+1], strings.Join(toks[:i+2], ".") + ".>"
		}
	}
	return subject, subject
}
