package subscriptions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket keys: sub.<32 hex digits of the Spec's hash> for subscriptions,
// and lease for the renewal lease.
const (
	keyPrefix = "sub."
	leaseKey  = "lease"
)

func specKey(resource, changeType, notificationURL string) string {
	h := sha256.Sum256([]byte(normalizeResource(resource) + "\n" + normalizeChangeType(changeType) + "\n" + notificationURL))
	return keyPrefix + hex.EncodeToString(h[:16])
}

// Outcomes recorded in Record.LastOutcome, in events and in metrics.
const (
	OutcomeOK         = "ok"
	OutcomeAdopted    = "adopted"
	OutcomeRecreated  = "recreated"
	OutcomeLearned    = "lifetime_learned"
	OutcomeTransient  = "transient_error"
	OutcomeThrottled  = "throttled"
	OutcomePermanent  = "permanent_error"
	OutcomeInvalid    = "invalid"
	OutcomeSkipped    = "skipped"
	OutcomeDeleted    = "deleted"
	OutcomeGone       = "gone"
	OutcomeUnknownSub = "unknown_subscription"
)

// Record is the shared state of one managed subscription, stored as JSON
// in the bucket under sub.<hash>. It holds the clientState: the bucket is
// a secret store.
type Record struct {
	// ID is Graph's subscription id, "" before the first create.
	ID                       string    `json:"id"`
	Resource                 string    `json:"resource"`
	ChangeType               string    `json:"changeType"`
	NotificationURL          string    `json:"notificationUrl"`
	LifecycleNotificationURL string    `json:"lifecycleNotificationUrl,omitempty"`
	IncludeResourceData      bool      `json:"includeResourceData,omitempty"`
	ClientState              string    `json:"clientState"`
	Expiration               time.Time `json:"expiration,omitzero"`
	// CertificateID is the encryptionCertificateId of a rich subscription.
	CertificateID string `json:"certificateId,omitempty"`
	// Owner is the Config.Owner of the Manager that created it; "" for an
	// adopted subscription, which is never deleted.
	Owner       string    `json:"owner,omitempty"`
	Created     time.Time `json:"created,omitzero"`
	LastRenewal time.Time `json:"lastRenewal,omitzero"`
	// LastAuth is the last PATCH or reauthorize (the 10-minute rule).
	LastAuth    time.Time `json:"lastAuth,omitzero"`
	LastOutcome string    `json:"lastOutcome,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	// LastNotification is when a replica last saw a notification for it.
	LastNotification time.Time `json:"lastNotification,omitzero"`
	// MaxLifetime is the cap learned from Graph, or 0.
	MaxLifetime time.Duration `json:"maxLifetime,omitempty"`
	// Failures counts consecutive failures; NextAttempt is when to retry.
	Failures    int       `json:"failures,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// RenewAt is when the next renewal is due.
	RenewAt time.Time `json:"renewAt,omitzero"`
	// Permanent is set after a permanent failure: no more attempts until
	// the Spec changes or [Manager.Retry] clears it.
	Permanent bool `json:"permanent,omitempty"`
	// GapStart and GapReason describe an open gap (removed, authorization
	// lapse) that ends when the subscription works again.
	GapStart  time.Time `json:"gapStart,omitzero"`
	GapReason string    `json:"gapReason,omitempty"`
	// PreviousID is the id a recreate replaces, until the gap is published.
	PreviousID string `json:"previousId,omitempty"`
	// Attempt is set while a replica calls Graph for it (a claim).
	Attempt time.Time `json:"attempt,omitzero"`
}

// LogValue implements [slog.LogValuer] without the clientState.
func (r Record) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subscription_id", r.ID),
		slog.String("resource", r.Resource),
		slog.Time("expiration", r.Expiration),
		slog.String("outcome", r.LastOutcome),
	)
}

// String omits the clientState.
func (r Record) String() string {
	return fmt.Sprintf("subscription %s on %s expiring %s (%s)", r.ID, r.Resource, r.Expiration.Format(time.RFC3339), r.LastOutcome)
}

