package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
)

// binDir holds the receiver binary built for this test run; TestMain
// creates and removes it.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "receiver-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds the receiver once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "receiver")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

var (
	notificationsRe = regexp.MustCompile(`notifications: (https?://\S+?)/notifications`)
	natsRe          = regexp.MustCompile(`embedded server at (nats://\S+),`)
	opsRe           = regexp.MustCompile(`operations: +(https?://\S+?)/healthz`)
)

// endpoints are the addresses a started receiver printed.
type endpoints struct {
	base string // http://127.0.0.1:port
	nats string // nats://127.0.0.1:port, for the embedded server
	ops  string // where /healthz, /readyz and /metrics are
}

// waitBanner waits for the start-up banner on out and returns the
// addresses in it. done reports an early exit.
func waitBanner(t testing.TB, out, errOut *testkit.SyncBuffer, done <-chan struct{}, exitErr func() error) endpoints {
	t.Helper()
	var ep endpoints
	testkit.CheckFor(t, 30*time.Second, func() error {
		select {
		case <-done:
			t.Fatalf("receiver exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", exitErr(), out.String(), errOut.String())
		default:
		}
		s := out.String()
		m := notificationsRe.FindStringSubmatch(s)
		if m == nil {
			return fmt.Errorf("no banner yet")
		}
		ep.base = m[1]
		if o := opsRe.FindStringSubmatch(s); o != nil {
			ep.ops = o[1]
		}
		if n := natsRe.FindStringSubmatch(s); n != nil {
			ep.nats = n[1]
		}
		return nil
	})
	return ep
}

// inProcess is a receiver run by run() in this process.
type inProcess struct {
	endpoints
	stdout, stderr *testkit.SyncBuffer
	cancel         context.CancelFunc
	done           chan struct{}
	err            error
}

// startInProcess runs run(args) until the test ends (or stop is called)
// and waits for its banner.
func startInProcess(t testing.TB, args []string, env map[string]string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	p := &inProcess{stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, cancel: cancel, done: make(chan struct{})}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	go func() {
		defer close(p.done)
		p.err = run(ctx, args, lookupEnv, p.stdout, p.stderr)
	}()
	t.Cleanup(func() { p.stop(t) })
	p.endpoints = waitBanner(t, p.stdout, p.stderr, p.done, func() error { return p.err })
	return p
}

// stop cancels the receiver and waits for run to return.
func (p *inProcess) stop(t testing.TB) error {
	t.Helper()
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return 30 s after cancel")
	}
	return p.err
}

// baseArgs returns flags that keep a test receiver on loopback, on free
// ports, with its data in a fresh directory.
func baseArgs(dataDir string, more ...string) []string {
	return append([]string{
		"--listen", "127.0.0.1:0",
		"--embedded-nats-listen", "127.0.0.1:0",
		"--data-dir", dataDir,
	}, more...)
}

// post sends body as a notification POST and returns the status.
func post(ctx context.Context, client *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// get returns the status and body of a GET.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metricValue returns the value of the sample line starting with series
// (name and labels exactly as exposed) in a Prometheus text exposition.
func metricValue(exposition, series string) (string, bool) {
	for line := range strings.SplitSeq(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// noEnv is an empty environment, for run and loadConfig.
func noEnv(string) (string, bool) { return "", false }

// embeddedURL returns natsURL (nats://host:port, as the banner prints it)
// with the token of the embedded server in dataDir, in the form the
// banner and README tell users to type: nats://TOKEN@host:port.
func embeddedURL(t testing.TB, natsURL, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, defaultNATSTokenFile))
	if err != nil {
		t.Fatalf("the embedded server's token: %v", err)
	}
	return "nats://" + strings.TrimSpace(string(b)) + "@" + strings.TrimPrefix(natsURL, "nats://")
}
