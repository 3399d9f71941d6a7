package graphsim_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

func testKey(t testing.TB) decrypt.Key {
	t.Helper()
	k, err := decrypt.GenerateKey(2048, "graphsim-test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k.ID = "test-key-1"
	return k
}

func TestCreateSubscriptionRules(t *testing.T) {
	s := newSim(t, fastConfig())
	good := newEndpoint(t)
	forbidden := newEndpoint(t)
	forbidden.setHandshake(func(w http.ResponseWriter, r *http.Request, token string) { w.WriteHeader(http.StatusForbidden) })
	wrongBody := newEndpoint(t)
	wrongBody.setHandshake(func(w http.ResponseWriter, r *http.Request, token string) { w.Write([]byte("nope")) })
	encoded := newEndpoint(t)
	encoded.setHandshake(func(w http.ResponseWriter, r *http.Request, token string) {
		q := r.URL.RawQuery
		w.Write([]byte(q[strings.Index(q, "=")+1:])) // still URL-encoded: wrong
	})
	key := testKey(t)
	token := accessToken(t, s, "11111111-2222-3333-4444-555555555555")

	tests := []struct {
		name        string
		mutate      func(*graphsim.SubscriptionRequest)
		wantStatus  int
		wantErr     error
		wantCode    string
		wantMessage string
	}{
		{name: "valid", mutate: func(r *graphsim.SubscriptionRequest) {}, wantStatus: 201},
		{name: "no changeType", mutate: func(r *graphsim.SubscriptionRequest) { r.ChangeType = "" }, wantStatus: 400, wantErr: graphsim.ErrMissingField, wantMessage: "'changeType'"},
		{name: "no notificationUrl", mutate: func(r *graphsim.SubscriptionRequest) { r.NotificationURL = "" }, wantStatus: 400, wantErr: graphsim.ErrMissingField, wantMessage: "'notificationUrl'"},
		{name: "no resource", mutate: func(r *graphsim.SubscriptionRequest) { r.Resource = "" }, wantStatus: 400, wantErr: graphsim.ErrMissingField, wantMessage: "'resource'"},
		{name: "no expiration", mutate: func(r *graphsim.SubscriptionRequest) { r.ExpirationDateTime = time.Time{} }, wantStatus: 400, wantErr: graphsim.ErrMissingField, wantMessage: "'expirationDateTime'"},
		{name: "unknown changeType", mutate: func(r *graphsim.SubscriptionRequest) { r.ChangeType = "created,moved" }, wantStatus: 400, wantErr: graphsim.ErrBadRequest},
		{name: "user supports no created", mutate: func(r *graphsim.SubscriptionRequest) { r.Resource = "users"; r.ChangeType = "created" }, wantStatus: 400, wantErr: graphsim.ErrUnsupported},
		{name: "driveItem root updated only", mutate: func(r *graphsim.SubscriptionRequest) { r.Resource = "users/u1/drive/root"; r.ChangeType = "deleted" }, wantStatus: 400, wantErr: graphsim.ErrUnsupported},
		{name: "relative notificationUrl", mutate: func(r *graphsim.SubscriptionRequest) { r.NotificationURL = "/notify" }, wantStatus: 400, wantErr: graphsim.ErrBadRequest},
		{name: "rich without certificate", mutate: func(r *graphsim.SubscriptionRequest) { r.IncludeResourceData = true }, wantStatus: 400, wantErr: graphsim.ErrCertificateRequired},
		{name: "rich without certificate id", mutate: func(r *graphsim.SubscriptionRequest) {
			r.IncludeResourceData = true
			r.EncryptionCertificate = key.EncryptionCertificate()
		}, wantStatus: 400, wantErr: graphsim.ErrCertificateRequired},
		{name: "rich with garbage certificate", mutate: func(r *graphsim.SubscriptionRequest) {
			r.IncludeResourceData = true
			r.EncryptionCertificate, r.EncryptionCertificateID = "bm90IGEgY2VydA==", "x"
		}, wantStatus: 400, wantErr: graphsim.ErrBadCertificate},
		{name: "rich on driveItem", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.ChangeType, r.IncludeResourceData = "users/u1/drive/root", "updated", true
			r.EncryptionCertificate, r.EncryptionCertificateID = key.EncryptionCertificate(), key.ID
		}, wantStatus: 400, wantErr: graphsim.ErrUnsupported},
		{name: "rich valid", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.IncludeResourceData = "users/u1/events", true
			r.EncryptionCertificate, r.EncryptionCertificateID = key.EncryptionCertificate(), key.ID
		}, wantStatus: 201},
		{name: "rich outlook beyond a day", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.IncludeResourceData = "users/u1/contacts", true
			r.EncryptionCertificate, r.EncryptionCertificateID = key.EncryptionCertificate(), key.ID
			r.ExpirationDateTime = time.Now().Add(1441 * time.Minute)
		}, wantStatus: 400, wantErr: graphsim.ErrExpirationTooFar, wantMessage: "1440 minutes"},
		{name: "expiration beyond max", mutate: func(r *graphsim.SubscriptionRequest) {
			r.ExpirationDateTime = time.Now().Add(10081 * time.Minute)
		}, wantStatus: 400, wantErr: graphsim.ErrExpirationTooFar, wantMessage: "Subscription expiration can only be 10080 minutes in the future."},
		{name: "clientState 128", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource = "users/u1/mailFolders('Inbox')/messages"
			r.ClientState = strings.Repeat("é", 128)
		}, wantStatus: 201},
		{name: "clientState 129", mutate: func(r *graphsim.SubscriptionRequest) { r.ClientState = strings.Repeat("a", 129) }, wantStatus: 400, wantErr: graphsim.ErrClientStateTooLong},
		{name: "teams beyond an hour without lifecycle url", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource = "teams/getAllMessages"
		}, wantStatus: 400, wantErr: graphsim.ErrUnsupported, wantMessage: "lifecycleNotificationUrl"},
		{name: "handshake forbidden", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.NotificationURL = "users/a/messages", forbidden.URL
		}, wantStatus: 400, wantErr: graphsim.ErrValidationFailed, wantCode: "ValidationError", wantMessage: "Subscription validation request failed. HTTP status code is 'Forbidden'."},
		{name: "handshake wrong body", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.NotificationURL = "users/b/messages", wrongBody.URL
		}, wantStatus: 400, wantErr: graphsim.ErrValidationFailed, wantMessage: "Response must exactly match validationToken query parameter."},
		{name: "handshake echoes encoded token", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.NotificationURL = "users/c/messages", encoded.URL
		}, wantStatus: 400, wantErr: graphsim.ErrValidationFailed, wantMessage: "must exactly match"},
		{name: "lifecycle url handshake fails", mutate: func(r *graphsim.SubscriptionRequest) {
			r.Resource, r.LifecycleNotificationURL = "users/d/messages", forbidden.URL
		}, wantStatus: 400, wantErr: graphsim.ErrValidationFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Over HTTP, for the status and Graph's error body.
			req := subRequest(good, "me/messages")
			req.Resource = "users/" + graphsim.NewGUID() + "/messages"
			tc.mutate(&req)
			var ge graphError
			var created graphsim.Subscription
			var out any = &ge
			if tc.wantStatus == 201 {
				out = &created
			}
			status := call(t, "POST", s.GraphURL()+"/subscriptions", token, req, out)
			if status != tc.wantStatus {
				t.Fatalf("HTTP status %d, want %d (%+v)", status, tc.wantStatus, ge.Error)
			}
			if tc.wantStatus != 201 {
				if ge.Error.Code == "" || ge.Error.InnerError["request-id"] == "" || ge.Error.InnerError["date"] == "" {
					t.Errorf("error body not in Graph's shape: %+v", ge)
				}
				if tc.wantCode != "" && ge.Error.Code != tc.wantCode {
					t.Errorf("code %q, want %q", ge.Error.Code, tc.wantCode)
				}
				if !strings.Contains(ge.Error.Message, tc.wantMessage) {
					t.Errorf("message %q, want it to contain %q", ge.Error.Message, tc.wantMessage)
				}
				if req.ClientState != "" && strings.Contains(ge.Error.Message, req.ClientState) {
					t.Error("error message leaks the clientState")
				}
			} else if created.ID == "" || created.ApplicationID != "11111111-2222-3333-4444-555555555555" {
				t.Errorf("created %+v", created)
			}
			// Through the Go API (different resource to avoid the 409), for errors.Is.
			req.Resource = strings.Replace(req.Resource, "users/", "users/go-", 1)
			if req.Resource == "users/u1/mailFolders('Inbox')/messages" || !strings.Contains(req.Resource, "go-") {
				return // no per-user resource: the HTTP case already covered it
			}
			_, err := s.CreateSubscription(t.Context(), req)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("CreateSubscription: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CreateSubscription error %v, want %v", err, tc.wantErr)
			}
			if got := graphsim.StatusOf(err); got != tc.wantStatus {
				t.Errorf("StatusOf = %d, want %d", got, tc.wantStatus)
			}
		})
	}
}

