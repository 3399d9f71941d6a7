package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go/jetstream"
)

// Lifecycle events of the protocol doc §7.
const (
	EventReauthorizationRequired = "reauthorizationRequired"
	EventSubscriptionRemoved     = "subscriptionRemoved"
	EventMissed                  = "missed"
)

// MissedLookback is how far before a missed event its gap starts: Graph
// retries a delivery for up to 4 h before it drops it, so anything lost was
// sent within that horizon.
const MissedLookback = 4*time.Hour + 10*time.Minute

// Lifecycle is one lifecycle notification, as the receiver accepted it.
type Lifecycle struct {
	SubscriptionID string
	// TenantID is the tenantId or organizationId of the item.
	TenantID string
	// Event is reauthorizationRequired, subscriptionRemoved or missed.
	Event string
	// Time is when the receiver got it. Default: now.
	Time time.Time
}

// HandleLifecycle acts on a lifecycle event, at once:
//
//   - reauthorizationRequired: one PATCH renewal, which reauthorizes too.
//     If the subscription had a PATCH within the last 10 minutes it is
//     already authorized and nothing is sent, so a reauthorize and a PATCH
//     never meet within 10 minutes. If the PATCH fails, an authorization
//     gap opens at the event's time and closes at the next success.
//   - subscriptionRemoved: recreate; the gap from the last moment it
//     worked to the recreation is published.
//   - missed: a resync event and a gap of [MissedLookback] before the event.
//
// Only the lease holder acts; others return an error (the lifecycle
// consumer redelivers the event to the holder). With Config.GraphStream
// set (the default) the Manager consumes lifecycle events itself; call
// this only when you feed them another way.
func (m *Manager) HandleLifecycle(ctx context.Context, ev Lifecycle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	if !m.holds() {
		if err := m.requireLease(ctx); err != nil {
			return err
		}
	}
	m.cmu.RLock()
	k, ok := m.byID[ev.SubscriptionID]
	m.cmu.RUnlock()
	var spec Spec
	found := false
	for _, s := range m.cfg.Subscriptions {
		if s.key() == k {
			spec, found = s, true
		}
	}
	if !ok || !found {
		m.met.lifecycle.WithLabelValues(ev.Event, OutcomeUnknownSub).Inc()
		m.log.Warn("subscriptions: lifecycle event for a subscription not managed here", "subscription_id", ev.SubscriptionID, "event", ev.Event)
		return nil
	}
	rec, rev, _ := m.record(k)
	if ev.TenantID == "" {
		ev.TenantID = m.cfg.TenantID
	}
	// Graph asked us to wait (Retry-After) or the subscription failed
	// permanently: record the event's consequence and leave the call to
	// the pass that the backoff schedules.
	wait := rec.Permanent || m.now().Before(rec.NextAttempt)
	switch ev.Event {
	case EventReauthorizationRequired:
		if wait {
			if rec.GapStart.IsZero() {
				rec.GapStart, rec.GapReason = ev.Time, GapAuthorization
				m.put(ctx, k, rec, rev)
			}
			m.met.lifecycle.WithLabelValues(ev.Event, OutcomeThrottled).Inc()
			return nil
		}
		if m.now().Sub(rec.LastAuth) < ReauthorizeQuiet {
			m.met.lifecycle.WithLabelValues(ev.Event, OutcomeSkipped).Inc()
			m.emit(ctx, Event{Action: ActionReauthorize, Outcome: OutcomeSkipped, SubscriptionID: rec.ID, TenantID: ev.TenantID, Resource: rec.Resource, Trigger: ev.Event})
			return nil
		}
		m.renew(ctx, spec, rec, rev, ev.Event)
		after, arev, _ := m.record(k)
		if after.LastOutcome != OutcomeOK && after.GapStart.IsZero() {
			after.GapStart, after.GapReason = ev.Time, GapAuthorization
			m.put(ctx, k, after, arev)
		}
		m.met.lifecycle.WithLabelValues(ev.Event, after.LastOutcome).Inc()
	case EventSubscriptionRemoved:
		if rec.GapStart.IsZero() {
			rec.GapStart, rec.GapReason = m.gapStart(rec), GapRemoved
			if ev.Time.Before(rec.GapStart) {
				rec.GapStart = ev.Time
			}
		}
		m.forget(rec.ID)
		rec.PreviousID, rec.ID = rec.ID, ""
		if wait {
			m.put(ctx, k, rec, rev)
			m.met.lifecycle.WithLabelValues(ev.Event, OutcomeThrottled).Inc()
			return nil
		}
		m.create(ctx, spec, rec, rev, ev.Event)
		after, _, _ := m.record(k)
		m.met.lifecycle.WithLabelValues(ev.Event, after.LastOutcome).Inc()
	case EventMissed:
		start := ev.Time.Add(-MissedLookback)
		if rec.Created.After(start) {
			start = rec.Created
		}
		m.emit(ctx, Event{Action: ActionResync, Outcome: OutcomeOK, SubscriptionID: rec.ID, TenantID: ev.TenantID, Resource: rec.Resource, ChangeType: rec.ChangeType, Trigger: ev.Event})
		err := m.PublishGap(ctx, Gap{SubscriptionID: rec.ID, TenantID: ev.TenantID, Resource: rec.Resource, Reason: GapMissed, Start: start, End: ev.Time})
		outcome := OutcomeOK
		if err != nil {
			outcome = OutcomeTransient
		}
		m.met.lifecycle.WithLabelValues(ev.Event, outcome).Inc()
		return err
	default:
		m.met.lifecycle.WithLabelValues(ev.Event, OutcomeSkipped).Inc()
	}
	return nil
}

