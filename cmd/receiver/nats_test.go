package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
)

// TestExternalNATSReadinessFollowsTheConnection runs the receiver against
// an external server (--nats-url) with a separate --ops-listen, stops that
// server and starts it again: /readyz and the notification answers follow.
func TestExternalNATSReadinessFollowsTheConnection(t *testing.T) {
	ctx := t.Context()
	storeDir := t.TempDir()
	ns := natstest.RunServer(t, storeDir, -1)
	port := natstest.Port(t, ns)
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, []string{
		"--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
		"--nats-url", ns.ClientURL(), "--data-dir", t.TempDir(), "--client-state", clientState,
		"--publish-timeout", "500ms",
	}, nil)
	if p.nats != "" {
		t.Fatalf("an embedded server was started with --nats-url:\n%s", p.stdout.String())
	}
	if p.ops == "" || p.ops == p.base {
		t.Fatalf("operations at %q, want a separate address from %s", p.ops, p.base)
	}
	if status, _, _ := get(ctx, p.base+"/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics on --listen: %d, want 404 when --ops-listen is set", status)
	}
	readyz := func(want int, wantText string) func() error {
		return func() error {
			status, body, err := get(ctx, p.ops+"/readyz")
			if err == nil && (status != want || !strings.Contains(body, wantText)) {
				err = fmt.Errorf("/readyz %d %s", status, body)
			}
			return err
		}
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, readyz(http.StatusOK, `"nats":"ok"`))
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "ext-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v", status, err)
	}
	if got := readStream(t, natstest.Connect(t, ns.ClientURL()), "GRAPH"); !got[eventID("ext-1")] {
		t.Fatalf("event not in the external server's stream: %v", got)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	checkFor(t, 5*time.Second, 10*time.Millisecond, readyz(http.StatusServiceUnavailable, `"status":"not ready"`))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/notifications", strings.NewReader(string(batchBody(t, clientState, "ext-2"))))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("batch while NATS is down: %d Retry-After=%q, want 503 with Retry-After so Graph redelivers", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	natstest.RunServer(t, storeDir, port)
	checkFor(t, 15*time.Second, 20*time.Millisecond, readyz(http.StatusOK, `"nats":"ok"`))
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "ext-2")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch after NATS came back: %d %v", status, err)
	}
	_, ex, _ := get(ctx, p.ops+"/metrics")
	for series, want := range map[string]string{
		`graphhook_batches_total{outcome="unavailable"}`:                     "1",
		`graphhook_http_requests_total{code="503",endpoint="notifications"}`: "1",
		`graphhook_publish_failures_total`:                                   "1",
		`graphhook_notifications_total{outcome="published"}`:                 "2",
	} {
		if got, _ := metricValue(ex, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}