func TestDuplicateSubscriptionIs409(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	token := accessToken(t, s, graphsim.DefaultAppID)
	req := subRequest(e, "users/u1/messages")
	var first graphsim.Subscription
	if st := call(t, "POST", s.GraphURL()+"/subscriptions", token, req, &first); st != 201 {
		t.Fatalf("first create: %d", st)
	}
	// Same combination, written differently: 409 with Graph's message.
	req.Resource = "/Users/U1/Messages"
	req.ChangeType = "updated,created"
	var ge graphError
	if st := call(t, "POST", s.GraphURL()+"/subscriptions", token, req, &ge); st != http.StatusConflict {
		t.Fatalf("duplicate: status %d, want 409", st)
	}
	want := "Subscription Id " + first.ID + " already exists for the requested combination"
	if ge.Error.Code != "ExtensionError" || !strings.Contains(ge.Error.Message, want) {
		t.Errorf("409 body %+v, want code ExtensionError and %q", ge.Error, want)
	}
	_, err := s.CreateSubscription(t.Context(), req)
	if !errors.Is(err, graphsim.ErrConflict) {
		t.Errorf("Go API: %v, want ErrConflict", err)
	}
	// A different changeType set is a different combination.
	req.ChangeType = "deleted"
	if _, err := s.CreateSubscription(t.Context(), req); err != nil {
		t.Errorf("other changeType: %v", err)
	}
}

