package subscriptions

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// The methods below serve one-shot commands (a CLI's renew and delete);
// create is [Manager.Reconcile], rotate-cert is [Manager.RotateKey]. A
// command-line Manager sets Config.Interval to -1 and Config.GraphStream to
// "-", so it runs no background loop and consumes no lifecycle events.

// ErrUnknownID means no record in the bucket has the subscription id.
var ErrUnknownID = errors.New("subscriptions: no managed subscription has this id")

// RenewNow renews the managed subscription id at once (as the lease
// holder), whatever its schedule; "" renews every managed subscription.
func (m *Manager) RenewNow(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.requireLease(ctx); err != nil {
		return err
	}
	found := false
	var errs []error
	for _, s := range m.cfg.Subscriptions {
		rec, rev, ok := m.record(s.key())
		if !ok || rec.ID == "" || id != "" && rec.ID != id {
			continue
		}
		found = true
		m.renew(ctx, s, rec, rev, "command")
		if after, _, _ := m.record(s.key()); after.LastOutcome != OutcomeOK {
			errs = append(errs, fmt.Errorf("subscriptions: renew %s: %s", rec.ID, after.LastError))
		}
	}
	if id != "" && !found {
		return fmt.Errorf("%w: %s", ErrUnknownID, id)
	}
	return errors.Join(errs...)
}

// Delete deletes the managed subscription id from Graph and the bucket,
// whoever created it. If it is still in Config.Subscriptions, the next
// pass creates it again.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.requireLease(ctx); err != nil {
		return err
	}
	m.cmu.RLock()
	k, ok := m.byID[id]
	m.cmu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownID, id)
	}
	rec, rev, _ := m.record(k)
	if err := m.c.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	m.forget(id)
	if err := m.kv.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("subscriptions: delete record of %s: %w", id, err)
	}
	m.dropped(k)
	m.emit(ctx, Event{Action: ActionDelete, Outcome: OutcomeDeleted, SubscriptionID: id, Resource: rec.Resource, ChangeType: rec.ChangeType, Trigger: "command"})
	return nil
}

// Redacted returns r without its clientState, for display (a CLI's table
// or --json).
func (r Record) Redacted() Record {
	if r.ClientState != "" {
		r.ClientState = "[redacted]"
	}
	return r
}

// SetSubscriptions replaces the desired subscriptions (a configuration
// reload) after validating them as New does, and wakes the loop. Owned
// subscriptions no longer listed are deleted at the next pass.
func (m *Manager) SetSubscriptions(specs []Spec) error {
	m.mu.Lock()
	cfg := m.cfg
	cfg.Subscriptions = append([]Spec(nil), specs...)
	if m.key != nil {
		cfg.Key = m.key
	}
	if err := cfg.Validate(); err != nil {
		m.mu.Unlock()
		return err
	}
	m.cfg.Subscriptions = cfg.Subscriptions
	m.mu.Unlock()
	m.Wake()
	return nil
}
