package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
)

// TestReadyzWhileAndAfterClose serves /readyz while the daemon's NATS side
// is closed, as when --shutdown-timeout cut requests that are still
// running: the answers go from ready to 503, never a crash (run with -race
// to also check that close does not write what the handler reads).
func TestReadyzWhileAndAfterClose(t *testing.T) {
	ctx := t.Context()
	_, nc := natstest.Start(t)
	pub, err := natspub.New(ctx, natspub.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig([]string{"--shutdown-timeout", "1s"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cfg: c, log: slog.New(slog.DiscardHandler), metrics: newMetrics(), nc: nc, pub: pub}
	srv := httptest.NewServer(d.newOpsApp())
	defer srv.Close()
	if status, body, err := get(ctx, srv.URL+"/readyz"); err != nil || status != http.StatusOK {
		t.Fatalf("/readyz before close: %d %s %v, want 200", status, body, err)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := get(ctx, srv.URL+"/readyz"); err != nil {
					t.Errorf("/readyz during close: %v", err)
					return
				}
			}
		})
	}
	d.draining.Store(true)
	d.close()
	d.close() // a second call does nothing
	close(stop)
	wg.Wait()

	testkit.CheckFor(t, 5*time.Second, func() error {
		status, body, err := get(ctx, srv.URL+"/readyz")
		if err == nil && (status != http.StatusServiceUnavailable || !strings.Contains(body, `"shutdown"`) || strings.Contains(body, `"nats":"ok"`)) {
			err = fmt.Errorf("/readyz after close: %d %s, want 503 with shutdown and nats failing", status, body)
		}
		return err
	})
}

// TestOnlyTrustedProxiesSetTheClientAddress posts from 127.0.0.1 with an
// X-Forwarded-For header: the access log shows the forwarded address only
// when --trusted-proxy covers 127.0.0.1, not because Echo trusts loopback
// (or private) addresses by default.
func TestOnlyTrustedProxiesSetTheClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name, proxy, wantIP string
	}{
		{"proxy elsewhere: loopback is not trusted", "10.0.0.0/8", "127.0.0.1"},
		{"private range does not cover loopback", "192.168.0.0/16,172.16.0.0/12", "127.0.0.1"},
		{"loopback is the trusted proxy", "127.0.0.1", "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startInProcess(t, baseArgs(t.TempDir(), "--trusted-proxy", tc.proxy, "--log-format", "json"), nil)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.base+"/notifications", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Request-Id", "xff-test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := `"remote_ip":"` + tc.wantIP + `"`
			testkit.CheckFor(t, 5*time.Second, func() error {
				for line := range strings.SplitSeq(p.stderr.String(), "\n") {
					if strings.Contains(line, `"msg":"http request"`) && strings.Contains(line, `"request_id":"xff-test"`) {
						if !strings.Contains(line, want) {
							t.Fatalf("access log %s, want %s", line, want)
						}
						return nil
					}
				}
				return fmt.Errorf("no access log line yet")
			})
		})
	}
}

// TestOneInfoLinePerRequest posts a batch (one genuine item, one forged)
// and a handshake: each request writes exactly one Info line, the access
// line, and the batch's carries its counts.
func TestOneInfoLinePerRequest(t *testing.T) {
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", clientState, "--log-format", "json"), nil)
	body := string(batchBody(t, clientState, "one-1"))
	body = strings.Replace(body, `]}`, `,`+strings.TrimSuffix(strings.TrimPrefix(string(batchBody(t, "forged-state-value", "one-2")), `{"value":[`), `]}`)+`]}`, 1)
	for id, r := range map[string]struct{ query, body string }{
		"one-batch":     {"", body},
		"one-handshake": {"?validationToken=hello", ""},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.base+"/notifications"+r.query, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, id := range []string{"one-batch", "one-handshake"} {
		var lines []string
		testkit.CheckFor(t, 5*time.Second, func() error {
			lines = nil
			for line := range strings.SplitSeq(p.stderr.String(), "\n") {
				if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, `"level":"INFO"`) {
					lines = append(lines, line)
				}
			}
			if len(lines) == 0 {
				return fmt.Errorf("no Info line for %s yet", id)
			}
			return nil
		})
		if len(lines) != 1 || !strings.Contains(lines[0], `"msg":"http request"`) {
			t.Errorf("%s: %d Info lines, want the one access line:\n%s", id, len(lines), strings.Join(lines, "\n"))
		}
		if id == "one-batch" && !strings.Contains(lines[0], `"accepted":1,"rejected":1`) {
			t.Errorf("the access line lacks the batch's counts: %s", lines[0])
		}
	}
}

