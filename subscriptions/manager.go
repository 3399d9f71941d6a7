package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/nats-io/nats.go/jetstream"
)

// Manager keeps the subscriptions of a Config alive. Every replica runs
// one on the same bucket; the replica holding the lease creates, renews,
// deletes and reacts to lifecycle events, and every replica serves
// ClientStateLookup from its watched copy of the bucket.
type Manager struct {
	cfg Config
	c   *Client
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	log *slog.Logger
	now func() time.Time
	met metrics

	mu         sync.Mutex // one pass or action at a time
	caps       map[string]time.Duration
	listed     bool
	holder     bool
	leaseUntil time.Time
	key        *decrypt.Key
	retiring   map[string]time.Time // old key id -> last moment a subscription used it

	cmu     sync.RWMutex
	recs    map[string]*entry
	byID    map[string]string
	seenKV  map[string]time.Time // subscription id -> last notification (bucket)
	changed chan struct{}

	smu      sync.Mutex
	lastSeen map[string]time.Time // not yet written to the bucket
	flushed  map[string]time.Time
	certUse  map[string]time.Time
	down     map[string]downWindow // subscription id -> open 503 window
	upGaps   []Gap                 // closed windows, to publish

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}
	closed bool
	cons   jetstream.Consumer
}

// New creates or opens the bucket and the event stream, loads the state
// and starts the background loop (unless Config.Interval is negative) and
// the lifecycle consumer. It does not call Graph: the first pass does.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		cfg: cfg, c: cfg.Client, js: cfg.JetStream, log: cfg.Logger, now: cfg.Now,
		met:      newMetrics(cfg.Instance),
		caps:     map[string]time.Duration{},
		key:      cfg.Key,
		retiring: map[string]time.Time{},
		recs:     map[string]*entry{},
		byID:     map[string]string{},
		seenKV:   map[string]time.Time{},
		changed:  make(chan struct{}),
		lastSeen: map[string]time.Time{},
		flushed:  map[string]time.Time{},
		certUse:  map[string]time.Time{},
		down:     map[string]downWindow{},
		wake:     make(chan struct{}, 1),
	}
	kv, err := m.bucket(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: bucket %s: %w", cfg.Bucket, err)
	}
	m.kv = kv
	if err := m.ensureStream(ctx); err != nil {
		return nil, err
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	w, err := kv.WatchAll(m.ctx)
	if err != nil {
		m.cancel()
		return nil, fmt.Errorf("subscriptions: watch bucket %s: %w", cfg.Bucket, err)
	}
	ready := make(chan struct{})
	m.wg.Go(func() { m.watch(m.ctx, w, ready) })
	select {
	case <-ready:
	case <-ctx.Done():
		m.cancel()
		m.wg.Wait()
		return nil, fmt.Errorf("subscriptions: load bucket %s: %w", cfg.Bucket, ctx.Err())
	}
	if cfg.GraphStream != "-" {
		m.ensureConsumer(ctx)
		m.wg.Go(m.lifecycleLoop)
	}
	if cfg.Interval > 0 {
		m.wg.Go(m.loop)
	}
	return m, nil
}

// Close stops the loops and releases the lease, so another replica takes
// over at once. A second call returns an error wrapping net.ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("subscriptions: close: %w", net.ErrClosed)
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holder {
		m.releaseLease(ctx)
	}
	return nil
}

func (m *Manager) loop() {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Reconcile(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("subscriptions: pass", "error", err)
		}
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
		}
	}
}

// Wake asks the background loop for a pass now.
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Holder reports whether this replica holds the renewal lease.
func (m *Manager) Holder() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holds()
}