type entry struct {
	rec Record
	rev uint64
}

// lease is the value under the lease key.
type lease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// watch keeps the in-memory copy of the bucket current on every replica.
func (m *Manager) watch(ctx context.Context, w jetstream.KeyWatcher, ready chan<- struct{}) {
	defer w.Stop()
	once := false
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				if !once {
					once = true
					close(ready)
				}
				continue
			}
			m.apply(e.Key(), e.Value(), e.Revision(), e.Operation() != jetstream.KeyValuePut)
		}
	}
}

// apply stores one bucket entry in the cache, unless the cache already
// holds a newer revision.
func (m *Manager) apply(key string, val []byte, rev uint64, deleted bool) {
	if id, ok := strings.CutPrefix(key, seenPrefix); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(val)); err == nil && !deleted {
			m.cmu.Lock()
			if t.After(m.seenKV[id]) {
				m.seenKV[id] = t
			}
			m.cmu.Unlock()
		}
		return
	}
	if !strings.HasPrefix(key, keyPrefix) {
		return
	}
	m.cmu.Lock()
	defer m.cmu.Unlock()
	cur, ok := m.recs[key]
	if ok && cur.rev >= rev {
		return
	}
	if ok && cur.rec.ID != "" {
		delete(m.byID, cur.rec.ID)
	}
	if deleted {
		delete(m.recs, key)
	} else {
		var r Record
		if err := json.Unmarshal(val, &r); err != nil {
			m.log.Warn("subscriptions: unreadable record in bucket", "key", key, "error", err)
			return
		}
		m.recs[key] = &entry{rec: r, rev: rev}
		if r.ID != "" {
			m.byID[r.ID] = key
		}
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// dropped removes key from the cache after this replica deleted it (the
// watcher's delete marker follows).
func (m *Manager) dropped(key string) {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	if e, ok := m.recs[key]; ok {
		delete(m.byID, e.rec.ID)
		delete(m.recs, key)
	}
}

// record returns a copy of the cached record under key.
func (m *Manager) record(key string) (Record, uint64, bool) {
	m.cmu.RLock()
	defer m.cmu.RUnlock()
	e, ok := m.recs[key]
	if !ok {
		return Record{}, 0, false
	}
	return e.rec, e.rev, true
}

// recordByID returns the cached record of a subscription id.
func (m *Manager) recordByID(id string) (Record, bool) {
	m.cmu.RLock()
	defer m.cmu.RUnlock()
	k, ok := m.byID[id]
	if !ok {
		return Record{}, false
	}
	return m.recs[k].rec, true
}

// Records returns the cached state of every subscription in the bucket.
// They hold clientStates: show them with [Record.Redacted].
func (m *Manager) Records() []Record {
	m.cmu.RLock()
	out := make([]Record, 0, len(m.recs))
	for _, e := range m.recs {
		r := e.rec
		if t := m.seenKV[r.ID]; t.After(r.LastNotification) {
			r.LastNotification = t // written by any replica
		}
		out = append(out, r)
	}
	m.cmu.RUnlock()
	m.smu.Lock()
	for i, r := range out {
		if t := m.lastSeen[r.ID]; t.After(r.LastNotification) {
			out[i].LastNotification = t // seen here, not yet in the bucket
		}
	}
	m.smu.Unlock()
	return out
}

// put writes r under key if the bucket still holds rev (0: only if
// absent), and updates the cache. It returns the new revision.
func (m *Manager) put(ctx context.Context, key string, r Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = m.kv.Create(ctx, key, b)
	} else {
		nrev, err = m.kv.Update(ctx, key, b, rev)
	}
	if err != nil {
		return 0, err
	}
	m.apply(key, b, nrev, false)
	return nrev, nil
}

