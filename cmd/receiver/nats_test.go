package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
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
	testkit.CheckFor(t, 5*time.Second, readyz(http.StatusOK, `"nats":"ok"`))
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "ext-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v", status, err)
	}
	if got := readStream(t, natstest.Connect(t, ns.ClientURL()), "GRAPH"); !got[eventID("ext-1")] {
		t.Fatalf("event not in the external server's stream: %v", got)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	testkit.CheckFor(t, 5*time.Second, readyz(http.StatusServiceUnavailable, `"status":"not ready"`))
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
	testkit.CheckFor(t, 15*time.Second, readyz(http.StatusOK, `"nats":"ok"`))
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "ext-2")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch after NATS came back: %d %v", status, err)
	}
	_, ex, _ := get(ctx, p.ops+"/metrics")
	for series, want := range map[string]string{
		`graphhook_batches_total{outcome="unavailable"}`:                     "1",
		`graphhook_http_requests_total{code="503",endpoint="notifications"}`: "1",
		`graphhook_publish_failures_total`:                                   "1",
		`graphhook_notifications_total{outcome="published"}`:                 "2",
		`graphhook_notifications_total{outcome="stored"}`:                    "2",
	} {
		if got, _ := metricValue(ex, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

// TestBodyLimitFitsInANATSMessage checks both sides of --max-body-bytes:
// the embedded server takes an item as large as the limit, and an external
// server whose max_payload cannot is refused at start with one line.
func TestBodyLimitFitsInANATSMessage(t *testing.T) {
	t.Run("embedded server follows the limit", func(t *testing.T) {
		ctx := t.Context()
		dataDir := t.TempDir()
		const clientState = "a-long-enough-client-state-value"
		p := startInProcess(t, baseArgs(dataDir, "--max-body-bytes", "12MiB", "--client-state", clientState), nil)
		body := batchBody(t, clientState, "big-1")
		// Pad the item's resourceData to 10 MiB, above natspub's 8 MiB default.
		pad := strings.Repeat("x", 10<<20)
		body = []byte(strings.Replace(string(body), `"id":"big-1"}`, `"id":"big-1","pad":"`+pad+`"}`, 1))
		if len(body) < 10<<20 {
			t.Fatalf("test setup: body of %d bytes", len(body))
		}
		if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", body); err != nil || status != http.StatusAccepted {
			t.Fatalf("10 MiB batch with --max-body-bytes 12MiB: %d %v, want 202", status, err)
		}
		if got := readStream(t, natstest.Connect(t, embeddedURL(t, p.nats, dataDir)), "GRAPH"); !got[eventID("big-1")] {
			t.Fatalf("the large event is not in the stream: %v", got)
		}
	})
	t.Run("external server too small", func(t *testing.T) {
		ns := natstest.RunServer(t, t.TempDir(), -1) // max_payload 8 MiB
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		var stdout, stderr testkit.SyncBuffer
		err := run(ctx, []string{"--listen", "127.0.0.1:0", "--nats-url", ns.ClientURL(), "--data-dir", t.TempDir(),
			"--client-state", "a-long-enough-client-state-value", "--max-body-bytes", "8MiB"}, noEnv, &stdout, &stderr)
		if !errors.Is(err, errConfig) {
			t.Fatalf("err = %v, want a configuration error", err)
		}
		const want = "--max-body-bytes: 8MiB plus 64KiB for headers is more than the NATS server's max_payload of 8MiB"
		if msg := err.Error(); !strings.HasPrefix(msg, want) || strings.Contains(msg, "\n") || !strings.Contains(msg, "example: --max-body-bytes 8128KiB") {
			t.Errorf("error:\n%s\nwant one line starting with:\n%s", msg, want)
		}
		if strings.Contains(stdout.String(), "is running") {
			t.Error("the receiver started")
		}
	})
}

// consumeURLRe finds the NATS URL of the consumer command in the banner,
// as it is to be pasted into a shell.
var consumeURLRe = regexp.MustCompile(`export NATS_URL=("nats://\$\(cat [^)]+\)@[^"\s]+")`)

// TestEmbeddedNATSRequiresTheToken checks that the embedded server refuses
// clients without the token of <data-dir>/nats-token (mode 0600, created on
// first start, kept on the next), that the URL the banner prints for
// consumers, run through a shell, reads the events, and that the token
// appears in no log line or banner.
func TestEmbeddedNATSRequiresTheToken(t *testing.T) {
	ctx := t.Context()
	dataDir := t.TempDir()
	const clientState = "a-long-enough-client-state-value"
	args := baseArgs(dataDir, "--client-state", clientState, "--log-level", "debug", "--log-format", "json")
	p := startInProcess(t, args, nil)

	tokenFile := filepath.Join(dataDir, defaultNATSTokenFile)
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", tokenFile, fi.Mode().Perm())
	}
	authURL := embeddedURL(t, p.nats, dataDir)
	token := strings.TrimSuffix(strings.TrimPrefix(authURL, "nats://"), "@"+strings.TrimPrefix(p.nats, "nats://"))
	if len(token) < 43 {
		t.Fatalf("generated token of %d characters, want 43", len(token))
	}

	for name, url := range map[string]string{
		"no token":    p.nats,
		"wrong token": "nats://not-the-token-of-this-server@" + strings.TrimPrefix(p.nats, "nats://"),
	} {
		nc, err := nats.Connect(url, nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected, want refused", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}

	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "auth-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v, want 202", status, err)
	}
	url := authURL
	if m := consumeURLRe.FindStringSubmatch(p.stdout.String()); m == nil {
		t.Errorf("the banner shows no consumer URL reading %s:\n%s", tokenFile, p.stdout.String())
	} else if _, err := exec.LookPath("sh"); err == nil {
		out, err := exec.CommandContext(ctx, "sh", "-c", "printf %s "+m[1]).Output()
		if err != nil {
			t.Fatal(err)
		}
		url = string(out)
		if url != authURL {
			t.Errorf("the banner's %s expands to a URL other than nats://TOKEN@host:port", m[1])
		}
	}
	if got := readStream(t, natstest.Connect(t, url), "GRAPH"); !got[eventID("auth-1")] {
		t.Fatalf("event not readable with the token: %v", got)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}

	// The next start keeps the token.
	p2 := startInProcess(t, args, nil)
	if got := embeddedURL(t, p2.nats, dataDir); strings.TrimSuffix(strings.TrimPrefix(got, "nats://"), "@"+strings.TrimPrefix(p2.nats, "nats://")) != token {
		t.Error("the token changed on restart")
	}
	if err := p2.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{p.stdout.String(), p.stderr.String(), p2.stdout.String(), p2.stderr.String()} {
		if strings.Contains(out, token) {
			t.Fatalf("the NATS token appears in the output:\n%s", out)
		}
	}
	if logs := p.stderr.String(); !strings.Contains(logs, "authentication error") || strings.Contains(logs, "not-the-token-of-this-server") {
		t.Errorf("the logs should show the refused clients, without the tokens they tried:\n%s", logs)
	}
}