// Reconcile runs one pass: take or refresh the lease and, as its holder,
// list Graph's subscriptions once (the first pass only), create what is
// missing, renew what is due, rotate certificates and delete owned
// subscriptions that left the configuration. A replica without the lease
// returns nil after updating its metrics.
func (m *Manager) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("subscriptions: reconcile: %w", net.ErrClosed)
	}
	m.flushSeen(ctx)
	m.flushUnavailable(ctx)
	ok, err := m.acquireLease(ctx)
	defer m.gauges()
	if !ok {
		return err
	}
	if !m.listed {
		m.listed = true
		m.clearPermanent(ctx)
		m.startList(ctx)
	}
	// Removals first: a Spec whose notificationUrl changed is a new key,
	// and Graph would answer its create with 409 while the old one exists.
	want := map[string]bool{}
	for _, s := range m.cfg.Subscriptions {
		want[s.key()] = true
	}
	for _, r := range m.Records() {
		k := specKey(r.Resource, r.ChangeType, r.NotificationURL)
		if !want[k] && m.holds() {
			m.remove(ctx, k)
		}
	}
	for _, s := range m.cfg.Subscriptions {
		if !m.holds() || m.closed {
			return nil
		}
		m.reconcileSpec(ctx, s, "schedule")
		// Let a waiting lifecycle reaction in between two subscriptions, so
		// a long pass (hundreds of creates at start) does not delay it.
		m.mu.Unlock()
		m.mu.Lock()
	}
	return nil
}

// startList matches Graph's subscriptions against the bucket, once: it
// adopts a subscription the bucket does not know and notices one the
// bucket knows but Graph lost. A failed list is not retried (Graph
// throttles list at 40 per 20 s); a later create's 409 adopts instead.
func (m *Manager) startList(ctx context.Context) {
	subs, err := m.c.List(ctx)
	if err != nil {
		m.log.Warn("subscriptions: list at start", "error", err)
		return
	}
	byKey := map[string]Subscription{}
	ids := map[string]bool{}
	for _, s := range subs {
		byKey[specKey(s.Resource, s.ChangeType, s.NotificationURL)] = s
		ids[s.ID] = true
	}
	for _, s := range m.cfg.Subscriptions {
		k := s.key()
		rec, rev, ok := m.record(k)
		switch {
		case ok && rec.ID != "" && !ids[rec.ID]:
			// Gone while no replica watched: recreate, and report the gap.
			rec.GapStart, rec.GapReason = m.gapStart(rec), GapRemoved
			rec.PreviousID, rec.ID, rec.NextAttempt, rec.Permanent = rec.ID, "", time.Time{}, false
			m.put(ctx, k, rec, rev)
		case (!ok || rec.ID == "") && byKey[k].ID != "":
			g := byKey[k]
			m.adopt(ctx, s, rec, rev, &g, "start")
		}
	}
}

// capFor returns the lifetime cap of s: Spec.MaxLifetime or the table,
// lowered to what Graph taught (for this record or this resource).
func (m *Manager) capFor(s Spec, rec Record) time.Duration {
	c := MaxLifetime(s.Resource, s.IncludeResourceData)
	if s.MaxLifetime > 0 {
		c = s.MaxLifetime
	}
	if l, ok := m.caps[capKey(s)]; ok && l < c {
		c = l
	}
	if rec.MaxLifetime > 0 && rec.MaxLifetime < c {
		c = rec.MaxLifetime
	}
	return c
}

func capKey(s Spec) string {
	return fmt.Sprintf("%s|%v", normalizeResource(s.Resource), s.IncludeResourceData)
}

func (m *Manager) reconcileSpec(ctx context.Context, s Spec, trigger string) {
	k := s.key()
	rec, rev, ok := m.record(k)
	now := m.now()
	if ok && rec.Permanent {
		return
	}
	if ok && now.Before(rec.NextAttempt) {
		return
	}
	if ok && !rec.Attempt.IsZero() && now.Sub(rec.Attempt) < claimTimeout {
		// Another replica (a holder whose lease ran out mid-call) is
		// calling Graph for it: let that call finish.
		return
	}
	if !ok || rec.ID == "" {
		m.create(ctx, s, rec, rev, trigger)
		return
	}
	if reason := replaceReason(s, rec); reason != "" && rec.Owner == m.cfg.Owner {
		m.replace(ctx, s, rec, rev, reason)
		return
	}
	if s.IncludeResourceData && m.key != nil && rec.CertificateID != keyID(*m.key) {
		m.rotate(ctx, s, rec, rev)
		return
	}
	// Due by schedule, or a failed call (a lifecycle reaction, a rotation)
	// waits for its retry, or a gap waits for a success to close it.
	if !now.Before(rec.RenewAt) || rec.Failures > 0 || !rec.GapStart.IsZero() {
		m.renew(ctx, s, rec, rev, trigger)
	}
}

func keyID(k decrypt.Key) string {
	if k.ID != "" {
		return k.ID
	}
	return k.Thumbprint()
}