func TestMaximumLifetimeTable(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	key := testKey(t)
	tests := []struct {
		resource string
		rich     bool
		maxMin   int
	}{
		{"me/messages", false, 10080},
		{"users/u1/mailFolders('Inbox')/messages", true, 1440},
		{"users/{id}/events", false, 10080},
		{"users/{id}/contacts", true, 1440},
		{"teams/{id}/channels/{id}/messages", true, 4320},
		{"chats/{id}/messages", false, 4320},
		{"chats", false, 4320},
		{"teams/{id}/members", false, 4320},
		{"communications/presences/{id}", true, 60},
		{"users/{id}/presence", true, 60}, // presence requires a certificate
		{"communications/callRecords", false, 4230},
		{"communications/onlineMeetings/{id}", false, 4320},
		{"teams/{id}/schedule/shifts", false, 360},
		{"groups/{id}/conversations", false, 4230},
		{"users/u1/drive/root", false, 42300},
		{"sites/{id}/lists/{id}", false, 42300},
		{"users", false, 41760},
		{"groups", false, 41760},
		{"security/alerts_v2", false, 43200},
		{"me/todo/lists/{id}/tasks", false, 4230},
		{"print/printers/{id}/jobs", false, 4230},
		{"copilot/users/{id}/interactionHistory/getAllEnterpriseInteractions", false, 4320},
	}
	for _, tc := range tests {
		t.Run(tc.resource, func(t *testing.T) {
			resource := strings.ReplaceAll(tc.resource, "{id}", graphsim.NewGUID())
			req := lifecycleRequest(e, resource)
			switch {
			case strings.HasPrefix(resource, "users") && !strings.Contains(resource, "/") || resource == "groups":
				req.ChangeType = "updated"
			case strings.Contains(resource, "drive") || strings.Contains(resource, "lists"):
				req.ChangeType = "updated"
			}
			if tc.rich {
				req.IncludeResourceData = true
				req.EncryptionCertificate, req.EncryptionCertificateID = key.EncryptionCertificate(), key.ID
			}
			req.ExpirationDateTime = time.Now().Add(time.Duration(tc.maxMin+2) * time.Minute)
			_, err := s.CreateSubscription(t.Context(), req)
			if !errors.Is(err, graphsim.ErrExpirationTooFar) || !strings.Contains(err.Error(), " "+strconv.Itoa(tc.maxMin)+" minutes") {
				t.Fatalf("max+2 min: %v, want ErrExpirationTooFar naming %d minutes", err, tc.maxMin)
			}
			req.ExpirationDateTime = time.Now().Add(time.Duration(tc.maxMin)*time.Minute - time.Minute)
			sub, err := s.CreateSubscription(t.Context(), req)
			if err != nil {
				t.Fatalf("max-1 min: %v", err)
			}
			if !sub.ExpirationDateTime.Equal(req.ExpirationDateTime.UTC()) && tc.maxMin > 45 {
				t.Errorf("expiration %v, want %v", sub.ExpirationDateTime, req.ExpirationDateTime)
			}
		})
	}
}

