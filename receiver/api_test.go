package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/receiver"
)

func TestConfigValidateNamesTheField(t *testing.T) {
	lookup := func(context.Context, string) (string, error) { return "", nil }
	const longSecret = "a-secret-that-must-not-be-quoted-"
	tests := []struct {
		name      string
		cfg       receiver.Config
		wantField string // "" for a valid Config
	}{
		{"valid", receiver.Config{Sink: &recorder{}, ClientStates: []string{secret}}, ""},
		{"lookup only", receiver.Config{Sink: &recorder{}, ClientStateLookup: lookup}, ""},
		{"at Graph's limit", receiver.Config{Sink: &recorder{}, ClientStates: []string{strings.Repeat("é", receiver.MaxClientStateLen)}}, ""},
		{"no sink", receiver.Config{ClientStates: []string{secret}}, "Sink"},
		{"no client state", receiver.Config{Sink: &recorder{}}, "ClientStates"},
		{"empty client state", receiver.Config{Sink: &recorder{}, ClientStates: []string{secret, ""}}, "ClientStates"},
		{"over Graph's limit", receiver.Config{Sink: &recorder{}, ClientStates: []string{longSecret + strings.Repeat("x", receiver.MaxClientStateLen+1-len(longSecret))}}, "ClientStates"},
		{"negative timeout", receiver.Config{Sink: &recorder{}, ClientStates: []string{secret}, Timeout: -1}, "Timeout"},
		{"negative body limit", receiver.Config{Sink: &recorder{}, ClientStates: []string{secret}, MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"negative decrypt wait", receiver.Config{Sink: &recorder{}, ClientStates: []string{secret}, MaxDecryptWait: -1}, "MaxDecryptWait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := receiver.New(tc.cfg)
			if tc.wantField == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v; want nil", err, newErr)
				}
				return
			}
			for _, e := range []error{err, newErr} {
				ce, ok := errors.AsType[*receiver.ConfigError](e)
				if !ok {
					t.Fatalf("error %v is not a *ConfigError", e)
				}
				if ce.Field != tc.wantField {
					t.Errorf("Field = %q, want %q", ce.Field, tc.wantField)
				}
				if !strings.HasPrefix(e.Error(), "receiver: Config."+tc.wantField+": ") {
					t.Errorf("Error() = %q, want the receiver: Config.%s: prefix", e, tc.wantField)
				}
				if strings.Contains(e.Error(), longSecret) || strings.Contains(e.Error(), secret) {
					t.Errorf("Error() quotes a secret: %q", e)
				}
			}
		})
	}
}

// TestLifecycleTenantFromOrganizationID: real tenants send lifecycle items
// with organizationId and no tenantId (protocol doc §11).
func TestLifecycleTenantFromOrganizationID(t *testing.T) {
	sink := &recorder{}
	srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink})
	lc := lifecycleItem(0, secret, "reauthorizationRequired")
	delete(lc, "tenantId")
	lc["organizationId"] = tenant
	lc["resource"] = "Subscriptions/" + subBase + "000000000000"
	lc["@odata.type"] = "#microsoft.graph.subscription"
	both := item(1, secret, "updated")
	both["organizationId"] = "11111111-2222-3333-4444-555555555555"
	accept(t, srv.URL+"/lifecycle", collection(t, lc, both))
	got := sink.accepted()
	if len(got) != 2 {
		t.Fatalf("accepted %d, want 2", len(got))
	}
	if got[0].TenantID != tenant {
		t.Errorf("lifecycle item with organizationId only: TenantID = %q, want %q", got[0].TenantID, tenant)
	}
	if string(got[0].Extra["organizationId"]) != `"`+tenant+`"` {
		t.Errorf("organizationId not kept in Extra: %s", got[0].Extra["organizationId"])
	}
	if got[1].TenantID != tenant {
		t.Errorf("item with both fields: TenantID = %q, want tenantId %q", got[1].TenantID, tenant)
	}
}

// TestDecodeErrorStaysPrivate: the reason an item is malformed is reported
// by Validate, not carried in Extra where a Sink would publish it.
func TestDecodeErrorStaysPrivate(t *testing.T) {
	c, err := receiver.Parse([]byte(`{"value":[{"subscriptionId":"s","changeType":7,"x":1},"not an object",{"subscriptionId":"s","changeType":"created","subscriptionExpirationDateTime":"soon"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range c.Value {
		if err := n.Validate(); !errors.Is(err, receiver.ErrMalformed) {
			t.Errorf("item %d: Validate = %v, want ErrMalformed", i, err)
		}
		for k := range n.Extra {
			if k != "x" {
				t.Errorf("item %d: Extra has key %q", i, k)
			}
		}
		out, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), `\u0000`) || strings.Contains(string(out), "invalid") {
			t.Errorf("item %d marshals an internal marker: %s", i, out)
		}
	}
	var n receiver.Notification
	if err := json.Unmarshal([]byte(`{"subscriptionId":"s","changeType":["x"]}`), &n); !errors.Is(err, receiver.ErrMalformed) {
		t.Errorf("UnmarshalJSON = %v, want ErrMalformed", err)
	}
	if err := n.Validate(); !errors.Is(err, receiver.ErrMalformed) || len(n.Extra) != 0 {
		t.Errorf("after UnmarshalJSON: Validate = %v, Extra = %v", err, n.Extra)
	}
}

// TestHandleLeavesTheErrorBodyToTheAdapter: Handle sets the policy headers
// and returns the error with the status and message to show.
func TestHandleLeavesTheErrorBodyToTheAdapter(t *testing.T) {
	sink := failingRecorder(errors.New("bus down"))
	r, err := receiver.New(receiver.Config{ClientStates: []string{secret}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		method      string
		body        string
		wantStatus  int
		wantMessage string
		wantHeader  string // "Name: value"
		wantErr     error
	}{
		{"sink down", http.MethodPost, string(collection(t, item(0, secret, "created"))), 503, "Service Unavailable", "Retry-After: 5", receiver.ErrUnavailable},
		{"wrong method", http.MethodPut, "", 405, "check: receiver: method not allowed", "Allow: POST", receiver.ErrMethod},
		{"bad json", http.MethodPost, "{", 400, "parse: receiver: malformed notification: invalid JSON at offset 1", "", receiver.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			req := httptest.NewRequestWithContext(t.Context(), tc.method, "/notifications", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			err := r.Handle(w, req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Handle = %v, want %v", err, tc.wantErr)
			}
			e, ok := errors.AsType[*receiver.Error](err)
			if !ok || e.Status() != tc.wantStatus || e.Message() != tc.wantMessage {
				t.Fatalf("error %v: status %d message %q, want %d %q", err, e.Status(), e.Message(), tc.wantStatus, tc.wantMessage)
			}
			if tc.wantHeader != "" {
				name, value, _ := strings.Cut(tc.wantHeader, ": ")
				if got := w.Header().Get(name); got != value {
					t.Errorf("%s = %q, want %q", name, got, value)
				}
			}
			if w.Body.Len() != 0 {
				t.Errorf("Handle wrote a body: %q", w.Body)
			}
		})
	}
}
