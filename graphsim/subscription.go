package graphsim

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Subscription is a change-notification subscription in Graph's JSON shape.
type Subscription struct {
	ID                        string    `json:"id"`
	Resource                  string    `json:"resource"`
	ApplicationID             string    `json:"applicationId"`
	ChangeType                string    `json:"changeType"`
	ClientState               string    `json:"clientState"`
	NotificationURL           string    `json:"notificationUrl"`
	LifecycleNotificationURL  string    `json:"lifecycleNotificationUrl"`
	ExpirationDateTime        time.Time `json:"expirationDateTime"`
	CreatorID                 string    `json:"creatorId"`
	IncludeResourceData       bool      `json:"includeResourceData"`
	LatestSupportedTLSVersion string    `json:"latestSupportedTlsVersion"`
	EncryptionCertificate     string    `json:"encryptionCertificate"`
	EncryptionCertificateID   string    `json:"encryptionCertificateId"`
	NotificationURLAppID      string    `json:"notificationUrlAppId"`
	NotificationQueryOptions  string    `json:"notificationQueryOptions"`
	NotificationContentType   string    `json:"notificationContentType"`
}

// MarshalJSON writes the subscription as Graph does: expirationDateTime
// with seven fractional digits and null for unset optional properties.
func (s Subscription) MarshalJSON() ([]byte, error) {
	null := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	return json.Marshal(map[string]any{
		"id":                        s.ID,
		"resource":                  s.Resource,
		"applicationId":             s.ApplicationID,
		"changeType":                s.ChangeType,
		"clientState":               null(s.ClientState),
		"notificationUrl":           s.NotificationURL,
		"notificationQueryOptions":  null(s.NotificationQueryOptions),
		"lifecycleNotificationUrl":  null(s.LifecycleNotificationURL),
		"expirationDateTime":        FormatDateTime(s.ExpirationDateTime),
		"creatorId":                 s.CreatorID,
		"includeResourceData":       s.IncludeResourceData,
		"latestSupportedTlsVersion": s.LatestSupportedTLSVersion,
		"encryptionCertificate":     null(s.EncryptionCertificate),
		"encryptionCertificateId":   null(s.EncryptionCertificateID),
		"notificationUrlAppId":      null(s.NotificationURLAppID),
		"notificationContentType":   null(s.NotificationContentType),
	})
}

// LogValue implements [slog.LogValuer] without the clientState or
// certificate.
func (s Subscription) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subscription_id", s.ID),
		slog.String("resource", s.Resource),
		slog.String("change_type", s.ChangeType),
		slog.Bool("rich", s.IncludeResourceData),
	)
}

// SubscriptionRequest is the body of POST /subscriptions.
type SubscriptionRequest struct {
	// ChangeType is a comma list of created, updated, deleted. Required.
	ChangeType string `json:"changeType"`
	// NotificationURL receives the notifications. Required.
	NotificationURL string `json:"notificationUrl"`
	// LifecycleNotificationURL receives lifecycle notifications. Optional;
	// required for Teams resources beyond an hour.
	LifecycleNotificationURL string `json:"lifecycleNotificationUrl,omitempty"`
	// Resource is the path of the watched resource, e.g. "me/messages".
	// Required.
	Resource string `json:"resource"`
	// ExpirationDateTime is when the subscription expires. Required; less
	// than 45 minutes ahead is raised to 45 minutes.
	ExpirationDateTime time.Time `json:"expirationDateTime"`
	// ClientState is echoed in every notification; at most 128 characters.
	ClientState string `json:"clientState,omitempty"`
	// IncludeResourceData asks for rich notifications; requires
	// EncryptionCertificate and EncryptionCertificateID.
	IncludeResourceData bool `json:"includeResourceData,omitempty"`
	// EncryptionCertificate is the base64 DER of an X.509 certificate with
	// an RSA key of 2048 to 4096 bits.
	EncryptionCertificate string `json:"encryptionCertificate,omitempty"`
	// EncryptionCertificateID labels the certificate in encryptedContent.
	EncryptionCertificateID string `json:"encryptionCertificateId,omitempty"`
	// LatestSupportedTLSVersion is v1_0 to v1_3. Default v1_2.
	LatestSupportedTLSVersion string `json:"latestSupportedTlsVersion,omitempty"`
	// NotificationURLAppID is the app validationTokens are issued for.
	// Default: the subscribing application.
	NotificationURLAppID string `json:"notificationUrlAppId,omitempty"`
	// NotificationQueryOptions is accepted and echoed (Universal Print).
	NotificationQueryOptions string `json:"notificationQueryOptions,omitempty"`
	// NotificationContentType is accepted and echoed.
	NotificationContentType string `json:"notificationContentType,omitempty"`
}