// TestUnknownResourceIsRejected: a path Graph cannot resolve is a 400
// (it was accepted with 4,230 minutes before issue 11).
func TestUnknownResourceIsRejected(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	_, err := s.CreateSubscription(t.Context(), subRequest(e, "something/else"))
	if !errors.Is(err, graphsim.ErrUnknownResource) || graphsim.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "segment 'something'") {
		t.Fatalf("unknown resource: %v, want 400 ErrUnknownResource", err)
	}
}

func TestShortExpirationIsRaisedTo45Minutes(t *testing.T) {
	s, clk := newClockedSim(t)
	e := newEndpoint(t)
	req := subRequest(e, "users/u1/messages")
	req.ExpirationDateTime = clk.Now().Add(5 * time.Minute)
	sub := create(t, s, req)
	if got := sub.ExpirationDateTime.Sub(clk.Now()); got != graphsim.MinLifetime {
		t.Errorf("lifetime %v, want %v", got, graphsim.MinLifetime)
	}
}

func TestRequireHTTPSRejectsHTTP(t *testing.T) {
	cfg := fastConfig()
	cfg.RequireHTTPS = true
	s := newSim(t, cfg)
	_, err := s.CreateSubscription(t.Context(), subRequest(newEndpoint(t), "me/messages"))
	if !errors.Is(err, graphsim.ErrBadRequest) || graphsim.StatusOf(err) != 400 {
		t.Fatalf("http URL with RequireHTTPS: %v", err)
	}
}

func TestHandshakeTimesOut(t *testing.T) {
	cfg := fastConfig()
	cfg.HandshakeTimeout = 200 * time.Millisecond
	s := newSim(t, cfg)
	e := newEndpoint(t)
	e.setHandshake(func(w http.ResponseWriter, r *http.Request, token string) { <-r.Context().Done() })
	_, err := s.CreateSubscription(t.Context(), subRequest(e, "users/u1/messages"))
	if !errors.Is(err, graphsim.ErrValidationFailed) || !strings.Contains(err.Error(), "Subscription validation request timed out.") {
		t.Fatalf("slow handshake: %v", err)
	}
}

func TestHandshakeOnBothURLsAsGraphSendsIt(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	req := subRequest(e, "users/u1/messages")
	req.LifecycleNotificationURL = req.NotificationURL // same URL: two requests
	if _, err := s.CreateSubscription(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	hs := e.handshakeLog()
	if len(hs) != 2 {
		t.Fatalf("%d validation requests, want 2", len(hs))
	}
	for _, h := range hs {
		if !strings.HasPrefix(h.RawQuery, "tenant=contoso&validationToken=Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+") {
			t.Errorf("raw query %q: want the URL's own query kept, form encoding and lower-case escapes", h.RawQuery)
		}
		if !strings.HasPrefix(h.Token, graphsim.ValidationTokenPrefix) {
			t.Errorf("decoded token %q", h.Token)
		}
		if h.ContentType != "text/plain; charset=utf-8" || h.Authorization != "" || h.BodyLen != 0 {
			t.Errorf("handshake request %+v: want text/plain, no Authorization, empty body", h)
		}
	}
	if hs[0].Token == hs[1].Token {
		t.Error("both validation requests carried the same token")
	}
}

func TestBearerTokenRequired(t *testing.T) {
	s, clk := newClockedSim(t)
	other := newSim(t, fastConfig())
	e := newEndpoint(t)
	good := accessToken(t, s, graphsim.DefaultAppID)
	foreign := accessToken(t, other, graphsim.DefaultAppID)
	tests := []struct {
		name       string
		token      string
		advance    time.Duration
		wantStatus int
		wantMsg    string
	}{
		{"no token", "", 0, 401, "Access token is empty."},
		{"garbage", "not.a.jwt", 0, 401, "validation failure"},
		{"other signer", foreign, 0, 401, "validation failure"},
		{"valid", good, 0, 200, ""},
		{"expired", good, 2 * time.Hour, 401, "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.Advance(tc.advance)
			var ge graphError
			st := call(t, "GET", s.GraphURL()+"/subscriptions", tc.token, nil, &ge)
			if st != tc.wantStatus {
				t.Fatalf("status %d, want %d", st, tc.wantStatus)
			}
			if tc.wantStatus == 401 && (ge.Error.Code != "InvalidAuthenticationToken" || !strings.Contains(ge.Error.Message, tc.wantMsg)) {
				t.Errorf("401 body %+v", ge.Error)
			}
		})
	}
	// Every method needs the token.
	for _, m := range []struct{ method, path string }{
		{"POST", "/subscriptions"}, {"GET", "/subscriptions/x"}, {"PATCH", "/subscriptions/x"},
		{"DELETE", "/subscriptions/x"}, {"POST", "/subscriptions/x/reauthorize"},
	} {
		if st := call(t, m.method, s.URL()+"/beta"+m.path, "", subRequest(e, "users/u1/messages"), nil); st != 401 {
			t.Errorf("%s %s without token: %d, want 401", m.method, m.path, st)
		}
	}
}

