package graphsim

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// MaxChangeCount bounds ChangeRequest.Count.
const MaxChangeCount = 1_000_000

// ChangeRequest asks the simulator to change resources: Count changes of
// ChangeType for every matching subscription.
type ChangeRequest struct {
	// SubscriptionID limits the change to one subscription.
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// Resource limits the change to subscriptions whose resource equals it
	// or contains it (e.g. "users/42/messages/7" matches a subscription on
	// "users/42/messages"), compared case-insensitively. Empty matches all.
	Resource string `json:"resource,omitempty"`
	// ChangeType is created, updated or deleted. Default created.
	ChangeType string `json:"changeType,omitempty"`
	// Count is the number of changes per subscription. Default 1.
	Count int `json:"count,omitempty"`
	// Content is the resource JSON put (encrypted) into rich notifications.
	// Default: generated per change by [ResourceContent].
	Content json.RawMessage `json:"content,omitempty"`
}

// ChangeReport is what [Sim.Change] generated and queued.
type ChangeReport struct {
	// Subscriptions are the ids of the matching subscriptions.
	Subscriptions []string `json:"subscriptions"`
	// Notifications is the number of notifications queued.
	Notifications int `json:"notifications"`
	// Batches is the number of delivery POSTs queued.
	Batches int `json:"batches"`
	// Deliveries are the ids of the queued deliveries (see [Sim.Deliveries]).
	Deliveries []int64 `json:"deliveries"`
	// Paused counts changes lost because the subscription's authorization
	// had expired (a reauthorizationRequired that was not answered).
	Paused int `json:"paused"`
	// Persistent tells whether the simulator keeps subscriptions across
	// restarts (Config.StateFile); without it, a restart loses them.
	Persistent bool `json:"persistent"`
	// Items describes every queued notification, with the plaintext of rich
	// ones.
	Items []Generated `json:"items,omitempty"`
}

// Generated is one generated change notification.
type Generated struct {
	SubscriptionID string `json:"subscriptionId"`
	// ID is the changed resource's id (resourceData.id).
	ID         string `json:"id"`
	Resource   string `json:"resource"`
	ChangeType string `json:"changeType"`
	// Content is the plaintext encrypted into a rich notification; nil for
	// basic ones.
	Content json.RawMessage `json:"content,omitempty"`
}

// pendingItem is a notification waiting to be batched.
type pendingItem struct {
	n      Notification
	app    string
	tenant string
	rich   bool // of a rich subscription: the batch carries a validationToken
}

