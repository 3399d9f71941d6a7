package graphsim

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAPIBody caps request bodies of the Graph and admin APIs.
const maxAPIBody = 1 << 20

// Handler returns the simulator's HTTP API:
//
//   - Microsoft Graph subscriptions, under /v1.0 and /beta:
//     POST/GET /subscriptions, GET/PATCH/DELETE /subscriptions/{id},
//     POST /subscriptions/{id}/reauthorize; all need a bearer token.
//   - Identity: POST /{tenant}/oauth2/v2.0/token (client credentials with
//     a secret or a client assertion), GET /{tenant}/discovery/instance,
//     GET /{tenant}/v2.0/.well-known/openid-configuration,
//     GET /{tenant}/.well-known/openid-configuration,
//     GET /{tenant}/discovery/v2.0/keys and /{tenant}/discovery/keys (JWKS).
//   - Admin, without authentication: POST /_sim/changes (a
//     [ChangeRequest]; add "items": true to the query for the items),
//     POST /_sim/lifecycle ({"subscriptionId","event"}), POST /_sim/sweep,
//     POST /_sim/advance ([AdvanceRequest]), GET /_sim/now,
//     POST /_sim/wait?timeout=30s, GET /_sim/deliveries,
//     GET /_sim/subscriptions, DELETE /_sim/subscriptions/{id} (an admin's
//     removal), POST and DELETE /_sim/faults ([Fault]), GET /_sim/calls,
//     POST /_sim/consent ([ConsentRequest]), POST /_sim/mailboxes
//     ([MailboxRequest]), POST /_sim/rotate-key, and Config.AdminHandlers.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, v := range []string{"v1.0", "beta"} {
		mux.HandleFunc("POST /"+v+"/subscriptions", s.authed(s.apiCreate))
		mux.HandleFunc("GET /"+v+"/subscriptions", s.authed(s.apiList))
		mux.HandleFunc("GET /"+v+"/subscriptions/{id}", s.authed(s.apiGet))
		mux.HandleFunc("PATCH /"+v+"/subscriptions/{id}", s.authed(s.apiUpdate))
		mux.HandleFunc("DELETE /"+v+"/subscriptions/{id}", s.authed(s.apiDelete))
		mux.HandleFunc("POST /"+v+"/subscriptions/{id}/reauthorize", s.authed(s.apiReauthorize))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeGraphError(w, r, &Error{Status: http.StatusNotFound, Code: "BadRequest", Message: "Resource not found for the segment '" + r.URL.Path + "'.", Err: ErrNotFound})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenIDConfig)
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.handleOpenIDConfig)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleJWKS)
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.handleJWKS)
	mux.HandleFunc("GET /{tenant}/discovery/instance", s.handleInstanceDiscovery)

	mux.HandleFunc("POST /_sim/changes", s.adminChanges)
	mux.HandleFunc("POST /_sim/lifecycle", s.adminLifecycle)
	mux.HandleFunc("POST /_sim/sweep", s.adminSweep)
	mux.HandleFunc("POST /_sim/wait", s.adminWait)
	mux.HandleFunc("GET /_sim/deliveries", s.adminDeliveries)
	mux.HandleFunc("GET /_sim/subscriptions", s.adminSubscriptions)
	mux.HandleFunc("POST /_sim/rotate-key", s.adminRotate)
	mux.HandleFunc("POST /_sim/advance", s.adminAdvance)
	mux.HandleFunc("GET /_sim/now", s.adminNow)
	mux.HandleFunc("POST /_sim/faults", s.adminFault)
	mux.HandleFunc("DELETE /_sim/faults", s.adminClearFaults)
	mux.HandleFunc("GET /_sim/calls", s.adminCalls)
	mux.HandleFunc("POST /_sim/consent", s.adminConsent)
	mux.HandleFunc("POST /_sim/mailboxes", s.adminMailbox)
	mux.HandleFunc("DELETE /_sim/subscriptions/{id}", s.adminRemove)
	for pattern, h := range s.cfg.AdminHandlers {
		mux.Handle(pattern, h)
	}
	return mux
}

type authedHandler func(w http.ResponseWriter, r *http.Request, c caller)