// claimTimeout is how long a claim keeps other replicas off a record: two
// request timeouts, after which its claimer is presumed dead.
const claimTimeout = 2 * DefaultTimeout

// claim marks rec as being worked on by this replica, with a
// compare-and-set on its revision, so two replicas never call Graph for
// the same subscription state. It returns the new revision.
func (m *Manager) claim(ctx context.Context, k string, rec *Record, rev uint64) (uint64, bool) {
	rec.Attempt = m.now()
	nrev, err := m.put(ctx, k, *rec, rev)
	if err != nil {
		m.log.Debug("subscriptions: claim lost", "key", k, "error", err)
		return 0, false
	}
	return nrev, true
}

func (m *Manager) fill(s Spec, rec *Record) {
	rec.Resource, rec.ChangeType, rec.NotificationURL = s.Resource, s.ChangeType, s.NotificationURL
	rec.LifecycleNotificationURL, rec.IncludeResourceData = s.LifecycleNotificationURL, s.IncludeResourceData
	switch {
	case s.ClientState != "":
		rec.ClientState = s.ClientState
	case rec.ClientState == "":
		rec.ClientState = NewClientState()
	}
}

func (m *Manager) request(s Spec, rec Record, exp time.Time) Subscription {
	req := Subscription{
		Resource: s.Resource, ChangeType: s.ChangeType, NotificationURL: s.NotificationURL,
		LifecycleNotificationURL: s.LifecycleNotificationURL, ExpirationDateTime: exp.UTC(),
		ClientState: rec.ClientState, IncludeResourceData: s.IncludeResourceData,
		LatestSupportedTLSVersion: s.LatestSupportedTLSVersion,
	}
	if s.IncludeResourceData && m.key != nil {
		req.EncryptionCertificate, req.EncryptionCertificateID = m.key.EncryptionCertificate(), keyID(*m.key)
	}
	return req
}

// underCap calls do with an expiry within the lifetime cap of s; when
// Graph answers that the expiry is beyond a lower cap it states, it learns
// that cap and calls do once more under it.
func (m *Manager) underCap(s Spec, rec *Record, action string, do func(exp time.Time) (*Subscription, error)) (*Subscription, error) {
	var sub *Subscription
	var err error
	for range 2 {
		cap := m.capFor(s, *rec)
		sub, err = do(m.now().Add(m.cfg.Policy.Lifetime(cap)))
		if err == nil || !m.learn(s, rec, err, cap, action) {
			break
		}
	}
	return sub, err
}

// learn records a lifetime cap stated by Graph; it reports whether the cap
// is lower than the one just used, so a retry under it makes sense.
func (m *Manager) learn(s Spec, rec *Record, err error, used time.Duration, action string) bool {
	ge, ok := errors.AsType[*Error](err)
	if !ok || !errors.Is(err, ErrLifetimeLimit) || ge.MaxLifetime <= 0 || ge.MaxLifetime >= used {
		return false
	}
	m.caps[capKey(s)] = ge.MaxLifetime
	rec.MaxLifetime = ge.MaxLifetime
	m.emit(m.ctx, Event{Action: action, Outcome: OutcomeLearned, SubscriptionID: rec.ID, Resource: s.Resource, Error: ge.Error(), Trigger: "lifetime-limit"})
	return true
}

func (m *Manager) create(ctx context.Context, s Spec, rec Record, rev uint64, trigger string) {
	k := s.key()
	m.fill(s, &rec)
	rev, ok := m.claim(ctx, k, &rec, rev)
	if !ok {
		return
	}
	sub, err := m.underCap(s, &rec, ActionCreate, func(exp time.Time) (*Subscription, error) {
		return m.c.Create(ctx, m.request(s, rec, exp))
	})
	if errors.Is(err, ErrConflict) {
		if ge, ok := errors.AsType[*Error](err); ok && ge.ExistingID != "" {
			existing, gerr := m.c.Get(ctx, ge.ExistingID)
			if gerr == nil {
				m.adopt(ctx, s, rec, rev, existing, trigger)
				return
			}
			err = gerr
		}
	}
	action := ActionCreate
	if !rec.GapStart.IsZero() {
		action = ActionRecreate
	}
	if err == nil {
		rec.Owner, rec.Created = m.cfg.Owner, m.now()
	}
	m.finish(ctx, k, rec, rev, action, trigger, sub, err)
}