// Change generates notifications for the subscriptions matching req and
// queues their delivery: items are grouped by notificationUrl into batches
// of at most Config.MaxBatch, rich items are encrypted with their
// subscription's certificate and batches carry validationTokens. Use
// [Sim.Wait] to wait for the deliveries.
func (s *Sim) Change(ctx context.Context, req ChangeRequest) (*ChangeReport, error) {
	if req.ChangeType == "" {
		req.ChangeType = "created"
	}
	switch req.ChangeType {
	case "created", "updated", "deleted":
	default:
		return nil, badRequest(ErrBadRequest, "Invalid changeType '%s'.", req.ChangeType)
	}
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > MaxChangeCount {
		return nil, badRequest(ErrBadRequest, "count must be between 1 and %d.", MaxChangeCount)
	}
	if len(req.Content) > 0 && !json.Valid(req.Content) {
		return nil, badRequest(ErrBadRequest, "content is not valid JSON.")
	}
	want := normalizeResource(req.Resource)
	type target struct {
		pub    Subscription
		cert   *x509.Certificate
		app    string
		tenant string
	}
	var targets []target
	rep := &ChangeReport{Persistent: s.Persistent()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed()
	}
	now := s.nowLocked()
	for _, sub := range s.subs {
		if req.SubscriptionID != "" && sub.pub.ID != req.SubscriptionID {
			continue
		}
		if want != "" && want != sub.norm && !strings.HasPrefix(want, sub.norm+"/") {
			continue
		}
		if !slices.Contains(sub.changeTypes, req.ChangeType) || !now.Before(sub.pub.ExpirationDateTime) {
			continue
		}
		rep.Subscriptions = append(rep.Subscriptions, sub.pub.ID)
		if !now.Before(sub.authExpires) {
			// §7: "Notifications keep flowing for a while, then pause until
			// handled; changes made during the pause are lost, so resync
			// with delta." graphsim pauses at the authorization's expiry
			// and loses the changes (counted as Paused).
			rep.Paused += req.Count
			continue
		}
		if s.mailboxLocked(sub.kind, sub.norm) != nil {
			continue // no mailbox, no changes
		}
		targets = append(targets, target{pub: sub.pub, cert: sub.cert, app: sub.aud(), tenant: sub.tenantID})
	}
	s.mu.Unlock()
	if req.SubscriptionID != "" && len(rep.Subscriptions) == 0 {
		if _, err := s.Subscription(req.SubscriptionID); err != nil {
			return nil, err
		}
	}
	slices.Sort(rep.Subscriptions)

	type batchKey struct{ url, tls string }
	byURL := map[batchKey][]pendingItem{}
	var urls []batchKey
	for _, t := range targets {
		for range req.Count {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			it := Item{
				SubscriptionID: t.pub.ID,
				ClientState:    t.pub.ClientState,
				TenantID:       t.tenant,
				ChangeType:     req.ChangeType,
				Resource:       t.pub.Resource,
				Expiration:     t.pub.ExpirationDateTime,
				Content:        req.Content,
			}
			var n Notification
			var content []byte
			if t.pub.IncludeResourceData && t.cert != nil {
				var err error
				if n, content, err = RichNotification(it, t.cert, t.pub.EncryptionCertificateID); err != nil {
					return nil, fmt.Errorf("graphsim: encrypt for subscription %s: %w", t.pub.ID, err)
				}
			} else {
				n = BasicNotification(it)
			}
			// Batches go to one URL over one TLS version
			// (latestSupportedTlsVersion of the subscriptions in them).
			k := batchKey{t.pub.NotificationURL, t.pub.LatestSupportedTLSVersion}
			if _, ok := byURL[k]; !ok {
				urls = append(urls, k)
			}
			byURL[k] = append(byURL[k], pendingItem{n: n, app: t.app, tenant: t.tenant})
			rep.Items = append(rep.Items, Generated{
				SubscriptionID: n.SubscriptionID, ID: n.ResourceData.ID, Resource: n.Resource,
				ChangeType: n.ChangeType, Content: content,
			})
		}
	}
	for _, u := range urls {
		items := byURL[u]
		for len(items) > 0 {
			chunk := items[:min(len(items), s.cfg.MaxBatch)]
			items = items[len(chunk):]
			d, err := s.queueBatch(u.url, u.tls, chunk, false)
			if err != nil {
				return nil, err
			}
			rep.Batches++
			rep.Notifications += len(chunk)
			rep.Deliveries = append(rep.Deliveries, d.ID)
		}
	}
	return rep, nil
}

// queueBatch marshals items (adding validationTokens when any is rich) and
// queues the POST.
func (s *Sim) queueBatch(url, tlsVersion string, items []pendingItem, lifecycle bool) (*Delivery, error) {
	coll := Collection{Value: make([]Notification, len(items))}
	var ids []string
	type pair struct{ app, tenant string }
	var pairs []pair
	for i, it := range items {
		coll.Value[i] = it.n
		if !slices.Contains(ids, it.n.SubscriptionID) {
			ids = append(ids, it.n.SubscriptionID)
		}
		if it.n.EncryptedContent != nil || it.rich {
			// Rich items, and lifecycle items of rich subscriptions, are
			// vouched for by a validationToken (§6, §7).
			p := pair{it.app, strings.ToLower(it.tenant)}
			if !slices.Contains(pairs, p) {
				pairs = append(pairs, p)
			}
		}
	}
	for _, p := range pairs {
		tok, err := s.ValidationToken(p.app, p.tenant)
		if err != nil {
			return nil, err
		}
		coll.ValidationTokens = append(coll.ValidationTokens, tok)
	}
	body, err := json.Marshal(coll)
	if err != nil {
		return nil, fmt.Errorf("graphsim: encode batch: %w", err)
	}
	return s.enqueue(url, tlsVersion, body, len(items), ids, lifecycle)
}

// Batch encodes items as a changeNotificationCollection. When any item
// carries encryptedContent, the body gets one validationToken per tenant
// among those items, issued for appID (the aud claim; empty means
// Config.AppID) and signed with the simulator's key.
func (s *Sim) Batch(appID string, items ...Notification) ([]byte, error) {
	if appID == "" {
		appID = s.cfg.AppID
	}
	coll := Collection{Value: items}
	var tenants []string
	for _, n := range items {
		if n.EncryptedContent != nil && !slices.Contains(tenants, strings.ToLower(n.TenantID)) {
			tenants = append(tenants, strings.ToLower(n.TenantID))
		}
	}
	for _, t := range tenants {
		tok, err := s.ValidationToken(appID, t)
		if err != nil {
			return nil, err
		}
		coll.ValidationTokens = append(coll.ValidationTokens, tok)
	}
	return json.Marshal(coll)
}