// SubscriptionUpdate is the body of PATCH /subscriptions/{id}: nil fields
// are left unchanged.
type SubscriptionUpdate struct {
	// ExpirationDateTime renews the subscription.
	ExpirationDateTime *time.Time `json:"expirationDateTime,omitempty"`
	// NotificationURL moves the subscription; the new URL is validated.
	NotificationURL *string `json:"notificationUrl,omitempty"`
	// EncryptionCertificate replaces the certificate.
	EncryptionCertificate *string `json:"encryptionCertificate,omitempty"`
	// EncryptionCertificateID replaces the certificate id.
	EncryptionCertificateID *string `json:"encryptionCertificateId,omitempty"`
}

// subscription is the simulator's state of one subscription.
type subscription struct {
	pub           Subscription
	kind          resourceKind
	changeTypes   []string
	norm          string // normalized resource
	cert          *x509.Certificate
	tenantID      string
	authExpires   time.Time // the subscription's access token expiry
	authStart     time.Time // when it was last authorized (created, renewed, reauthorized)
	lastChallenge time.Time
	revokedAt     time.Time // the app's consent was revoked: removal pending
	rich          bool      // lifecycle batches carry validationTokens
}

// aud is the application validationTokens of the subscription are issued for.
func (sub *subscription) aud() string {
	if sub.pub.NotificationURLAppID != "" {
		return sub.pub.NotificationURLAppID
	}
	return sub.pub.ApplicationID
}

// CreateSubscription creates a subscription for Config.AppID in
// Config.TenantID, with the same checks and validation handshakes as
// POST /subscriptions. Errors are [*Error] values wrapping a sentinel
// (ErrMissingField, ErrConflict, ErrValidationFailed, ...).
func (s *Sim) CreateSubscription(ctx context.Context, req SubscriptionRequest) (*Subscription, error) {
	return s.create(ctx, req, s.goCaller())
}

// goCaller is the identity of Go API calls: Config.AppID in
// Config.TenantID, acting for a signed-in user who consented everything
// (no permission checks), with a fresh token's lifetime.
func (s *Sim) goCaller() caller {
	sp := stableGUID("sp", strings.ToLower(s.cfg.TenantID), strings.ToLower(s.cfg.AppID))
	s.mu.Lock()
	if a, ok := s.appLocked(s.cfg.AppID); ok {
		sp = a.ServicePrincipalID
	}
	s.mu.Unlock()
	return caller{appID: s.cfg.AppID, tenantID: s.cfg.TenantID, spID: sp, delegated: true,
		expires: s.now().Add(s.cfg.AccessTokenLifetime)}
}

