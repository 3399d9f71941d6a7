package receiver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
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
	key, err := decrypt.GenerateKey(2048, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key.ID = "c"
	ring, _ := decrypt.NewKeyRing(key)
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, Tokens: v})
	body, _ := json.Marshal(map[string]any{
		"value":            []map[string]any{richItem(t, 0, key, `{}`)},
		"validationTokens": []string{"eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln"},
	})
	resp, _ := post(t, srv.URL+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status = %d, want 503 with Retry-After", resp.StatusCode)
	}
	if len(sink.batches) != 0 {
		t.Errorf("a batch was delivered while tokens could not be checked")
	}
	if r.Stats().Unavailable != 1 {
		t.Errorf("Stats.Unavailable = %d", r.Stats().Unavailable)
	}
}