// Lifecycle sends a lifecycle notification (event is
// [EventSubscriptionRemoved], [EventReauthorizationRequired] or
// [EventMissed]) for the subscription to its lifecycleNotificationUrl.
// subscriptionRemoved also removes the subscription, as Graph does. It
// returns [ErrNoLifecycleURL] for a subscription without that URL.
func (s *Sim) Lifecycle(ctx context.Context, subscriptionID, event string) error {
	switch event {
	case EventSubscriptionRemoved, EventReauthorizationRequired, EventMissed:
	default:
		return badRequest(ErrBadRequest, "Invalid lifecycle event '%s'.", event)
	}
	s.mu.Lock()
	sub, ok := s.subs[subscriptionID]
	if !ok {
		s.mu.Unlock()
		return notFound(subscriptionID)
	}
	if sub.pub.LifecycleNotificationURL == "" {
		s.mu.Unlock()
		return badRequest(ErrNoLifecycleURL, "Subscription %s has no lifecycleNotificationUrl.", subscriptionID)
	}
	if event == EventSubscriptionRemoved {
		delete(s.subs, subscriptionID)
		s.saveLocked()
	}
	if event == EventReauthorizationRequired {
		sub.lastChallenge = s.nowLocked()
	}
	ln := s.lifecycleItem(sub, event)
	s.mu.Unlock()
	_, err := s.queueLifecycle(ln)
	return err
}

// lifecycle is a lifecycle notification ready to queue.
type lifecycle struct {
	id, url, tls string
	item         pendingItem
}

// lifecycleItem builds sub's lifecycle notification for event. s.mu is
// held: a concurrent PATCH may change the subscription.
func (s *Sim) lifecycleItem(sub *subscription, event string) lifecycle {
	n := LifecycleNotification(sub.pub.ID, sub.pub.ClientState, sub.tenantID, event, sub.pub.ExpirationDateTime)
	return lifecycle{id: sub.pub.ID, url: sub.pub.LifecycleNotificationURL, tls: sub.pub.LatestSupportedTLSVersion,
		item: pendingItem{n: n, app: sub.aud(), tenant: sub.tenantID, rich: sub.rich}}
}

func (s *Sim) queueLifecycle(l lifecycle) (*Delivery, error) {
	return s.queueBatch(l.url, l.tls, []pendingItem{l.item}, true)
}

// Sweep does at once what the background sweep does every
// Config.SweepInterval (and [Sim.Advance] at every point where something
// falls due): it removes expired subscriptions, and those whose consent
// was revoked Config.RevokedRemoveAfter ago, sending subscriptionRemoved
// where the resource supports it and a lifecycleNotificationUrl is set
// (§7), and sends reauthorizationRequired on the schedule of §7 to
// subscriptions whose authorization or expiration approaches.
func (s *Sim) Sweep(ctx context.Context) error {
	var evs []lifecycle
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed()
	}
	now := s.nowLocked()
	changed := false
	for id, sub := range s.subs {
		expired := !now.Before(sub.pub.ExpirationDateTime)
		revoked := !sub.revokedAt.IsZero() && !now.Before(sub.revokedAt.Add(s.cfg.RevokedRemoveAfter))
		if expired || revoked {
			delete(s.subs, id)
			changed = true
			reason := "expired"
			if !expired {
				reason = "consent revoked"
			}
			s.log.Info("subscription removed", "subscription_id", id, "reason", reason)
			if sub.pub.LifecycleNotificationURL != "" && sub.kind.removed {
				evs = append(evs, s.lifecycleItem(sub, EventSubscriptionRemoved))
			}
			continue
		}
		if sub.pub.LifecycleNotificationURL == "" || !now.Before(sub.authExpires) {
			continue // no URL, or paused: challenges have stopped (§7)
		}
		if sub.challengeDueAt(now) {
			sub.lastChallenge = now
			evs = append(evs, s.lifecycleItem(sub, EventReauthorizationRequired))
		}
	}
	if changed {
		s.saveLocked()
	}
	s.mu.Unlock()
	slices.SortFunc(evs, func(a, b lifecycle) int { return strings.Compare(a.id, b.id) })
	for _, e := range evs {
		if _, err := s.queueLifecycle(e); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) sweepLoop() {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(s.ctx); err != nil {
				s.log.Warn("sweep failed", "error", err)
			}
		}
	}
}

func errClosed() error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "ServiceNotAvailable", Message: "graphsim is closed.", Err: net.ErrClosed}
}