func (s *Sim) create(ctx context.Context, req SubscriptionRequest, c caller) (*Subscription, error) {
	if err := s.gate(OpCreate, c, "", req.Resource); err != nil {
		return nil, err
	}
	now := s.now()
	for _, f := range []struct{ name, v string }{
		{"changeType", req.ChangeType}, {"notificationUrl", req.NotificationURL}, {"resource", req.Resource},
	} {
		if strings.TrimSpace(f.v) == "" {
			return nil, badRequest(ErrMissingField, "Invalid request: the '%s' property is required.", f.name)
		}
	}
	if req.ExpirationDateTime.IsZero() {
		return nil, badRequest(ErrMissingField, "Invalid request: the 'expirationDateTime' property is required.")
	}
	kind := classify(req.Resource)
	if kind.name == "resource" {
		return nil, unknownResource(req.Resource)
	}
	types, err := parseChangeTypes(req.ChangeType, kind)
	if err != nil {
		return nil, err
	}
	if err := s.checkURL("notificationUrl", req.NotificationURL); err != nil {
		return nil, err
	}
	if req.LifecycleNotificationURL != "" {
		if err := s.checkURL("lifecycleNotificationUrl", req.LifecycleNotificationURL); err != nil {
			return nil, err
		}
	}
	if n := utf8.RuneCountInString(req.ClientState); n > MaxClientStateLen {
		return nil, badRequest(ErrClientStateTooLong, "Invalid request: clientState is %d characters; the maximum is %d.", n, MaxClientStateLen)
	}
	switch req.LatestSupportedTLSVersion {
	case "":
		req.LatestSupportedTLSVersion = "v1_2"
	case "v1_0", "v1_1", "v1_2", "v1_3":
	default:
		return nil, badRequest(ErrBadRequest, "Invalid request: latestSupportedTlsVersion must be one of v1_0, v1_1, v1_2, v1_3.")
	}
	var cert *x509.Certificate
	if req.IncludeResourceData {
		if kind.noRich {
			return nil, badRequest(ErrUnsupported, "Invalid request: includeResourceData is not supported for resource type %s.", kind.name)
		}
		if req.EncryptionCertificate == "" || req.EncryptionCertificateID == "" {
			return nil, badRequest(ErrCertificateRequired, "Invalid request: encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.")
		}
	}
	if kind.name == "presence" && req.EncryptionCertificate == "" {
		// "Subscriptions on presence require any resource data included in
		// a change notification to be encrypted. Always specify the
		// encryptionCertificate parameter" (seeds, create-subscription).
		return nil, badRequest(ErrCertificateRequired, "Invalid request: presence subscriptions require encryptionCertificate and encryptionCertificateId.")
	}
	if req.EncryptionCertificate != "" {
		if cert, err = parseCertificate(req.EncryptionCertificate); err != nil {
			return nil, err
		}
	}
	if len(req.EncryptionCertificateID) > 128 {
		return nil, badRequest(ErrBadRequest, "Invalid request: encryptionCertificateId is longer than 128 characters.")
	}
	exp, err := s.checkExpiration(req.ExpirationDateTime, now, kind, req.IncludeResourceData)
	if err != nil {
		return nil, err
	}
	if kind.teams && req.LifecycleNotificationURL == "" && exp.Sub(now) > time.Hour {
		return nil, badRequest(ErrUnsupported, "lifecycleNotificationUrl is a required property for subscription creation on this resource when the expirationDateTime value is set to greater than 1 hour.")
	}
	if err := checkPermission("Create", req.Resource, c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	err = s.mailboxLocked(kind, normalizeResource(req.Resource))
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sub := &subscription{
		pub: Subscription{
			ID:                        NewGUID(),
			Resource:                  req.Resource,
			ApplicationID:             c.appID,
			ChangeType:                strings.Join(types, ","),
			ClientState:               req.ClientState,
			NotificationURL:           req.NotificationURL,
			LifecycleNotificationURL:  req.LifecycleNotificationURL,
			ExpirationDateTime:        exp,
			CreatorID:                 c.spID,
			IncludeResourceData:       req.IncludeResourceData,
			LatestSupportedTLSVersion: req.LatestSupportedTLSVersion,
			EncryptionCertificate:     req.EncryptionCertificate,
			EncryptionCertificateID:   req.EncryptionCertificateID,
			NotificationURLAppID:      req.NotificationURLAppID,
			NotificationQueryOptions:  req.NotificationQueryOptions,
			NotificationContentType:   req.NotificationContentType,
		},
		kind:        kind,
		changeTypes: types,
		norm:        normalizeResource(req.Resource),
		cert:        cert,
		tenantID:    c.tenantID,
		authExpires: c.expires,
		authStart:   now,
		rich:        req.IncludeResourceData,
	}
	if err := s.checkConflict(sub); err != nil {
		return nil, err
	}
	if err := s.validateEndpoint(ctx, req.NotificationURL, req.LatestSupportedTLSVersion); err != nil {
		return nil, err
	}
	if req.LifecycleNotificationURL != "" {
		if err := s.validateEndpoint(ctx, req.LifecycleNotificationURL, req.LatestSupportedTLSVersion); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed()
	}
	if err := s.conflictLocked(sub); err != nil {
		return nil, err
	}
	if err := s.quotaLocked(sub); err != nil {
		return nil, err
	}
	s.subs[sub.pub.ID] = sub
	s.saveLocked()
	s.log.Info("subscription created", "subscription", sub.pub)
	out := sub.pub
	return &out, nil
}

func (s *Sim) checkConflict(sub *subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conflictLocked(sub); err != nil {
		return err
	}
	return s.quotaLocked(sub)
}

// unknownResource is Graph's answer to a resource path it cannot resolve.
func unknownResource(resource string) *Error {
	seg := strings.Split(normalizeResource(resource), "/")[0]
	return &Error{Status: http.StatusBadRequest, Code: "BadRequest",
		Message: fmt.Sprintf("Resource not found for the segment '%s'.", clip(seg)), Err: ErrUnknownResource}
}

// conflictLocked reports a 409 when the application already has a
// subscription with the same changeType set and resource.
func (s *Sim) conflictLocked(sub *subscription) error {
	for _, o := range s.subs {
		if o.pub.ApplicationID == sub.pub.ApplicationID && strings.EqualFold(o.tenantID, sub.tenantID) &&
			o.norm == sub.norm && slices.Equal(o.changeTypes, sub.changeTypes) {
			return &Error{
				Status:  http.StatusConflict,
				Code:    "ExtensionError",
				Message: fmt.Sprintf("Operation: Create; Exception: [Status Code: Conflict; Reason: Subscription Id %s already exists for the requested combination]", o.pub.ID),
				Err:     ErrConflict,
			}
		}
	}
	return nil
}

// parseChangeTypes splits, checks and sorts a changeType list.
func parseChangeTypes(list string, kind resourceKind) ([]string, error) {
	var out []string
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimSpace(t)
		switch t {
		case "created", "updated", "deleted":
		default:
			return nil, badRequest(ErrBadRequest, "Invalid 'changeType' attribute: '%s'.", t)
		}
		if !slices.Contains(kind.allowedChangeTypes(), t) {
			return nil, badRequest(ErrUnsupported, "Invalid request: changeType '%s' is not supported for resource type %s; supported: %s.", t, kind.name, strings.Join(kind.allowedChangeTypes(), ","))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	order := map[string]int{"created": 0, "updated": 1, "deleted": 2}
	sort.Slice(out, func(i, j int) bool { return order[out[i]] < order[out[j]] })
	return out, nil
}

func (s *Sim) checkURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return badRequest(ErrBadRequest, "Invalid request: %s must be an absolute URL.", name)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && !s.cfg.RequireHTTPS:
	default:
		return badRequest(ErrBadRequest, "Invalid request: %s must use https.", name)
	}
	return nil
}