// adopt takes over an existing matching subscription (found by list or
// named by a 409): it is recorded without an owner mark, so it is never
// deleted, and renewed under our policy.
func (m *Manager) adopt(ctx context.Context, s Spec, rec Record, rev uint64, sub *Subscription, trigger string) {
	k := s.key()
	m.fill(s, &rec)
	if s.ClientState == "" && sub.ClientState != "" {
		rec.ClientState = sub.ClientState
	}
	if s.ClientState == "" && sub.ClientState == "" {
		m.log.Warn("subscriptions: adopted subscription has no readable clientState; its notifications are checked against the stored one", "subscription_id", sub.ID)
	}
	prev := rec.ID
	rec.ID, rec.Expiration, rec.Owner = sub.ID, sub.ExpirationDateTime, ""
	rec.CertificateID = sub.EncryptionCertificateID
	rec.Attempt = time.Time{}
	if prev != "" && prev != sub.ID {
		m.log.Info("subscriptions: adopted replaces", "previous", prev)
	}
	if sub.NotificationURL != s.NotificationURL {
		// Graph lets a PATCH move notificationUrl (it validates the new one).
		u := s.NotificationURL
		if moved, err := m.c.Update(ctx, sub.ID, Update{NotificationURL: &u}); err == nil {
			rec.Expiration = moved.ExpirationDateTime
		} else {
			m.log.Warn("subscriptions: move adopted subscription's notificationUrl", "subscription_id", sub.ID, "error", err)
		}
	}
	nrev, err := m.put(ctx, k, rec, rev)
	if err != nil {
		m.log.Warn("subscriptions: record adoption", "subscription_id", sub.ID, "error", err)
		return
	}
	m.emit(ctx, Event{Action: ActionAdopt, Outcome: OutcomeAdopted, SubscriptionID: sub.ID, Resource: s.Resource, ChangeType: s.ChangeType, Expiration: sub.ExpirationDateTime, Trigger: trigger})
	// Renew at once, so its expiry and authorization are ours.
	m.renew(ctx, s, rec, nrev, trigger)
}

func (m *Manager) renew(ctx context.Context, s Spec, rec Record, rev uint64, trigger string) {
	k := s.key()
	rev, ok := m.claim(ctx, k, &rec, rev)
	if !ok {
		return
	}
	sub, err := m.underCap(s, &rec, ActionRenew, func(exp time.Time) (*Subscription, error) {
		return m.c.Renew(ctx, rec.ID, exp)
	})
	if errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPermanent) {
		// Gone: recreate now, and report the gap once it works again.
		m.emit(ctx, Event{Action: ActionRenew, Outcome: OutcomeGone, SubscriptionID: rec.ID, Resource: s.Resource, Trigger: trigger, Error: err.Error()})
		if rec.GapStart.IsZero() {
			rec.GapStart, rec.GapReason = m.gapStart(rec), GapRemoved
		}
		m.forget(rec.ID)
		rec.PreviousID, rec.ID = rec.ID, ""
		m.create(ctx, s, rec, rev, trigger)
		return
	}
	m.finish(ctx, k, rec, rev, ActionRenew, trigger, sub, err)
}