// ensureConsumer creates the durable lifecycle consumer if the receiver's
// stream exists (natspub creates it). New events only: the first start
// does not replay old lifecycle history.
func (m *Manager) ensureConsumer(ctx context.Context) bool {
	if m.cons != nil {
		return true
	}
	c, err := m.js.CreateOrUpdateConsumer(ctx, m.cfg.GraphStream, jetstream.ConsumerConfig{
		Durable:       m.cfg.Consumer,
		Description:   "graphhook subscription manager: lifecycle events",
		FilterSubject: m.cfg.SubjectPrefix + ".lifecycle.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		MaxDeliver:    -1,
	})
	if err != nil {
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			m.log.Warn("subscriptions: lifecycle consumer", "stream", m.cfg.GraphStream, "error", err)
		}
		return false
	}
	m.cons = c
	return true
}

// lifecycleLoop fetches lifecycle events while this replica holds the
// lease.
func (m *Manager) lifecycleLoop() {
	idle := time.NewTicker(max(m.cfg.LeaseTTL/10, 50*time.Millisecond))
	defer idle.Stop()
	for m.ctx.Err() == nil {
		m.mu.Lock()
		ready := m.holds() && m.ensureConsumer(m.ctx)
		c := m.cons
		m.mu.Unlock()
		if !ready {
			select {
			case <-m.ctx.Done():
				return
			case <-idle.C:
			}
			continue
		}
		batch, err := c.Fetch(16, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			select {
			case <-m.ctx.Done():
				return
			case <-idle.C:
			}
			continue
		}
		for msg := range batch.Messages() {
			m.handleMsg(msg)
		}
	}
}

func (m *Manager) handleMsg(msg jetstream.Msg) {
	var n receiver.Notification
	if err := json.Unmarshal(msg.Data(), &n); err != nil || n.SubscriptionID == "" || n.LifecycleEvent == "" {
		m.log.Warn("subscriptions: unreadable lifecycle message", "subject", msg.Subject())
		msg.Term()
		return
	}
	ev := Lifecycle{SubscriptionID: n.SubscriptionID, TenantID: n.TenantID, Event: n.LifecycleEvent}
	if ev.TenantID == "" {
		var org string
		if raw, ok := n.Extra["organizationId"]; ok && json.Unmarshal(raw, &org) == nil {
			ev.TenantID = org
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, msg.Headers().Get(natspub.HeaderTime)); err == nil {
		ev.Time = t
	}
	if err := m.HandleLifecycle(m.ctx, ev); err != nil {
		msg.NakWithDelay(time.Second)
		return
	}
	msg.Ack()
}

// Observe wraps the receiver's Sink: after next stores a batch, it notes
// which subscriptions delivered (for gap bounds) and which encryption keys
// rich items used (for [Manager.Retirable]). When next fails (the receiver
// answers 503 and Graph retries), it opens an "unavailable" window for the
// batch's subscriptions; the window closes when a batch of the
// subscription is stored again and is published as a gap by this
// replica's next pass. (The receiver's own 503s before the Sink, such as
// MaxDecryptWait, are not seen here.)
func (m *Manager) Observe(next receiver.Sink) receiver.Sink {
	return observer{m: m, next: next}
}

type downWindow struct {
	start  time.Time
	tenant string
}

// flushUnavailable publishes the closed unavailable windows of this
// replica.
func (m *Manager) flushUnavailable(ctx context.Context) {
	m.smu.Lock()
	gaps := m.upGaps
	m.upGaps = nil
	m.smu.Unlock()
	for i, g := range gaps {
		if r, ok := m.recordByID(g.SubscriptionID); ok {
			g.Resource = r.Resource // the subscription's, not an item's
		}
		if err := m.PublishGap(ctx, g); err != nil {
			m.smu.Lock()
			m.upGaps = append(m.upGaps, gaps[i:]...)
			m.smu.Unlock()
			return
		}
	}
}

type observer struct {
	m    *Manager
	next receiver.Sink
}

func (o observer) Deliver(ctx context.Context, b *receiver.Batch) error {
	err := o.next.Deliver(ctx, b)
	now := o.m.now()
	o.m.smu.Lock()
	defer o.m.smu.Unlock()
	if err != nil {
		// The receiver answers 503: Graph will retry, but until a batch of
		// the subscription is stored again, its notifications wait.
		for _, n := range b.Notifications {
			if _, open := o.m.down[n.SubscriptionID]; !open {
				start := b.ReceivedAt
				if start.IsZero() {
					start = now
				}
				o.m.down[n.SubscriptionID] = downWindow{start: start, tenant: n.TenantID}
			}
		}
		return err
	}
	for _, n := range b.Notifications {
		if w, open := o.m.down[n.SubscriptionID]; open {
			delete(o.m.down, n.SubscriptionID)
			o.m.upGaps = append(o.m.upGaps, Gap{SubscriptionID: n.SubscriptionID, TenantID: w.tenant, Reason: GapUnavailable, Start: w.start, End: now})
		}
		if n.IsLifecycle() {
			continue
		}
		if now.After(o.m.lastSeen[n.SubscriptionID]) {
			o.m.lastSeen[n.SubscriptionID] = now
		}
		if n.EncryptedContent != nil && n.EncryptedContent.EncryptionCertificateID != "" {
			o.m.certUse[n.EncryptedContent.EncryptionCertificateID] = now
		}
	}
	return nil
}
