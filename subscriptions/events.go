package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/nats-io/nats.go/jetstream"
)

// Event actions.
const (
	ActionCreate      = "create"
	ActionRenew       = "renew"
	ActionAdopt       = "adopt"
	ActionRecreate    = "recreate"
	ActionDelete      = "delete"
	ActionReauthorize = "reauthorize"
	ActionRotate      = "rotate_certificate"
	ActionResync      = "resync"
	ActionPermanent   = "permanent_failure"
)

// Event is one action of the Manager and its outcome, published as JSON on
//
//	<prefix>.subscriptions.<tenantId>.<subscriptionId>.<action>
//
// (tokens through natspub.SubjectToken; "_" for a subscription without id yet).
// A resync event (action "resync") asks consumers to resynchronise the
// resource with a delta query.
type Event struct {
	Action         string    `json:"action"`
	Outcome        string    `json:"outcome"`
	SubscriptionID string    `json:"subscriptionId,omitempty"`
	TenantID       string    `json:"tenantId"`
	Resource       string    `json:"resource"`
	ChangeType     string    `json:"changeType,omitempty"`
	Expiration     time.Time `json:"expiration,omitzero"`
	// Trigger is what caused the action: schedule, start, lifecycle event
	// name, config, rotation.
	Trigger string `json:"trigger,omitempty"`
	// Error is the failure's text (Graph's code and message), never a
	// secret.
	Error string    `json:"error,omitempty"`
	Time  time.Time `json:"time"`
}

// Gap is a time range in which notifications of a subscription may have
// been lost, published as JSON on
//
//	<prefix>.gaps.<tenantId>.<subscriptionId>
//
// A consumer resynchronises Resource with a delta query covering
// [Start, End]. Start is the last moment the subscription was known to
// work (its last notification seen, or its last successful create or
// renewal, whichever is later); End is when it worked again (recreated,
// reauthorized) or, for missed, when Graph reported the loss.
type Gap struct {
	SubscriptionID string `json:"subscriptionId"`
	// PreviousSubscriptionID is the removed subscription a recreate
	// replaced, if the id changed.
	PreviousSubscriptionID string    `json:"previousSubscriptionId,omitempty"`
	TenantID               string    `json:"tenantId"`
	Resource               string    `json:"resource"`
	Reason                 string    `json:"reason"` // subscriptionRemoved, authorization, missed, replaced, unavailable
	Start                  time.Time `json:"start"`
	End                    time.Time `json:"end"`
}

// Gap reasons.
const (
	GapRemoved       = "subscriptionRemoved"
	GapAuthorization = "authorization"
	GapMissed        = "missed"
	GapUnavailable   = "unavailable"
	GapReplaced      = "replaced" // deleted and created again after a Spec change
)

// EventSubject returns the subject of an event.
func EventSubject(prefix, tenantID, subscriptionID, action string) string {
	return prefix + ".subscriptions." + natspub.SubjectToken(tenantID) + "." + natspub.SubjectToken(subscriptionID) + "." + natspub.SubjectToken(action)
}

// GapSubject returns the subject of a gap event.
func GapSubject(prefix, tenantID, subscriptionID string) string {
	return prefix + ".gaps." + natspub.SubjectToken(tenantID) + "." + natspub.SubjectToken(subscriptionID)
}

// bucket opens the state bucket, creating it with Config.Replicas when it is
// missing. An existing bucket is used as its operator configured it: it is
// never rewritten, so a cluster's R3 bucket stays R3.
func (m *Manager) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := m.js.KeyValue(ctx, m.cfg.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = m.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      m.cfg.Bucket,
		Description: "graphhook subscription state and renewal lease",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    max(m.cfg.Replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) { // another replica made it first
		return m.js.KeyValue(ctx, m.cfg.Bucket)
	}
	return kv, err
}

// ensureStream creates the event stream with Config.Replicas when it is
// missing. An existing one keeps its operator's replicas and limits; only a
// missing subject of ours is added, since without it events are not stored.
func (m *Manager) ensureStream(ctx context.Context) error {
	subjects := []string{m.cfg.SubjectPrefix + ".subscriptions.>", m.cfg.SubjectPrefix + ".gaps.>"}
	s, err := m.js.Stream(ctx, m.cfg.EventStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = m.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        m.cfg.EventStream,
			Description: "graphhook subscription manager events and gaps",
			Subjects:    subjects,
			Storage:     jetstream.FileStorage,
			MaxAge:      30 * 24 * time.Hour,
			Duplicates:  time.Hour,
			Replicas:    max(m.cfg.Replicas, 1),
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	case err == nil:
		cfg := s.CachedInfo().Config
		missing := false
		for _, subj := range subjects {
			if !slices.Contains(cfg.Subjects, subj) {
				cfg.Subjects, missing = append(cfg.Subjects, subj), true
			}
		}
		if missing {
			_, err = m.js.UpdateStream(ctx, cfg)
		}
	}
	if err != nil {
		return fmt.Errorf("subscriptions: event stream %s: %w", m.cfg.EventStream, err)
	}
	return nil
}

// emit publishes ev and counts it; failures are logged, not returned: an
// event is a report, the bucket is the truth.
func (m *Manager) emit(ctx context.Context, ev Event) {
	if ev.TenantID == "" {
		ev.TenantID = m.cfg.TenantID
	}
	ev.Time = m.now().UTC()
	m.met.actions.WithLabelValues(ev.Action, ev.Outcome).Inc()
	lvl := m.log.Info
	if ev.Error != "" {
		lvl = m.log.Warn
	}
	lvl("subscriptions: "+ev.Action, "subscription_id", ev.SubscriptionID, "resource", ev.Resource, "outcome", ev.Outcome, "trigger", ev.Trigger, "error", ev.Error)
	b, _ := json.Marshal(ev)
	if _, err := m.js.Publish(ctx, EventSubject(m.cfg.SubjectPrefix, ev.TenantID, ev.SubscriptionID, ev.Action), b); err != nil {
		m.met.publishErrors.Inc()
		m.log.Warn("subscriptions: publish event", "action", ev.Action, "error", err)
	}
}

// PublishGap publishes a gap event and waits for its PubAck. The Manager
// publishes its own gaps; a daemon can publish others it knows of.
func (m *Manager) PublishGap(ctx context.Context, g Gap) error {
	if g.TenantID == "" {
		g.TenantID = m.cfg.TenantID
	}
	if g.Start.IsZero() || g.End.Before(g.Start) {
		return errors.New("subscriptions: gap needs a start not after its end")
	}
	g.Start, g.End = g.Start.UTC(), g.End.UTC()
	b, _ := json.Marshal(g)
	id := "gap:" + g.SubscriptionID + ":" + g.Reason + ":" + g.Start.Format(time.RFC3339Nano)
	if _, err := m.js.Publish(ctx, GapSubject(m.cfg.SubjectPrefix, g.TenantID, g.SubscriptionID), b, jetstream.WithMsgID(id)); err != nil {
		m.met.publishErrors.Inc()
		return fmt.Errorf("subscriptions: publish gap: %w", err)
	}
	m.met.gaps.WithLabelValues(g.Reason).Inc()
	m.log.Info("subscriptions: gap", "subscription_id", g.SubscriptionID, "reason", g.Reason, "start", g.Start, "end", g.End)
	return nil
}