// finish records the outcome of a Graph call and publishes its event (and
// the gap it closes).
func (m *Manager) finish(ctx context.Context, k string, rec Record, rev uint64, action, trigger string, sub *Subscription, err error) {
	now := m.now()
	rec.Attempt = time.Time{}
	ev := Event{Action: action, SubscriptionID: rec.ID, Resource: rec.Resource, ChangeType: rec.ChangeType, Trigger: trigger}
	var gap *Gap
	if err == nil {
		prev := rec.ID
		if prev == "" {
			prev = rec.PreviousID
		}
		rec.ID, rec.Expiration = sub.ID, sub.ExpirationDateTime
		if sub.EncryptionCertificateID != "" || !rec.IncludeResourceData {
			rec.CertificateID = sub.EncryptionCertificateID
		}
		rec.LastRenewal, rec.LastAuth = now, now
		rec.Failures, rec.NextAttempt, rec.LastError, rec.Permanent = 0, time.Time{}, "", false
		rec.LastOutcome = OutcomeOK
		rec.RenewAt = m.cfg.Policy.RenewAt(rec.Expiration, max(rec.Expiration.Sub(now), time.Minute))
		if !rec.GapStart.IsZero() {
			gap = &Gap{SubscriptionID: rec.ID, Resource: rec.Resource, Reason: rec.GapReason, Start: rec.GapStart, End: now}
			if prev != "" && prev != rec.ID {
				gap.PreviousSubscriptionID = prev
			}
		}
		ev.Outcome, ev.SubscriptionID, ev.Expiration = OutcomeOK, rec.ID, rec.Expiration
	} else {
		ge, _ := errors.AsType[*Error](err)
		retryAfter := time.Duration(0)
		if ge != nil {
			retryAfter = ge.RetryAfter
		}
		rec.Failures++
		rec.LastError = err.Error()
		switch {
		case errors.Is(err, ErrPermanent):
			rec.Permanent = true
			rec.LastOutcome = OutcomePermanent
		case errors.Is(err, ErrThrottled):
			rec.LastOutcome = OutcomeThrottled
		case Transient(err):
			rec.LastOutcome = OutcomeTransient
		default:
			rec.LastOutcome = OutcomeInvalid
		}
		if !rec.Permanent {
			rec.NextAttempt = now.Add(m.cfg.Policy.Backoff(rec.Failures, retryAfter))
		}
		ev.Outcome, ev.Error = rec.LastOutcome, rec.LastError
	}
	if gap != nil {
		if perr := m.PublishGap(ctx, *gap); perr == nil {
			rec.GapStart, rec.GapReason, rec.PreviousID = time.Time{}, "", ""
		}
	}
	if _, perr := m.put(ctx, k, rec, rev); perr != nil {
		m.log.Warn("subscriptions: record outcome", "subscription_id", rec.ID, "error", perr)
	}
	m.emit(ctx, ev)
	if rec.Permanent {
		m.emit(ctx, Event{Action: ActionPermanent, Outcome: OutcomePermanent, SubscriptionID: rec.ID, Resource: rec.Resource, ChangeType: rec.ChangeType, Trigger: action, Error: rec.LastError})
	}
}

// gapStart is the last moment rec was known to work.
func (m *Manager) gapStart(rec Record) time.Time {
	t := rec.Created
	for _, c := range []time.Time{rec.LastRenewal, m.lastNotification(rec.ID)} {
		if c.After(t) {
			t = c
		}
	}
	if t.IsZero() {
		t = m.now()
	}
	return t
}

func (m *Manager) lastNotification(id string) time.Time {
	m.cmu.RLock()
	t := m.seenKV[id]
	m.cmu.RUnlock()
	m.smu.Lock()
	if l := m.lastSeen[id]; l.After(t) {
		t = l
	}
	m.smu.Unlock()
	return t
}

// forget drops the id -> clientState mapping of a removed subscription.
func (m *Manager) forget(id string) {
	m.cmu.Lock()
	delete(m.byID, id)
	m.cmu.Unlock()
}

// remove deletes a subscription that left the configuration: from Graph
// only if this Manager's owner mark is on it, from the bucket always.
func (m *Manager) remove(ctx context.Context, k string) {
	rec, rev, ok := m.record(k)
	if !ok || m.now().Before(rec.NextAttempt) {
		return
	}
	if rec.ID != "" && rec.Owner == m.cfg.Owner {
		rev, ok = m.claim(ctx, k, &rec, rev)
		if !ok {
			return
		}
		if err := m.c.Delete(ctx, rec.ID); err != nil && !errors.Is(err, ErrNotFound) {
			m.finish(ctx, k, rec, rev, ActionDelete, "config", nil, err)
			return
		}
	}
	if err := m.kv.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil {
		m.log.Warn("subscriptions: delete record", "subscription_id", rec.ID, "error", err)
		return
	}
	m.dropped(k)
	outcome := OutcomeDeleted
	if rec.Owner != m.cfg.Owner {
		outcome = OutcomeSkipped // not ours: forgotten, left in Graph
	}
	m.emit(ctx, Event{Action: ActionDelete, Outcome: outcome, SubscriptionID: rec.ID, Resource: rec.Resource, ChangeType: rec.ChangeType, Trigger: "config"})
}

