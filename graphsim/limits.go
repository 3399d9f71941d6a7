package graphsim

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Throttle limits subscription API requests per app and tenant over a
// sliding window of the simulated clock, as documented in the protocol
// doc §11 (microsoft-graph-docs PR#14784, docs-contrib PR#8703). A request
// over a limit gets 429 TooManyRequests with Retry-After. A negative limit
// disables it.
type Throttle struct {
	// Window is the sliding window. Default 20 s.
	Window time.Duration `json:"window,omitempty"`
	// List bounds GET /subscriptions. Default 40.
	List int `json:"list,omitempty"`
	// Write bounds POST, PATCH and DELETE. Default 1000.
	Write int `json:"write,omitempty"`
	// Reauthorize bounds POST /subscriptions/{id}/reauthorize. Default 1000.
	Reauthorize int `json:"reauthorize,omitempty"`
	// Get bounds GET /subscriptions/{id} (undocumented; Default 1000).
	Get int `json:"get,omitempty"`
}

func (t Throttle) withDefaults() Throttle {
	setDefault(&t.Window, 20*time.Second)
	t.List = cmp.Or(t.List, 40)
	t.Write = cmp.Or(t.Write, 1000)
	t.Reauthorize = cmp.Or(t.Reauthorize, 1000)
	t.Get = cmp.Or(t.Get, 1000)
	return t
}

// limit returns the limit of an API operation.
func (t Throttle) limit(op string) int {
	switch op {
	case OpList:
		return t.List
	case OpGet:
		return t.Get
	case OpReauthorize:
		return t.Reauthorize
	}
	return t.Write
}

// Quotas bound active subscriptions, as the protocol doc §11 lists them
// (microsoft-graph-docs#21403). A create past a quota gets 403 "Maximum
// number of subscriptions has been reached". A negative quota disables it.
type Quotas struct {
	// PerMailbox bounds Outlook (message, event, contact) subscriptions on
	// one mailbox across all apps. Default 1000.
	PerMailbox int `json:"perMailbox,omitempty"`
	// DirectoryPerTenant bounds user, group and other directory
	// subscriptions in a tenant across apps. Default 1000.
	DirectoryPerTenant int `json:"directoryPerTenant,omitempty"`
	// DirectoryPerApp bounds directory subscriptions per app and tenant.
	// Default 100.
	DirectoryPerApp int `json:"directoryPerApp,omitempty"`
	// TeamsPerTenant bounds Teams subscriptions, which share one
	// organisation-wide quota; Microsoft does not state its size. Default
	// 10000.
	TeamsPerTenant int `json:"teamsPerTenant,omitempty"`
}

func (q Quotas) withDefaults() Quotas {
	q.PerMailbox = cmp.Or(q.PerMailbox, 1000)
	q.DirectoryPerTenant = cmp.Or(q.DirectoryPerTenant, 1000)
	q.DirectoryPerApp = cmp.Or(q.DirectoryPerApp, 100)
	q.TeamsPerTenant = cmp.Or(q.TeamsPerTenant, 10000)
	return q
}

// Subscription API operations, as [Fault.Op] and [Sim.APICalls] name them.
const (
	OpCreate      = "create"
	OpList        = "list"
	OpGet         = "get"
	OpUpdate      = "update"
	OpDelete      = "delete"
	OpReauthorize = "reauthorize"
)

// Fault makes subscription API calls fail on purpose, for tests of a
// client's retries and permanent-failure handling: the next Count calls
// matching Op, SubscriptionID and Resource answer Status with Graph's
// error body (and Retry-After when set). Faults are checked before
// throttling and after authentication.
type Fault struct {
	// Op is the operation to fail (OpCreate, OpList, ...); empty fails any.
	Op string `json:"op,omitempty"`
	// SubscriptionID limits the fault to calls on one subscription.
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// Resource limits the fault to subscriptions (or creates) on this
	// resource or below it, compared as [ChangeRequest.Resource].
	Resource string `json:"resource,omitempty"`
	// Status is the HTTP status, e.g. 429, 503, 403 or 404. Required.
	Status int `json:"status"`
	// Code and Message are Graph's error code and message. Defaults per
	// status (TooManyRequests, ServiceNotAvailable, ...).
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// RetryAfterSeconds, when positive, is sent as Retry-After.
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// Count is the number of calls to fail; 0 fails every matching call
	// until [Sim.ClearFaults].
	Count int `json:"count,omitempty"`
}

type faultState struct {
	Fault
	norm string
	left int // remaining calls; -1 unlimited
}