func TestSubscriptionAPIMethods(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	moved := newEndpoint(t)
	token := accessToken(t, s, graphsim.DefaultAppID)
	base := s.GraphURL() + "/subscriptions"

	var created map[string]any
	if st := call(t, "POST", base, token, subRequest(e, "users/u1/messages"), &created); st != 201 {
		t.Fatalf("create: %d", st)
	}
	id, _ := created["id"].(string)
	if ctx, _ := created["@odata.context"].(string); !strings.HasSuffix(ctx, "/v1.0/$metadata#subscriptions/$entity") {
		t.Errorf("@odata.context %q", ctx)
	}
	if created["lifecycleNotificationUrl"] != nil || created["latestSupportedTlsVersion"] != "v1_2" {
		t.Errorf("optional properties: lifecycle %v, tls %v", created["lifecycleNotificationUrl"], created["latestSupportedTlsVersion"])
	}
	if exp, _ := created["expirationDateTime"].(string); len(exp) != len("2019-03-20T11:00:00.0000000Z") {
		t.Errorf("expirationDateTime %q not in Graph's 7-digit form", exp)
	}

	var got graphsim.Subscription
	if st := call(t, "GET", base+"/"+id, token, nil, &got); st != 200 || got.ID != id {
		t.Fatalf("get: %d %+v", st, got)
	}
	var list struct {
		Context string                  `json:"@odata.context"`
		Value   []graphsim.Subscription `json:"value"`
	}
	if st := call(t, "GET", base, token, nil, &list); st != 200 || len(list.Value) != 1 || !strings.HasSuffix(list.Context, "#subscriptions") {
		t.Fatalf("list: %d %+v", st, list)
	}
	// Another app sees none of them.
	if st := call(t, "GET", base, accessToken(t, s, "other-app"), nil, &list); st != 200 || len(list.Value) != 0 {
		t.Errorf("other app list: %d, %d subscriptions", st, len(list.Value))
	}

	newExp := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
	}{
		{"renew", "PATCH", "/" + id, map[string]any{"expirationDateTime": newExp}, 200},
		{"renew too far", "PATCH", "/" + id, map[string]any{"expirationDateTime": time.Now().Add(8 * 24 * time.Hour)}, 400},
		{"move notificationUrl", "PATCH", "/" + id, map[string]any{"notificationUrl": moved.URL + "/n"}, 200},
		{"lifecycle url only at creation", "PATCH", "/" + id, map[string]any{"lifecycleNotificationUrl": moved.URL}, 400},
		{"resource is read-only", "PATCH", "/" + id, map[string]any{"resource": "users/u1/events"}, 400},
		{"patch unknown", "PATCH", "/nope", map[string]any{"expirationDateTime": newExp}, 404},
		{"reauthorize", "POST", "/" + id + "/reauthorize", nil, 204},
		{"reauthorize unknown", "POST", "/nope/reauthorize", nil, 404},
		{"delete", "DELETE", "/" + id, nil, 204},
		{"delete again", "DELETE", "/" + id, nil, 404},
		{"get deleted", "GET", "/" + id, nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out map[string]any
			if st := call(t, tc.method, base+tc.path, token, tc.body, &out); st != tc.wantStatus {
				t.Fatalf("status %d, want %d: %v", st, tc.wantStatus, out)
			}
			switch tc.name {
			case "renew":
				if out["expirationDateTime"] != graphsim.FormatDateTime(newExp) {
					t.Errorf("renewed expiration %v, want %v", out["expirationDateTime"], graphsim.FormatDateTime(newExp))
				}
			case "move notificationUrl":
				if out["notificationUrl"] != moved.URL+"/n" || len(moved.handshakeLog()) != 1 {
					t.Errorf("moved to %v with %d handshakes, want 1", out["notificationUrl"], len(moved.handshakeLog()))
				}
			case "patch unknown", "get deleted":
				if out["error"] == nil {
					t.Errorf("no Graph error body: %v", out)
				}
			}
		})
	}
}