// TestPublicListenKeepsOperationsOnLoopback starts the receiver on every
// address without --ops-listen: /metrics and /readyz are not served on the
// public listener but on a loopback one, and the start says so.
func TestPublicListenKeepsOperationsOnLoopback(t *testing.T) {
	ctx := t.Context()
	p := startInProcess(t, []string{"--listen", "0.0.0.0:0", "--embedded-nats-listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--client-state", "a-long-enough-client-state-value"}, nil)
	if p.ops == "" || p.ops == p.base || !strings.HasPrefix(p.ops, "http://127.0.0.1:") {
		t.Fatalf("operations at %q, want a loopback address apart from %s", p.ops, p.base)
	}
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/status", "/status.json"} {
		if status, _, _ := get(ctx, p.base+path); status != http.StatusNotFound {
			t.Errorf("%s on the public --listen: %d, want 404", path, status)
		}
		if status, _, err := get(ctx, p.ops+path); err != nil || status != http.StatusOK {
			t.Errorf("%s on the loopback operations listener: %d %v, want 200", path, status, err)
		}
	}
	if !strings.Contains(p.stderr.String(), "served on loopback only") {
		t.Errorf("the start does not say where the operations endpoints went:\n%s", p.stderr.String())
	}
}

// TestStoredAndDuplicateCountedApart posts the same batch twice, as Graph
// redelivers: the stream stores one event, and /metrics says so.
func TestStoredAndDuplicateCountedApart(t *testing.T) {
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", clientState), nil)
	for range 2 {
		if status, err := post(t.Context(), http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "dup-1")); err != nil || status != http.StatusAccepted {
			t.Fatalf("batch: %d %v", status, err)
		}
	}
	_, ex, _ := get(t.Context(), p.base+"/metrics")
	for series, want := range map[string]string{
		`graphhook_notifications_total{outcome="published"}`: "2",
		`graphhook_notifications_total{outcome="stored"}`:    "1",
		`graphhook_notifications_total{outcome="duplicate"}`: "1",
	} {
		if got, _ := metricValue(ex, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

// TestStatusPageAndStanding loads /status.json and /status after a
// notification: the page names the streams and the endpoint's standing
// with Graph, and /metrics has the standing's series.
func TestStatusPageAndStanding(t *testing.T) {
	ctx := t.Context()
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", clientState), nil)
	if status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "status-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v", status, err)
	}
	status, body, err := get(ctx, p.ops+"/status.json")
	if err != nil || status != http.StatusOK {
		t.Fatalf("/status.json: %d %v", status, err)
	}
	var snap struct {
		Ready    bool `json:"ready"`
		Standing *struct {
			State    string `json:"state"`
			Requests int    `json:"requests"`
		} `json:"standing"`
		Streams []struct {
			Name     string `json:"name"`
			Messages uint64 `json:"messages"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("/status.json: %v\n%s", err, body)
	}
	if !snap.Ready || snap.Standing == nil || snap.Standing.State != "normal" || snap.Standing.Requests != 1 {
		t.Errorf("/status.json ready %v, standing %+v; want ready, normal, 1 request\n%s", snap.Ready, snap.Standing, body)
	}
	if len(snap.Streams) == 0 || snap.Streams[0].Name != "GRAPH" || snap.Streams[0].Messages != 1 {
		t.Errorf("/status.json streams %+v, want GRAPH with 1 message", snap.Streams)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.ops+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("/status: %d %s, want 200 HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_, ex, _ := get(ctx, p.ops+"/metrics")
	if got, _ := metricValue(ex, `graphhook_standing_window_responses{endpoint="notifications"}`); got != "1" {
		t.Errorf(`graphhook_standing_window_responses{endpoint="notifications"} = %q, want 1`, got)
	}
}

// TestDoctorAgainstTheReceiver runs "receiver doctor" against a receiver
// on plain http over loopback: the handshake, clientState and body checks
// pass, the https check fails with its fix, and the command fails.
func TestDoctorAgainstTheReceiver(t *testing.T) {
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", "a-long-enough-client-state-value"), nil)
	var out testkit.SyncBuffer
	err := run(t.Context(), []string{"doctor", "--url", p.base + "/notifications", "--max-body-bytes", "1MiB"}, noEnv, &out, &testkit.SyncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "checks failed") {
		t.Errorf("doctor against plain http = %v, want failed checks", err)
	}
	text := out.String()
	for _, want := range []string{"FAIL  Notification URL is https", "fix: serve the receiver over HTTPS",
		"PASS  Validation handshake on the notification URL", "PASS  Notification with a wrong clientState answered 202", "PASS  Body limit"} {
		if !strings.Contains(text, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, text)
		}
	}
	if err := run(t.Context(), []string{"doctor"}, noEnv, &out, &testkit.SyncBuffer{}); !errors.Is(err, errUsage) {
		t.Errorf("doctor without --url = %v, want a usage error", err)
	}
}