// ClientStateLookup returns the clientState of a subscription from the
// bucket, for receiver.Config.ClientStateLookup. It reads the watched
// in-memory copy; for an unknown id it waits up to Config.LookupWait for
// the bucket (another replica may have just created it) and then returns
// receiver.ErrUnknownSubscription, so the item is quarantined.
func (m *Manager) ClientStateLookup(ctx context.Context, subscriptionID string) (string, error) {
	cs, ok, changed := m.lookup(subscriptionID)
	if ok {
		return cs, nil
	}
	deadline := time.NewTimer(m.cfg.LookupWait)
	defer deadline.Stop()
	for {
		select {
		case <-changed:
		case <-deadline.C:
			return "", fmt.Errorf("subscriptions: %w", receiver.ErrUnknownSubscription)
		case <-ctx.Done():
			return "", fmt.Errorf("subscriptions: %w", receiver.ErrUnknownSubscription)
		}
		if cs, ok, changed = m.lookup(subscriptionID); ok {
			return cs, nil
		}
	}
}

// lookup reads the cached clientState of a subscription id, and the
// channel closed at the next cache change.
func (m *Manager) lookup(id string) (string, bool, <-chan struct{}) {
	m.cmu.RLock()
	defer m.cmu.RUnlock()
	if key, ok := m.byID[id]; ok {
		return m.recs[key].rec.ClientState, true, nil
	}
	return "", false, m.changed
}

// acquireLease takes or refreshes the lease; it reports whether this
// replica holds it until the returned time.
func (m *Manager) acquireLease(ctx context.Context) (bool, error) {
	now := m.now()
	val, _ := json.Marshal(lease{Holder: m.cfg.Instance, Expires: now.Add(m.leaseFor())})
	e, err := m.kv.Get(ctx, leaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = m.kv.Create(ctx, leaseKey, val)
	case err != nil:
	default:
		var l lease
		if json.Unmarshal(e.Value(), &l) == nil && l.Holder != m.cfg.Instance && now.Before(l.Expires) {
			m.setHolder(false, l.Holder)
			return false, nil
		}
		_, err = m.kv.Update(ctx, leaseKey, val, e.Revision())
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			m.setHolder(false, "")
			return false, nil
		}
		m.setHolder(false, "")
		return false, fmt.Errorf("subscriptions: lease: %w", err)
	}
	m.leaseUntil = now.Add(m.leaseFor())
	m.setHolder(true, m.cfg.Instance)
	return true, nil
}

// requireLease takes or refreshes the lease for an action that only the
// holder may take: nil while this replica holds it, [ErrNotHolder] while
// another does, or the error of the bucket.
func (m *Manager) requireLease(ctx context.Context) error {
	ok, err := m.acquireLease(ctx)
	switch {
	case ok:
		return nil
	case err != nil:
		return err
	}
	return ErrNotHolder
}

// leaseFor is how long a written lease lasts: LeaseTTL less one polling
// Interval, so that a replica polling every Interval takes over within
// LeaseTTL of the holder's last refresh, however close to its death.
func (m *Manager) leaseFor() time.Duration {
	if m.cfg.Interval > 0 && m.cfg.Interval <= m.cfg.LeaseTTL/2 {
		return m.cfg.LeaseTTL - m.cfg.Interval
	}
	return m.cfg.LeaseTTL
}

// holds reports whether this replica may act now: it holds a lease that
// has at least a tenth of its TTL left.
func (m *Manager) holds() bool {
	return m.holder && m.now().Before(m.leaseUntil.Add(-m.leaseFor()/10))
}

func (m *Manager) setHolder(h bool, who string) {
	if h != m.holder {
		m.log.Info("subscriptions: lease", "held", h, "instance", m.cfg.Instance)
	}
	m.holder = h
	if h {
		m.met.leaseHeld.Set(1)
	} else {
		m.met.leaseHeld.Set(0)
	}
}

// releaseLease deletes the lease if this replica holds it, so another
// takes over at once.
func (m *Manager) releaseLease(ctx context.Context) {
	e, err := m.kv.Get(ctx, leaseKey)
	if err != nil {
		return
	}
	var l lease
	if json.Unmarshal(e.Value(), &l) == nil && l.Holder == m.cfg.Instance {
		m.kv.Delete(ctx, leaseKey, jetstream.LastRevision(e.Revision()))
	}
	m.setHolder(false, "")
}