// parseCertificate checks an encryptionCertificate: base64 DER, X.509, RSA
// 2048 to 4096 bits.
func parseCertificate(b64 string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, badRequest(ErrBadCertificate, "Invalid request: encryptionCertificate is not valid base64.")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, badRequest(ErrBadCertificate, "Invalid request: encryptionCertificate is not an X.509 certificate.")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, badRequest(ErrBadCertificate, "Invalid request: encryptionCertificate must hold an RSA key.")
	}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 4096 {
		return nil, badRequest(ErrBadCertificate, "Invalid request: encryptionCertificate key is %d bits; 2048 to 4096 are supported.", bits)
	}
	return cert, nil
}

// checkExpiration raises an expiration under 45 minutes to 45 minutes and
// rejects one beyond the resource's maximum lifetime (§8; overridable with
// Config.MaxLifetimes), at the second, in one of the two wordings Graph
// has used (§11, Config.ExpirationWording).
func (s *Sim) checkExpiration(exp, now time.Time, kind resourceKind, rich bool) (time.Time, error) {
	exp = exp.UTC()
	if min := now.Add(MinLifetime); exp.Before(min) {
		exp = min.UTC()
	}
	max := kind.maxLifetimeFor(rich)
	if o, ok := s.cfg.MaxLifetimes[kind.name]; ok && o > 0 {
		max = o
	}
	if exp.Sub(now) <= max {
		return exp, nil
	}
	if s.cfg.ExpirationWording == "timespan" {
		return time.Time{}, badRequest(ErrExpirationTooFar, "Subscription expiration time '%s' is beyond allowed max '%s'.", FormatDateTime(exp), timespan(max))
	}
	e := badRequest(ErrExpirationTooFar, "Subscription expiration can only be %d minutes in the future.", int(max/time.Minute))
	e.Code = "ExtensionError"
	return time.Time{}, e
}

// timespan formats d as .NET prints a TimeSpan: 3.00:00:00.
func timespan(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if days > 0 {
		return fmt.Sprintf("%d.%02d:%02d:%02d", days, h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
}

// Subscription returns the subscription with id.
func (s *Sim) Subscription(id string) (*Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return nil, notFound(id)
	}
	out := sub.pub
	return &out, nil
}

// Subscriptions returns all subscriptions, oldest expiration first.
func (s *Sim) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listLocked("")
}

