package receiver_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/token"
)

// TestKeyEndpointDownIs503 checks that our own inability to verify tokens
// (no JWKS fetched yet) asks Graph to redeliver instead of quarantining
// genuine notifications.
func TestKeyEndpointDownIs503(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	v, err := token.New(t.Context(), token.Config{AppIDs: []string{"app"}, JWKSURL: down.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	key := testkit.DecryptKey(t, "c")
	ring := testkit.KeyRing(t, key)
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, Tokens: v})
	body := collectionWithToken(t, "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln", richItem(t, 0, key, `{}`))
	resp, _ := post(t, srv.URL+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status = %d, want 503 with Retry-After", resp.StatusCode)
	}
	if len(sink.All()) != 0 {
		t.Errorf("a batch was delivered while tokens could not be checked")
	}
	if r.Stats().Unavailable != 1 {
		t.Errorf("Stats.Unavailable = %d", r.Stats().Unavailable)
	}
}

// verifiedSetup returns a receiver whose token validator trusts a graphsim
// JWKS, a key in its ring, and a function minting genuine tokens.
func verifiedSetup(t *testing.T, ring *decrypt.KeyRing) (*httptest.Server, *recorder, func(tenant string) string) {
	t.Helper()
	sink := &recorder{}
	srv, mint := verifiedServer(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring})
	return srv, sink, mint
}

// verifiedServer serves a receiver configured by cfg whose token validator
// trusts a graphsim JWKS, and returns a function minting genuine tokens.
func verifiedServer(t *testing.T, cfg receiver.Config) (*httptest.Server, func(tenant string) string) {
	t.Helper()
	sim, err := graphsim.New(graphsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	idp := httptest.NewServer(sim.Handler())
	t.Cleanup(idp.Close)
	v, err := token.New(t.Context(), token.Config{AppIDs: []string{graphsim.DefaultAppID}, JWKSURL: idp.URL + "/common/discovery/v2.0/keys"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg.Tokens = v
	srv, _ := serve(t, cfg)
	return srv, func(tenant string) string {
		tok, err := sim.ValidationToken(graphsim.DefaultAppID, tenant)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// TestUnknownCertificateIsQuarantinedAndReplayable covers a certificate
// rotation not deployed here (or an old key removed too early): the items
// for the unknown certificate go to the quarantine, the rest of the batch
// goes through, and once the key is added the quarantined items replay.
func TestUnknownCertificateIsQuarantinedAndReplayable(t *testing.T) {
	known := testkit.DecryptKey(t, "known")
	rotated := testkit.DecryptKey(t, "rotated")
	ring := testkit.KeyRing(t, known)
	srv, sink, mint := verifiedSetup(t, ring)

	tok := mint(tenant)
	body := collectionWithToken(t, tok, richItem(t, 0, known, `{"a":1}`), richItem(t, 1, rotated, `{"b":2}`))
	resp, _ := post(t, srv.URL+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusAccepted || len(sink.accepted()) != 1 || len(sink.rejected()) != 1 {
		t.Fatalf("status %d, accepted %d, rejected %d; want 202, 1, 1", resp.StatusCode, len(sink.accepted()), len(sink.rejected()))
	}
	rj := sink.rejected()[0]
	if rj.Reason != receiver.ReasonDecrypt || !errors.Is(rj.Err, decrypt.ErrUnknownKey) {
		t.Fatalf("rejected: %q %v, want decrypt / ErrUnknownKey", rj.Reason, rj.Err)
	}
	// The operator adds the key and replays the quarantined item as it was
	// received, with the batch's token.
	if err := ring.Add(rotated); err != nil {
		t.Fatal(err)
	}
	replay := []byte(`{"value":[` + string(rj.Notification.Raw) + `],"validationTokens":["` + tok + `"]}`)
	resp, _ = post(t, srv.URL+"/notifications", "application/json", replay)
	if resp.StatusCode != http.StatusAccepted || len(sink.accepted()) != 2 {
		t.Fatalf("replay: status %d, accepted %d; want 202, 2", resp.StatusCode, len(sink.accepted()))
	}
	if got := string(sink.accepted()[1].Content); got != `{"b":2}` {
		t.Errorf("replayed content = %s", got)
	}
}

// TestTokensCoverOnlyRichTenants: a basic item is authenticated by its
// clientState; the batch's tokens must cover the rich items' tenants, not
// the tenants of basic items sharing the URL.
func TestTokensCoverOnlyRichTenants(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	ring := testkit.KeyRing(t, key)
	srv, sink, mint := verifiedSetup(t, ring)
	const otherTenant = "11111111-2222-3333-4444-555555555555"
	basic := item(1, secret, "updated")
	basic["tenantId"] = otherTenant
	body := collectionWithToken(t, mint(tenant), richItem(t, 0, key, `{"a":1}`), basic)
	resp, _ := post(t, srv.URL+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusAccepted || len(sink.accepted()) != 2 || len(sink.rejected()) != 0 {
		t.Fatalf("status %d, accepted %d, rejected %d; want 202, 2, 0", resp.StatusCode, len(sink.accepted()), len(sink.rejected()))
	}
	// A rich item of a tenant no token covers still fails the batch.
	rich2 := richItem(t, 2, key, `{"c":3}`)
	rich2["tenantId"] = otherTenant
	body = collectionWithToken(t, mint(tenant), richItem(t, 0, key, `{"a":1}`), rich2)
	resp, _ = post(t, srv.URL+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusAccepted || len(sink.accepted()) != 2 || len(sink.rejected()) != 2 {
		t.Fatalf("uncovered rich tenant: status %d, accepted %d, rejected %d; want 202, 2, 2", resp.StatusCode, len(sink.accepted()), len(sink.rejected()))
	}
	if !errors.Is(sink.rejected()[0].Err, token.ErrTenantNotCovered) {
		t.Errorf("reason: %v, want ErrTenantNotCovered", sink.rejected()[0].Err)
	}
}

func TestBatchLimits(t *testing.T) {
	srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: &recorder{}, MaxItems: 5})
	tests := []struct {
		name       string
		body       string
		wantStatus int
	}{
		{"too many items", `{"value":[{},{},{},{},{},{}]}`, http.StatusRequestEntityTooLarge},
		{"items at the limit", `{"value":[{},{},{},{},{}]}`, http.StatusAccepted},
		{"too many tokens", `{"value":[],"validationTokens":[` + strings.Repeat(`"t",`, receiver.MaxValidationTokens) + `"t"]}`, http.StatusBadRequest},
		{"token not ASCII", `{"value":[],"validationTokens":["ey\u2028J.\u00ff"]}`, http.StatusBadRequest},
		{"token too long", `{"value":[],"validationTokens":["` + strings.Repeat("a", receiver.MaxValidationTokenBytes+1) + `"]}`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, srv.URL+"/notifications", "application/json", []byte(tc.body))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
		})
	}
}