// TestReadyzNamesAFullStream runs the receiver against an operator's GRAPH
// stream that holds one message and refuses more (discard new): once it is
// full, /readyz answers 503 naming the cause, and batches get 503.
func TestReadyzNamesAFullStream(t *testing.T) {
	ctx := t.Context()
	ns := natstest.RunServer(t, t.TempDir(), -1)
	js, err := jetstream.New(natstest.Connect(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "GRAPH", Subjects: []string{"graph.notifications.>", "graph.lifecycle.>"},
		Storage: jetstream.FileStorage, MaxMsgs: 1, Discard: jetstream.DiscardNew, Duplicates: time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, []string{"--listen", "127.0.0.1:0", "--nats-url", ns.ClientURL(), "--data-dir", t.TempDir(),
		"--client-state", clientState, "--publish-timeout", "500ms"}, nil)
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "full-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("first batch: %d %v, want 202", status, err)
	}
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "full-2")); err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("batch into a full stream: %d %v, want 503", status, err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		status, body, err := get(ctx, p.base+"/readyz")
		if err == nil && (status != http.StatusServiceUnavailable || !strings.Contains(body, `"cause":"stream_full"`)) {
			err = fmt.Errorf("/readyz %d %s, want 503 with cause stream_full", status, body)
		}
		return err
	})
}