func (s *Sim) listLocked(appID string) []Subscription {
	out := make([]Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		if appID == "" || sub.pub.ApplicationID == appID {
			out = append(out, sub.pub)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ExpirationDateTime.Equal(out[j].ExpirationDateTime) {
			return out[i].ExpirationDateTime.Before(out[j].ExpirationDateTime)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func notFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "ResourceNotFound", Message: fmt.Sprintf("The object was not found: subscription %s.", id), Err: ErrNotFound}
}

// UpdateSubscription renews (and reauthorizes) a subscription or changes
// its notificationUrl or certificate, as PATCH /subscriptions/{id}. A new
// notificationUrl is validated first.
func (s *Sim) UpdateSubscription(ctx context.Context, id string, u SubscriptionUpdate) (*Subscription, error) {
	return s.update(ctx, id, u, s.goCaller())
}

func (s *Sim) update(ctx context.Context, id string, u SubscriptionUpdate, c caller) (*Subscription, error) {
	now := s.now()
	s.mu.Lock()
	sub, ok := s.subs[id]
	var cur Subscription
	var kind resourceKind
	if ok {
		cur, kind = sub.pub, sub.kind
	}
	s.mu.Unlock()
	if !ok {
		return nil, notFound(id)
	}
	if err := s.gate(OpUpdate, c, id, cur.Resource); err != nil {
		return nil, err
	}
	if err := checkPermission("Update", cur.Resource, c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	err := s.mailboxLocked(kind, normalizeResource(cur.Resource))
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var exp time.Time
	if u.ExpirationDateTime != nil {
		var err error
		if exp, err = s.checkExpiration(*u.ExpirationDateTime, now, kind, cur.IncludeResourceData); err != nil {
			return nil, err
		}
	}
	var cert *x509.Certificate
	if u.EncryptionCertificate != nil {
		if *u.EncryptionCertificate == "" && cur.IncludeResourceData {
			return nil, badRequest(ErrCertificateRequired, "Invalid request: encryptionCertificate is required when includeResourceData is true.")
		}
		if *u.EncryptionCertificate != "" {
			var err error
			if cert, err = parseCertificate(*u.EncryptionCertificate); err != nil {
				return nil, err
			}
		}
	}
	if u.EncryptionCertificateID != nil && *u.EncryptionCertificateID == "" && cur.IncludeResourceData {
		return nil, badRequest(ErrCertificateRequired, "Invalid request: encryptionCertificateId is required when includeResourceData is true.")
	}
	if u.NotificationURL != nil && *u.NotificationURL != cur.NotificationURL {
		if err := s.checkURL("notificationUrl", *u.NotificationURL); err != nil {
			return nil, err
		}
		if err := s.validateEndpoint(ctx, *u.NotificationURL, cur.LatestSupportedTLSVersion); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok = s.subs[id]
	if !ok {
		return nil, notFound(id)
	}
	if u.ExpirationDateTime != nil {
		sub.pub.ExpirationDateTime = exp
		sub.lastChallenge = time.Time{}
	}
	if u.NotificationURL != nil {
		sub.pub.NotificationURL = *u.NotificationURL
	}
	if u.EncryptionCertificate != nil {
		sub.pub.EncryptionCertificate, sub.cert = *u.EncryptionCertificate, cert
	}
	if u.EncryptionCertificateID != nil {
		sub.pub.EncryptionCertificateID = *u.EncryptionCertificateID
	}
	sub.authExpires, sub.authStart, sub.revokedAt = c.expires, now, time.Time{}
	s.saveLocked()
	s.log.Info("subscription updated", "subscription", sub.pub)
	out := sub.pub
	return &out, nil
}

// DeleteSubscription deletes a subscription, as DELETE /subscriptions/{id}.
// No lifecycle notification is sent (an admin's removal,
// [Sim.RemoveSubscription], sends one).
func (s *Sim) DeleteSubscription(ctx context.Context, id string) error {
	return s.deleteSub(id, s.goCaller())
}

func (s *Sim) deleteSub(id string, c caller) error {
	if err := s.gateID(OpDelete, c, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; !ok {
		return notFound(id)
	}
	delete(s.subs, id)
	s.saveLocked()
	s.log.Info("subscription deleted", "subscription_id", id)
	return nil
}

// gateID is gate for an operation on subscription id, with its resource
// ("" when no such subscription exists).
func (s *Sim) gateID(op string, c caller, id string) error {
	res := ""
	if sub, err := s.Subscription(id); err == nil {
		res = sub.Resource
	}
	return s.gate(op, c, id, res)
}

// Reauthorize reauthorizes a subscription without extending its
// expiration, as POST /subscriptions/{id}/reauthorize.
func (s *Sim) Reauthorize(ctx context.Context, id string) error {
	return s.reauthorize(id, s.goCaller())
}

func (s *Sim) reauthorize(id string, c caller) error {
	if err := s.gateID(OpReauthorize, c, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[id]
	if !ok {
		return notFound(id)
	}
	if err := checkPermission("Reauthorize", sub.pub.Resource, c); err != nil {
		return err
	}
	if err := s.mailboxLocked(sub.kind, sub.norm); err != nil {
		return err
	}
	sub.authExpires, sub.authStart, sub.revokedAt = c.expires, s.nowLocked(), time.Time{}
	s.saveLocked()
	sub.lastChallenge = time.Time{}
	return nil
}