// InjectFault adds f. See [Fault].
func (s *Sim) InjectFault(f Fault) error {
	if f.Status < 400 || f.Status > 599 {
		return badRequest(ErrBadRequest, "fault status must be 400 to 599.")
	}
	switch f.Op {
	case "", OpCreate, OpList, OpGet, OpUpdate, OpDelete, OpReauthorize:
	default:
		return badRequest(ErrBadRequest, "fault op must be one of create, list, get, update, delete, reauthorize.")
	}
	if f.Count < 0 {
		return badRequest(ErrBadRequest, "fault count must not be negative.")
	}
	fs := &faultState{Fault: f, norm: normalizeResource(f.Resource), left: f.Count}
	if f.Count == 0 {
		fs.left = -1
	}
	s.mu.Lock()
	s.faults = append(s.faults, fs)
	s.mu.Unlock()
	return nil
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// APICalls returns how many subscription API calls were made per
// operation (OpCreate, OpList, ...), including those answered with an
// error, since New or [Sim.ResetAPICalls].
func (s *Sim) APICalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ResetAPICalls sets every count of [Sim.APICalls] to zero.
func (s *Sim) ResetAPICalls() {
	s.mu.Lock()
	clear(s.calls)
	s.mu.Unlock()
}

type windowKey struct{ app, tenant, op string }

// gate counts an API call and answers an injected fault or the throttle.
// resource is the subscription's (or the create's) resource.
func (s *Sim) gate(op string, c caller, subID, resource string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	norm := normalizeResource(resource)
	for i, f := range s.faults {
		if f.Op != "" && f.Op != op || f.SubscriptionID != "" && f.SubscriptionID != subID ||
			f.norm != "" && norm != f.norm && !strings.HasPrefix(norm, f.norm+"/") {
			continue
		}
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return faultError(f.Fault)
	}
	if c.delegated {
		return nil // the Go API is not throttled
	}
	limit := s.cfg.Throttle.limit(op)
	if limit < 0 {
		return nil
	}
	class := op
	if class == OpCreate || class == OpUpdate || class == OpDelete {
		class = "write"
	}
	k := windowKey{strings.ToLower(c.appID), strings.ToLower(c.tenantID), class}
	now := s.nowLocked()
	w := s.windows[k]
	cut := 0
	for cut < len(w) && !w[cut].After(now.Add(-s.cfg.Throttle.Window)) {
		cut++
	}
	w = w[cut:]
	if len(w) >= limit {
		s.windows[k] = w
		wait := w[0].Add(s.cfg.Throttle.Window).Sub(now)
		secs := max(1, int((wait+time.Second-1)/time.Second))
		s.log.Warn("subscription API throttled", "op", op, "app_id", c.appID, "retry_after", secs)
		return &Error{Status: http.StatusTooManyRequests, Code: "TooManyRequests",
			Message:    fmt.Sprintf("Too many requests: %d %s requests per %s per app and tenant. Retry after %d seconds.", limit, class, s.cfg.Throttle.Window, secs),
			RetryAfter: secs, Err: ErrThrottled}
	}
	s.windows[k] = append(w, now)
	return nil
}

func faultError(f Fault) *Error {
	e := &Error{Status: f.Status, Code: f.Code, Message: f.Message, RetryAfter: f.RetryAfterSeconds, Err: ErrInjected}
	if e.Code == "" || e.Message == "" {
		code, msg := "BadRequest", "Injected failure."
		switch f.Status {
		case http.StatusTooManyRequests:
			code, msg, e.Err = "TooManyRequests", "Too many requests.", ErrThrottled
		case http.StatusServiceUnavailable:
			code, msg = "ServiceNotAvailable", "The service is temporarily unavailable. Retry later."
		case http.StatusForbidden:
			code, msg = "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: Forbidden]"
		case http.StatusNotFound:
			code, msg = "ResourceNotFound", "The object was not found."
		case http.StatusInternalServerError:
			code, msg = "InternalServerError", "An internal server error occurred."
		}
		if e.Code == "" {
			e.Code = code
		}
		if e.Message == "" {
			e.Message = msg
		}
	}
	return e
}

// quotaLocked answers 403 when creating sub would exceed a quota.
func (s *Sim) quotaLocked(sub *subscription) error {
	q := s.cfg.Quotas
	var n, limit int
	var what string
	count := func(match func(o *subscription) bool) int {
		k := 0
		for _, o := range s.subs {
			if strings.EqualFold(o.tenantID, sub.tenantID) && match(o) {
				k++
			}
		}
		return k
	}
	switch {
	case sub.kind.outlook():
		mb := mailboxOf(sub.norm)
		n, limit, what = count(func(o *subscription) bool { return o.kind.outlook() && mailboxOf(o.norm) == mb }), q.PerMailbox, "mailbox"
	case sub.kind.directory():
		n, limit, what = count(func(o *subscription) bool { return o.kind.directory() }), q.DirectoryPerTenant, "tenant"
		if m := count(func(o *subscription) bool {
			return o.kind.directory() && o.pub.ApplicationID == sub.pub.ApplicationID
		}); limit < 0 || n < limit {
			n, limit, what = m, q.DirectoryPerApp, "app and tenant"
		}
	case sub.kind.teams:
		n, limit, what = count(func(o *subscription) bool { return o.kind.teams }), q.TeamsPerTenant, "Teams organisation"
	default:
		return nil
	}
	if limit < 0 || n < limit {
		return nil
	}
	s.log.Warn("subscription quota reached", "quota", what, "limit", limit)
	return &Error{Status: http.StatusForbidden, Code: "ExtensionError",
		Message: fmt.Sprintf("Operation: Create; Exception: [Status Code: Forbidden; Reason: Maximum number of subscriptions has been reached (%d per %s).]", limit, what),
		Err:     ErrQuotaExceeded}
}

// mailboxOf returns the mailbox of a normalized Outlook resource path:
// the user of users/{user}/..., or "me".
func mailboxOf(norm string) string {
	segs := strings.Split(norm, "/")
	if segs[0] == "users" && len(segs) > 1 {
		return segs[1]
	}
	return segs[0]
}

// DisableMailbox makes the mailbox of user (an id or UPN, as in
// users/{user}/messages) answer as a mailbox that is inactive,
// soft-deleted or on-premises: creating, renewing or reauthorizing an
// Outlook subscription on it gets 404 MailboxNotEnabledForRESTAPI, a
// permanent failure (§11), and its changes produce no notifications.
// disabled false undoes it.
func (s *Sim) DisableMailbox(user string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(strings.Trim(user, "/"))
	if disabled {
		s.mailboxes[k] = true
	} else {
		delete(s.mailboxes, k)
	}
}

// mailboxLocked answers 404 MailboxNotEnabledForRESTAPI for an Outlook
// resource on a disabled mailbox.
func (s *Sim) mailboxLocked(kind resourceKind, norm string) error {
	if !kind.outlook() || !s.mailboxes[mailboxOf(norm)] {
		return nil
	}
	return &Error{Status: http.StatusNotFound, Code: "MailboxNotEnabledForRESTAPI",
		Message: "The mailbox is either inactive, soft-deleted, or is hosted on-premise.", Err: ErrMailboxNotEnabled}
}

// RevokeConsent withdraws the tenant's consent to the app, as an admin
// removing its permissions does (§7): its tokens lose their roles, its
// subscriptions' authorization lapses at once (notifications pause, and
// changes in the pause are lost), each gets reauthorizationRequired, and
// PATCH and reauthorize answer 403 until [Sim.RestoreConsent]. Those not
// reauthorized within Config.RevokedRemoveAfter are removed with
// subscriptionRemoved.
func (s *Sim) RevokeConsent(ctx context.Context, appID string) error {
	s.mu.Lock()
	a, ok := s.appLocked(appID)
	if !ok {
		s.mu.Unlock()
		return &Error{Status: http.StatusNotFound, Code: "ResourceNotFound", Message: fmt.Sprintf("No app %s is registered.", clip(appID)), Err: ErrNotFound}
	}
	a.revoked = true
	now := s.nowLocked()
	var evs []lifecycle
	for _, sub := range s.subs {
		if !strings.EqualFold(sub.pub.ApplicationID, a.ClientID) {
			continue
		}
		sub.authExpires, sub.revokedAt, sub.lastChallenge = now, now, now
		if sub.pub.LifecycleNotificationURL != "" {
			evs = append(evs, s.lifecycleItem(sub, EventReauthorizationRequired))
		}
	}
	s.log.Info("consent revoked", "app_id", a.ClientID, "subscriptions", len(evs))
	s.saveLocked()
	s.mu.Unlock()
	for _, e := range evs {
		if _, err := s.queueLifecycle(e); err != nil {
			return err
		}
	}
	return nil
}

// RestoreConsent grants the app its roles again. Its subscriptions stay
// paused until reauthorized or renewed with a new token.
func (s *Sim) RestoreConsent(appID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.appLocked(appID)
	if !ok {
		return &Error{Status: http.StatusNotFound, Code: "ResourceNotFound", Message: fmt.Sprintf("No app %s is registered.", clip(appID)), Err: ErrNotFound}
	}
	a.revoked = false
	return nil
}

// RemoveSubscription deletes a subscription as a tenant admin (or Graph
// itself) does, unlike the app's own DELETE: the app gets
// subscriptionRemoved where the resource supports it (§7).
func (s *Sim) RemoveSubscription(ctx context.Context, id string) error {
	s.mu.Lock()
	sub, ok := s.subs[id]
	if !ok {
		s.mu.Unlock()
		return notFound(id)
	}
	delete(s.subs, id)
	s.saveLocked()
	var ev *lifecycle
	if sub.pub.LifecycleNotificationURL != "" && sub.kind.removed {
		l := s.lifecycleItem(sub, EventSubscriptionRemoved)
		ev = &l
	}
	s.mu.Unlock()
	s.log.Info("subscription removed", "subscription_id", id, "reason", "admin")
	if ev != nil {
		_, err := s.queueLifecycle(*ev)
		return err
	}
	return nil
}

// retryAfterHeader formats seconds for Retry-After.
func retryAfterHeader(secs int) string { return strconv.Itoa(secs) }