// replaceReason says why the subscription in Graph no longer matches s in
// a way only a new subscription can fix, or "".
func replaceReason(s Spec, rec Record) string {
	switch {
	case s.ClientState != "" && s.ClientState != rec.ClientState:
		return "clientState changed"
	case s.LifecycleNotificationURL != rec.LifecycleNotificationURL:
		return "lifecycleNotificationUrl changed" // settable only at creation (§7)
	case s.IncludeResourceData != rec.IncludeResourceData:
		return "includeResourceData changed"
	}
	return ""
}

// replace deletes an owned subscription whose Spec changed and creates it
// anew (Graph refuses a second one on the same resource and changeType
// with 409). Changes between the delete and the create are not notified:
// that range is published as a gap.
func (m *Manager) replace(ctx context.Context, s Spec, rec Record, rev uint64, reason string) {
	k := s.key()
	rev, ok := m.claim(ctx, k, &rec, rev)
	if !ok {
		return
	}
	if err := m.c.Delete(ctx, rec.ID); err != nil && !errors.Is(err, ErrNotFound) {
		m.finish(ctx, k, rec, rev, ActionDelete, "config: "+reason, nil, err)
		return
	}
	m.emit(ctx, Event{Action: ActionDelete, Outcome: OutcomeDeleted, SubscriptionID: rec.ID, Resource: rec.Resource, ChangeType: rec.ChangeType, Trigger: "config: " + reason})
	m.forget(rec.ID)
	rec.PreviousID, rec.ID = rec.ID, ""
	if rec.GapStart.IsZero() {
		rec.GapStart, rec.GapReason = m.now(), GapReplaced
	}
	m.create(ctx, s, rec, rev, "config: "+reason)
}

// clearPermanent gives every permanently failed subscription one more
// try, once per Manager start (a restart is how an operator says the
// permission, licence or quota was fixed). [Manager.Retry] does it on
// demand.
func (m *Manager) clearPermanent(ctx context.Context) {
	for _, s := range m.cfg.Subscriptions {
		rec, rev, ok := m.record(s.key())
		if ok && rec.Permanent {
			rec.Permanent, rec.NextAttempt, rec.Failures = false, time.Time{}, 0
			m.put(ctx, s.key(), rec, rev)
		}
	}
}

// Retry clears every permanent failure and backoff and runs a pass, for an
// operator who fixed a permission, licence or quota.
func (m *Manager) Retry(ctx context.Context) error {
	m.mu.Lock()
	for _, s := range m.cfg.Subscriptions {
		rec, rev, ok := m.record(s.key())
		if ok && (rec.Permanent || !rec.NextAttempt.IsZero()) {
			rec.Permanent, rec.NextAttempt, rec.Failures = false, time.Time{}, 0
			m.put(ctx, s.key(), rec, rev)
		}
	}
	m.mu.Unlock()
	return m.Reconcile(ctx)
}

// gauges refreshes the per-subscription metrics from the cache.
func (m *Manager) gauges() {
	now := m.now()
	m.met.expiry.Reset()
	m.met.permanent.Reset()
	for _, r := range m.Records() {
		if r.ID != "" {
			m.met.expiry.WithLabelValues(r.ID, r.Resource).Set(r.Expiration.Sub(now).Seconds())
		}
		if r.Permanent {
			m.met.permanent.WithLabelValues(r.Resource).Inc()
		}
	}
}

// flushSeen writes the last-notification times this replica saw to the
// bucket (seen.<subscriptionId>), at most once a minute per subscription.
func (m *Manager) flushSeen(ctx context.Context) {
	m.smu.Lock()
	var todo []string
	var times []time.Time
	for id, t := range m.lastSeen {
		if t.Sub(m.flushed[id]) >= time.Minute {
			todo, times = append(todo, id), append(times, t)
			m.flushed[id] = t
		}
	}
	m.smu.Unlock()
	for i, id := range todo {
		if !validKeyToken(id) {
			continue
		}
		if _, err := m.kv.Put(ctx, seenPrefix+id, []byte(times[i].UTC().Format(time.RFC3339Nano))); err != nil {
			m.log.Debug("subscriptions: write last notification", "subscription_id", id, "error", err)
		}
	}
}

const seenPrefix = "seen."

func validKeyToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(c rune) bool {
		return !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}) < 0
}
