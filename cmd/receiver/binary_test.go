package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

const (
	testTenant = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	testSub    = "c6126aa3-0ed8-412f-a988-71e6cee627c4"
)

// batchBody returns a changeNotificationCollection with one created
// notification per id, each carrying clientState.
func batchBody(t testing.TB, clientState string, ids ...string) []byte {
	t.Helper()
	items := make([]*receiver.Notification, len(ids))
	for i, id := range ids {
		items[i] = &receiver.Notification{
			ID:                             id,
			SubscriptionID:                 testSub,
			SubscriptionExpirationDateTime: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			ChangeType:                     "created",
			Resource:                       "users/u1/messages/" + id,
			ResourceData:                   json.RawMessage(fmt.Sprintf(`{"@odata.type":"#Microsoft.Graph.Message","id":%q}`, id)),
			ClientState:                    receiver.ClientState(clientState),
			TenantID:                       testTenant,
		}
	}
	b, err := json.Marshal(map[string]any{"value": items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventID is the ce-id of the notification with id.
func eventID(id string) string { return testSub + ":" + id }

// process is the receiver binary running under a test.
type process struct {
	endpoints
	cmd            *exec.Cmd
	stdout, stderr *testkit.SyncBuffer
	done           chan struct{}
	waitErr        error
}

// startBinary starts the receiver binary and waits for its banner.
func startBinary(t *testing.T, args ...string) *process {
	t.Helper()
	p := spawnBinary(t, args...)
	p.endpoints = waitBanner(t, p.stdout, p.stderr, p.done, func() error { return p.waitErr })
	return p
}

// spawnBinary starts the receiver binary; it is killed when the test ends.
func spawnBinary(t *testing.T, args ...string) *process {
	t.Helper()
	bin := buildBinary(t)
	p := &process{stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("receiver did not exit within %v\nstderr:\n%s", timeout, p.stderr.String())
	}
	if ee, ok := errors.AsType[*exec.ExitError](p.waitErr); ok {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatal(p.waitErr)
	}
	return 0
}

// TestBinaryHandshakePublishReadyMetricsAndGracefulSIGTERM is the
// acceptance test: the real binary, with no client state configured (the
// quick-start default), answers the handshake, publishes a batch to the
// embedded JetStream, reports ready and counts it all in /metrics; then
// SIGTERM under load loses no accepted notification and exits 0.
func TestBinaryHandshakePublishReadyMetricsAndGracefulSIGTERM(t *testing.T) {
	ctx := t.Context()
	dataDir := t.TempDir()
	p := startBinary(t, baseArgs(dataDir, "--log-format", "json", "--log-level", "debug")...)
	if p.nats == "" {
		t.Fatalf("banner names no embedded NATS server:\n%s", p.stdout.String())
	}
	csBytes, err := os.ReadFile(filepath.Join(dataDir, defaultClientStateFile))
	if err != nil {
		t.Fatalf("the generated clientState file: %v", err)
	}
	clientState := strings.TrimSpace(string(csBytes))
	if len(clientState) < 32 || len(clientState) > receiver.MaxClientStateLen {
		t.Fatalf("generated clientState is %d characters, want 32..%d", len(clientState), receiver.MaxClientStateLen)
	}

	// Handshake, as Graph sends it (form-encoded, lower-case %3a).
	const encoded = "Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+336960d6-1bd9-4b3a-9d5c-1f0f3b3e3c3e"
	const decoded = "Validation: Testing client application reachability for subscription Request-Id: 336960d6-1bd9-4b3a-9d5c-1f0f3b3e3c3e"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/notifications?validationToken="+encoded, nil)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != decoded || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("handshake: %d %q (%s), want 200 %q text/plain", resp.StatusCode, body, resp.Header.Get("Content-Type"), decoded)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the answer")
	}

	// A batch of three, plus a forged item that must not reach the stream.
	nc, err := nats.Connect(embeddedURL(t, p.nats, dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	status, err := post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "first-1", "first-2", "first-3"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v, want 202", status, err)
	}
	status, err = post(ctx, http.DefaultClient, p.base+"/notifications", batchBody(t, "forged-client-state-value", "forged-1"))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("forged batch: %d %v, want 202 (the answer must not tell)", status, err)
	}
	cons, err := js.OrderedConsumer(ctx, "GRAPH", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range msgs.Messages() {
		got = append(got, m.Headers().Get(natspub.HeaderID))
		if want := "graph.notifications." + testTenant + "." + testSub + ".created"; m.Subject() != want {
			t.Errorf("subject %q, want %q", m.Subject(), want)
		}
		if strings.Contains(string(m.Data()), clientState) {
			t.Errorf("event body carries the clientState: %s", m.Data())
		}
	}
	want := []string{eventID("first-1"), eventID("first-2"), eventID("first-3")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events in GRAPH: %v, want %v", got, want)
	}

	status, text, err := get(ctx, p.base+"/readyz")
	if err != nil || status != http.StatusOK || !strings.Contains(text, `"nats":"ok"`) {
		t.Fatalf("/readyz: %d %s %v, want 200 with nats ok", status, text, err)
	}
	if status, text, _ := get(ctx, p.base+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz: %d %s", status, text)
	}
	_, exposition, err := get(ctx, p.base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]string{
		`graphhook_notifications_total{outcome="published"}`:                         "3",
		`graphhook_notifications_total{outcome="stored"}`:                            "3",
		`graphhook_notifications_total{outcome="duplicate"}`:                         "0",
		`graphhook_notifications_total{outcome="client_state"}`:                      "1",
		`graphhook_handshakes_total`:                                                 "1",
		`graphhook_batches_total{outcome="accepted"}`:                                "2",
		`graphhook_http_requests_total{code="202",endpoint="notifications"}`:         "2",
		`graphhook_http_requests_total{code="200",endpoint="notifications"}`:         "1",
		`graphhook_http_requests_total{code="200",endpoint="readyz"}`:                "1",
		`graphhook_publish_duration_seconds_count{outcome="ok"}`:                     "2",
		`graphhook_request_duration_seconds_bucket{endpoint="notifications",le="3"}`: "3",
		`graphhook_build_info{version="v0.0.0-test"}`:                                "1",
	} {
		if got, ok := metricValue(exposition, series); !ok || got != want {
			t.Errorf("/metrics %s = %q (present %v), want %s", series, got, ok, want)
		}
	}
	nc.Close()

	// Load, then SIGTERM while it runs.
	var (
		mu       sync.Mutex
		accepted []string // ids whose request was answered 202
		n        int
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 15 * time.Second}
			for i := 0; loadCtx.Err() == nil; i++ {
				ids := []string{fmt.Sprintf("load-%d-%d-a", w, i), fmt.Sprintf("load-%d-%d-b", w, i)}
				status, err := post(loadCtx, client, p.base+"/notifications", batchBody(t, clientState, ids...))
				if err != nil {
					return // the listener is closed: shutdown began
				}
				if status == http.StatusAccepted {
					mu.Lock()
					accepted = append(accepted, ids...)
					n++
					mu.Unlock()
				}
			}
		})
	}
	testkit.CheckFor(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if n < 40 {
			return fmt.Errorf("%d batches accepted so far", n)
		}
		return nil
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr.String())
	}
	stopLoad()
	wg.Wait()
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"NATS connection drained"`, `"msg":"embedded NATS server stopped"`, `"msg":"shutdown complete"`} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("shutdown log lacks %s", want)
		}
	}

	// Reopen the data directory with an in-process server: every accepted
	// notification must be in the stream.
	ns := natstest.RunServer(t, dataDir, -1)
	nc2 := natstest.Connect(t, ns.ClientURL())
	stored := readStream(t, nc2, "GRAPH")
	mu.Lock()
	defer mu.Unlock()
	missing := 0
	for _, id := range accepted {
		if !stored[eventID(id)] {
			missing++
			if missing <= 5 {
				t.Errorf("notification %s was answered 202 but is not in the stream", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d accepted notifications missing after SIGTERM", missing, len(accepted))
	}
	t.Logf("%d batches accepted under load, %d events stored in total", n, len(stored))

	// Secrets never reach the logs.
	logs := p.stderr.String()
	for _, secret := range []string{clientState, "forged-client-state-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a clientState")
		}
	}
	if strings.Contains(logs, "336960d6-1bd9") {
		t.Errorf("logs contain the validationToken (the query string must not be logged)")
	}
}

// readStream returns the ce-id of every message in stream.
func readStream(t *testing.T, nc *nats.Conn, stream string) map[string]bool {
	t.Helper()
	ctx := t.Context()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var s jetstream.Stream
	testkit.CheckFor(t, 10*time.Second, func() error {
		s, err = js.Stream(ctx, stream)
		return err
	})
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[m.Header.Get(natspub.HeaderID)] = true
	}
	return out
}

// TestBinaryBadConfigExitsNonZeroWithOneLine runs the binary with a
// clientState Graph would refuse.
func TestBinaryBadConfigExitsNonZeroWithOneLine(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.CommandContext(t.Context(), bin, baseArgs(t.TempDir(), "--client-state", strings.Repeat("x", 140))...)
	out, err := cmd.Output()
	ee, ok := errors.AsType[*exec.ExitError](err)
	if !ok {
		t.Fatalf("exit: %v, want a non-zero exit status", err)
	}
	if ee.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", ee.ExitCode())
	}
	stderr := strings.TrimRight(string(ee.Stderr), "\n")
	const want = "receiver: --client-state: entry 1 is 140 characters, over Graph's limit of 128 (example: --client-state-file /run/secrets/graph-client-state)"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant the one line:\n%s", stderr, want)
	}
	if strings.Contains(stderr, strings.Repeat("x", 20)) {
		t.Error("the error repeats the secret")
	}
	if len(out) != 0 {
		t.Errorf("stdout: %q, want nothing", out)
	}
}

// TestBinaryVersion checks -ldflags reach --version, and that --version
// shows the commit exactly when the build recorded one: a go build in a
// git checkout does (forced here with -buildvcs=true, since GOFLAGS may
// turn it off), a build with -buildvcs=false does not.
func TestBinaryVersion(t *testing.T) {
	vcsBin := filepath.Join(binDir, "receiver-vcs")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-buildvcs=true", "-ldflags", "-X main.version=v0.0.0-test", "-o", vcsBin, ".").CombinedOutput(); err != nil {
		vcsBin = "" // not a git checkout, or no git: only the plain build is checked
		t.Logf("no VCS build: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join("..", "..", ".git")); err == nil && !fi.IsDir() {
		// A git worktree (.git is a file): go build stamps no VCS
		// information there (cmd/go looks for a .git directory), so only
		// the plain build is checked.
		t.Log("a git worktree: go build records no vcs.revision here")
		vcsBin = ""
	}
	for _, bin := range []string{buildBinary(t), vcsBin} {
		if bin == "" {
			continue
		}
		out, err := exec.CommandContext(t.Context(), bin, "--version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(out), "graphhook receiver v0.0.0-test") {
			t.Errorf("--version: %q", out)
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		rev := ""
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
		switch {
		case bin == vcsBin && rev == "":
			t.Errorf("go build -buildvcs=true recorded no vcs.revision")
		case rev != "" && !strings.Contains(string(out), " commit "+rev[:12]):
			t.Errorf("--version %q lacks the build's commit %.12s", out, rev)
		case rev == "" && strings.Contains(string(out), "commit"):
			t.Errorf("--version %q shows a commit the build did not record", out)
		}
	}
}

// TestBinarySIGHUPWhileStartingIsKept sends SIGHUP while the receiver
// waits for its (external) NATS server, as a certificate deploy hook or
// systemctl reload may: the receiver must not die of it, and handles it
// once it serves.
func TestBinarySIGHUPWhileStartingIsKept(t *testing.T) {
	storeDir := t.TempDir()
	probe := natstest.RunServer(t, storeDir, -1)
	port := natstest.Port(t, probe)
	url := probe.ClientURL()
	probe.Shutdown()
	probe.WaitForShutdown()

	p := spawnBinary(t, "--listen", "127.0.0.1:0", "--nats-url", url, "--data-dir", t.TempDir(), "--client-state", "a-long-enough-client-state-value")
	testkit.CheckFor(t, 10*time.Second, func() error {
		if !strings.Contains(p.stderr.String(), "waiting for NATS") {
			return errors.New("not waiting for NATS yet")
		}
		return nil
	})
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	natstest.RunServer(t, storeDir, port)
	waitBanner(t, p.stdout, p.stderr, p.done, func() error { return p.waitErr })
	testkit.CheckFor(t, 5*time.Second, func() error {
		if !strings.Contains(p.stderr.String(), "SIGHUP: nothing to reload") {
			return errors.New("the early SIGHUP was not handled after start")
		}
		return nil
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr.String())
	}
}