func TestTokenEndpoint(t *testing.T) {
	cfg := fastConfig()
	cfg.Apps = []graphsim.App{{ClientID: "app", Secret: "s3cret"}}
	s := newSim(t, cfg)
	tests := []struct {
		name       string
		form       string
		wantStatus int
		wantError  string
	}{
		{"ok", "grant_type=client_credentials&client_id=app&client_secret=s3cret&scope=https://graph.microsoft.com/.default", 200, ""},
		{"wrong secret", "grant_type=client_credentials&client_id=app&client_secret=x&scope=https://graph.microsoft.com/.default", 401, "invalid_client"},
		{"wrong grant", "grant_type=password&client_id=app&client_secret=s3cret", 400, "unsupported_grant_type"},
		{"no client", "grant_type=client_credentials&client_secret=s3cret", 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(s.TokenURL("organizations"), "application/x-www-form-urlencoded", strings.NewReader(tc.form))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			decodeJSON(t, resp.Body, &out)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.wantStatus, out)
			}
			if tc.wantError != "" && out["error"] != tc.wantError {
				t.Errorf("error %v, want %s", out["error"], tc.wantError)
			}
			if tc.wantStatus == 200 && (out["token_type"] != "Bearer" || out["expires_in"] != float64(3600)) {
				t.Errorf("token response %v", out)
			}
		})
	}
}

// TestHandshakeDoesNotFollowRedirects: Graph needs the endpoint itself to
// answer 200; a receiver reachable only through a redirect (here
// ServeMux's trailing-slash one) must fail validation here as on Graph.
func TestHandshakeDoesNotFollowRedirects(t *testing.T) {
	s := newSim(t, fastConfig())
	mux := http.NewServeMux()
	mux.HandleFunc("/hook/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, r.URL.Query().Get("validationToken"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	req := graphsim.SubscriptionRequest{
		ChangeType: "created", NotificationURL: srv.URL + "/hook", Resource: "me/messages",
		ExpirationDateTime: time.Now().Add(time.Hour), ClientState: "s",
	}
	if _, err := s.CreateSubscription(t.Context(), req); !errors.Is(err, graphsim.ErrValidationFailed) {
		t.Fatalf("subscribing through a redirect: %v, want ErrValidationFailed", err)
	}
	req.NotificationURL = srv.URL + "/hook/"
	if _, err := s.CreateSubscription(t.Context(), req); err != nil {
		t.Fatalf("the endpoint itself: %v", err)
	}
}

func TestAnotherAppCannotTouchASubscription(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	owner := accessToken(t, s, graphsim.DefaultAppID)
	other := accessToken(t, s, "99999999-8888-7777-6666-555555555555")
	var sub graphsim.Subscription
	if st := call(t, "POST", s.GraphURL()+"/subscriptions", owner, subRequest(e, "users/u1/messages"), &sub); st != 201 {
		t.Fatalf("create: %d", st)
	}
	u := s.GraphURL() + "/subscriptions/" + sub.ID
	for _, tc := range []struct {
		method, url string
		body        any
	}{
		{"GET", u, nil},
		{"PATCH", u, map[string]any{"expirationDateTime": time.Now().Add(2 * time.Hour)}},
		{"POST", u + "/reauthorize", nil},
		{"DELETE", u, nil},
	} {
		if st := call(t, tc.method, tc.url, other, tc.body, nil); st != http.StatusNotFound {
			t.Errorf("%s by another app: %d, want 404", tc.method, st)
		}
	}
	if st := call(t, "GET", u, owner, nil, nil); st != http.StatusOK {
		t.Errorf("GET by the owner: %d, want 200", st)
	}
}
