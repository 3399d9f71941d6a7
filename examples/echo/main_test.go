package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/internal/testkit"
)

func TestEchoAppServesGraphBesideItsOwnRoutes(t *testing.T) {
	var out testkit.SyncBuffer
	env := map[string]string{"GRAPH_CLIENT_STATE": "secretClientValue", "API_KEY": "k"}
	// Serve also checks that run returns nil once the test ends.
	base := "http://" + testkit.Serve(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, []string{"-listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, &out, ready)
	})

	// The app's own authenticated route is untouched.
	resp, err := http.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("/api/status without key: 200, want refused")
	}

	// Graph's anonymous handshake is answered.
	resp, err = http.Post(base+"/graph/lifecycle?validationToken=x%3Cy", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "x<y" {
		t.Fatalf("handshake: %d %q", resp.StatusCode, b)
	}

	body := `{"value":[{"subscriptionId":"s1","clientState":"secretClientValue","changeType":"updated","resource":"users/u1","tenantId":"t"}]}`
	resp, err = http.Post(base+"/graph/notifications", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || out.String() != "change updated users/u1\n" {
		t.Fatalf("batch: %d, output %q", resp.StatusCode, out.String())
	}
}