func (s *Sim) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+requestBase(r)+`/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
			writeGraphError(w, r, err)
			return
		}
		h(w, r, c)
	}
}

// writeGraphError writes Graph's error body:
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
func writeGraphError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = &Error{Status: http.StatusInternalServerError, Code: "InternalServerError", Message: "graphsim failed to process the request."}
	}
	rid := NewGUID()
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = rid
	}
	w.Header().Set("request-id", rid)
	w.Header().Set("client-request-id", crid)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterHeader(e.RetryAfter))
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]any{
		"code":    e.Code,
		"message": e.Message,
		"innerError": map[string]string{
			"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
			"request-id":        rid,
			"client-request-id": crid,
		},
	}})
}

// decoded reads the JSON body of r into a T; when the body does not
// decode, it answers Graph's error and reports false.
func decoded[T any](w http.ResponseWriter, r *http.Request) (T, bool) {
	var v T
	if err := decodeBody(w, r, &v); err != nil {
		writeGraphError(w, r, err)
		return v, false
	}
	return v, true
}

// answer writes status with no body, or Graph's error when err is not nil.
func answer(w http.ResponseWriter, r *http.Request, status int, err error) {
	if err != nil {
		writeGraphError(w, r, err)
		return
	}
	w.WriteHeader(status)
}

// decodeBody decodes a JSON request body into v, bounded. A gzip body
// (Content-Encoding: gzip, as Microsoft's Go SDK sends by default, §11) is
// decompressed and bounded after decompression; any other encoding is
// answered 415, on which that SDK retries uncompressed.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	tooLarge := &Error{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge", Message: "The request body is too large.", Err: ErrBadRequest}
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxAPIBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return badRequest(ErrBadRequest, "Unable to read JSON request payload: the gzip body is corrupt.")
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxAPIBody+1)
	default:
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "UnsupportedMediaType",
			Message: fmt.Sprintf("Content-Encoding '%s' is not supported; send gzip or an uncompressed body.", clip(enc)), Err: ErrUnsupportedEncoding}
	}
	b, err := io.ReadAll(body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge
		}
		return badRequest(ErrBadRequest, "Unable to read JSON request payload: the gzip body is corrupt.")
	}
	if len(b) > maxAPIBody {
		return tooLarge
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest(ErrBadRequest, "Unable to read JSON request payload: %s", jsonErr(err))
	}
	return nil
}

// jsonErr describes a JSON error without echoing input values.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10) + "."
	case errors.As(err, &te):
		return "property '" + te.Field + "' has the wrong type."
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return "a date-time property is not in ISO 8601 format."
	}
	return "malformed JSON."
}

func (s *Sim) entity(r *http.Request, sub *Subscription) map[string]any {
	b, _ := json.Marshal(sub)
	var m map[string]any
	json.Unmarshal(b, &m)
	m["@odata.context"] = requestBase(r) + "/" + apiVersion(r) + "/$metadata#subscriptions/$entity"
	return m
}

func apiVersion(r *http.Request) string {
	if len(r.URL.Path) > 5 && r.URL.Path[:6] == "/beta/" {
		return "beta"
	}
	return "v1.0"
}

func (s *Sim) apiCreate(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := decoded[SubscriptionRequest](w, r)
	if !ok {
		return
	}
	sub, err := s.create(r.Context(), req, c)
	if err != nil {
		writeGraphError(w, r, err)
		return
	}
	w.Header().Set("Location", requestBase(r)+"/"+apiVersion(r)+"/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, s.entity(r, sub))
}

// listPageSize is how many subscriptions one page of GET /subscriptions
// holds; more are reached through @odata.nextLink.
const listPageSize = 100

// apiList is GET /subscriptions (§8): the calling app's subscriptions,
// paged with @odata.nextLink ($skiptoken). Graph's list supports no OData
// query options; graphsim answers them 400 rather than ignoring them, so a
// client relying on $top or $select finds out here.
func (s *Sim) apiList(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.gate(OpList, c, "", ""); err != nil {
		writeGraphError(w, r, err)
		return
	}
	skip := 0
	for k, v := range r.URL.Query() {
		switch {
		case k == "$skiptoken":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				writeGraphError(w, r, badRequest(ErrBadRequest, "Invalid $skiptoken."))
				return
			}
			skip = n
		case strings.HasPrefix(k, "$"):
			writeGraphError(w, r, &Error{Status: http.StatusBadRequest, Code: "BadRequest",
				Message: fmt.Sprintf("The query parameter '%s' is not supported on subscriptions.", clip(k)), Err: ErrBadRequest})
			return
		}
	}
	s.mu.Lock()
	subs := s.listLocked(c.appID)
	s.mu.Unlock()
	page := subs[min(skip, len(subs)):]
	next := ""
	if len(page) > listPageSize {
		page = page[:listPageSize]
		next = requestBase(r) + "/" + apiVersion(r) + "/subscriptions?$skiptoken=" + strconv.Itoa(skip+listPageSize)
	}
	vals := make([]map[string]any, len(page))
	for i := range page {
		vals[i] = s.entity(r, &page[i])
		delete(vals[i], "@odata.context")
	}
	out := map[string]any{
		"@odata.context": requestBase(r) + "/" + apiVersion(r) + "/$metadata#subscriptions",
		"value":          vals,
	}
	if next != "" {
		out["@odata.nextLink"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// owned returns the subscription of the request's path if the calling app
// created it. Another app's subscription is not found, as on Graph, where
// an app sees only its own.
func (s *Sim) owned(r *http.Request, c caller) (*Subscription, error) {
	id := r.PathValue("id")
	sub, err := s.Subscription(id)
	if err != nil {
		return nil, err
	}
	if sub.ApplicationID != c.appID {
		return nil, notFound(id)
	}
	return sub, nil
}

// answerEntity writes sub as Graph's subscription entity (200), or
// Graph's error when err is not nil.
func (s *Sim) answerEntity(w http.ResponseWriter, r *http.Request, sub *Subscription, err error) {
	if err != nil {
		writeGraphError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.entity(r, sub))
}

func (s *Sim) apiGet(w http.ResponseWriter, r *http.Request, c caller) {
	sub, err := s.owned(r, c)
	if err == nil {
		err = s.gate(OpGet, c, sub.ID, sub.Resource)
	}
	s.answerEntity(w, r, sub, err)
}

func (s *Sim) apiUpdate(w http.ResponseWriter, r *http.Request, c caller) {
	if _, err := s.owned(r, c); err != nil {
		writeGraphError(w, r, err)
		return
	}
	raw, ok := decoded[map[string]json.RawMessage](w, r)
	if !ok {
		return
	}
	var u SubscriptionUpdate
	for k, v := range raw {
		var dst any
		switch k {
		case "expirationDateTime":
			dst = &u.ExpirationDateTime
		case "notificationUrl":
			dst = &u.NotificationURL
		case "encryptionCertificate":
			dst = &u.EncryptionCertificate
		case "encryptionCertificateId":
			dst = &u.EncryptionCertificateID
		case "@odata.type":
			continue
		default:
			writeGraphError(w, r, badRequest(ErrBadRequest, "Invalid request: property '%s' cannot be updated.", k))
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			writeGraphError(w, r, badRequest(ErrBadRequest, "Unable to read JSON request payload: property '%s': %s", k, jsonErr(err)))
			return
		}
	}
	sub, err := s.update(r.Context(), r.PathValue("id"), u, c)
	s.answerEntity(w, r, sub, err)
}

func (s *Sim) apiDelete(w http.ResponseWriter, r *http.Request, c caller) {
	if _, err := s.owned(r, c); err != nil {
		writeGraphError(w, r, err)
		return
	}
	answer(w, r, http.StatusNoContent, s.deleteSub(r.PathValue("id"), c))
}

func (s *Sim) apiReauthorize(w http.ResponseWriter, r *http.Request, c caller) {
	if _, err := s.owned(r, c); err != nil {
		writeGraphError(w, r, err)
		return
	}
	answer(w, r, http.StatusNoContent, s.reauthorize(r.PathValue("id"), c))
}

// LifecycleRequest is the body of POST /_sim/lifecycle.
type LifecycleRequest struct {
	SubscriptionID string `json:"subscriptionId"`
	Event          string `json:"event"`
}

func (s *Sim) adminChanges(w http.ResponseWriter, r *http.Request) {
	req, ok := decoded[ChangeRequest](w, r)
	if !ok {
		return
	}
	rep, err := s.Change(r.Context(), req)
	if err != nil {
		writeGraphError(w, r, err)
		return
	}
	if r.URL.Query().Get("items") != "true" {
		rep.Items = nil
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Sim) adminLifecycle(w http.ResponseWriter, r *http.Request) {
	req, ok := decoded[LifecycleRequest](w, r)
	if !ok {
		return
	}
	answer(w, r, http.StatusAccepted, s.Lifecycle(r.Context(), req.SubscriptionID, req.Event))
}

func (s *Sim) adminSweep(w http.ResponseWriter, r *http.Request) {
	answer(w, r, http.StatusNoContent, s.Sweep(r.Context()))
}

func (s *Sim) adminWait(w http.ResponseWriter, r *http.Request) {
	timeout := 30 * time.Second
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeGraphError(w, r, badRequest(ErrBadRequest, "timeout must be a positive duration such as 30s."))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := s.Wait(ctx); err != nil {
		writeGraphError(w, r, &Error{Status: http.StatusGatewayTimeout, Code: "Timeout", Message: fmt.Sprintf("deliveries still pending after %s.", timeout), Err: err})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DeliveriesReport is the body of GET /_sim/deliveries.
type DeliveriesReport struct {
	Deliveries []Delivery `json:"deliveries"`
	Endpoints  []Endpoint `json:"endpoints"`
}

func (s *Sim) adminDeliveries(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, DeliveriesReport{Deliveries: s.Deliveries(), Endpoints: s.Endpoints()})
}

func (s *Sim) adminSubscriptions(w http.ResponseWriter, r *http.Request) {
	subs := s.Subscriptions()
	writeJSON(w, http.StatusOK, map[string]any{"value": subs})
}

func (s *Sim) adminRotate(w http.ResponseWriter, r *http.Request) {
	answer(w, r, http.StatusNoContent, s.RotateKey())
}

// AdvanceRequest is the body of POST /_sim/advance.
type AdvanceRequest struct {
	// By is how far to move the clock: a Go duration ("90m", "36h") or
	// days ("30d").
	By string `json:"by"`
}

// ClockReport answers POST /_sim/advance and GET /_sim/now.
type ClockReport struct {
	// Now is the simulated time.
	Now time.Time `json:"now"`
}

func (s *Sim) adminAdvance(w http.ResponseWriter, r *http.Request) {
	var req AdvanceRequest
	if v := r.URL.Query().Get("by"); v != "" {
		req.By = v
	} else if err := decodeBody(w, r, &req); err != nil {
		writeGraphError(w, r, err)
		return
	}
	d, err := parseAdvance(req.By)
	if err != nil {
		writeGraphError(w, r, badRequest(ErrBadRequest, "by must be a duration such as 36h or a number of days such as 30d."))
		return
	}
	if err := s.Advance(r.Context(), d); err != nil {
		writeGraphError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ClockReport{Now: s.now().UTC()})
}

func (s *Sim) adminNow(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, ClockReport{Now: s.now().UTC()})
}

func (s *Sim) adminFault(w http.ResponseWriter, r *http.Request) {
	f, ok := decoded[Fault](w, r)
	if !ok {
		return
	}
	answer(w, r, http.StatusNoContent, s.InjectFault(f))
}

func (s *Sim) adminClearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) adminCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.APICalls())
}

// ConsentRequest is the body of POST /_sim/consent.
type ConsentRequest struct {
	AppID   string `json:"appId"`
	Revoked bool   `json:"revoked"`
}

func (s *Sim) adminConsent(w http.ResponseWriter, r *http.Request) {
	req, ok := decoded[ConsentRequest](w, r)
	if !ok {
		return
	}
	var err error
	if req.Revoked {
		err = s.RevokeConsent(r.Context(), req.AppID)
	} else {
		err = s.RestoreConsent(req.AppID)
	}
	answer(w, r, http.StatusNoContent, err)
}

// MailboxRequest is the body of POST /_sim/mailboxes.
type MailboxRequest struct {
	User     string `json:"user"`
	Disabled bool   `json:"disabled"`
}

func (s *Sim) adminMailbox(w http.ResponseWriter, r *http.Request) {
	req, ok := decoded[MailboxRequest](w, r)
	if !ok {
		return
	}
	if req.User == "" {
		writeGraphError(w, r, badRequest(ErrMissingField, "user is required."))
		return
	}
	s.DisableMailbox(req.User, req.Disabled)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) adminRemove(w http.ResponseWriter, r *http.Request) {
	answer(w, r, http.StatusNoContent, s.RemoveSubscription(r.Context(), r.PathValue("id")))
}
