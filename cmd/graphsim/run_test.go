package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// receiver answers handshakes and counts notifications.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	items []graphsim.Notification
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tok := req.URL.Query().Get("validationToken"); tok != "" {
			io.WriteString(w, tok)
			return
		}
		var c graphsim.Collection
		if err := json.NewDecoder(req.Body).Decode(&c); err != nil {
			w.WriteHeader(400)
			return
		}
		r.mu.Lock()
		r.items = append(r.items, c.Value...)
		r.mu.Unlock()
		w.WriteHeader(202)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestServeAndDriveTheSimulator(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var serveOut testkit.SyncBuffer
	done := make(chan error, 1)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	go func() {
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--time-scale", "0.001", "--ca-file", caFile, "--client-secret", "cli-app-secret"}, env(nil), &serveOut, io.Discard)
	}()
	var simURL string
	re := regexp.MustCompile(`listening on (https://\S+)`)
	testkit.CheckFor(t, 10*time.Second, func() error {
		m := re.FindStringSubmatch(serveOut.String())
		if m == nil {
			return fmt.Errorf("no address yet: %q", serveOut.String())
		}
		simURL = m[1]
		return nil
	})
	if !strings.Contains(serveOut.String(), "ca:     "+caFile) {
		t.Errorf("serve does not name the CA file:\n%s", serveOut.String())
	}
	getenv := env(map[string]string{"GRAPHSIM_URL": simURL, "GRAPHSIM_CA": caFile, "GRAPH_CLIENT_STATE": "cli-secret", "GRAPHSIM_CLIENT_SECRET": "cli-app-secret"})
	rcv := newReceiver(t)
	key, err := decrypt.GenerateKey(2048, "cli", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: key.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	exec := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, args, getenv, &out, &errOut); err != nil {
			t.Fatalf("graphsim %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}

	if tok := exec("token"); strings.Count(tok, ".") != 2 {
		t.Errorf("token output %q is not a JWT", tok)
	}
	var sub graphsim.Subscription
	out := exec("subscribe", "--notification-url", rcv.URL+"/n", "--lifecycle-url", rcv.URL+"/l", "--resource", "users/u1/messages", "--change-type", "created")
	if err := json.Unmarshal([]byte(out), &sub); err != nil || sub.ID == "" || sub.ClientState != "cli-secret" {
		t.Fatalf("subscribe output %q: %v", out, err)
	}
	rich := exec("subscribe", "--notification-url", rcv.URL+"/rich", "--resource", "users/u1/events", "--change-type", "created", "--cert", certFile, "--cert-id", "k1")
	if !strings.Contains(rich, `"includeResourceData": true`) {
		t.Errorf("rich subscribe output %s", rich)
	}
	out = exec("change", "--count", "3", "--wait", "10s")
	if !strings.Contains(out, "queued 6 notifications in 2 batches for 2 subscriptions") || strings.Count(out, "delivered") != 2 {
		t.Errorf("change output:\n%s", out)
	}
	if rcv.count() != 6 {
		t.Errorf("receiver got %d notifications, want 6", rcv.count())
	}
	if out := exec("lifecycle", "--subscription", sub.ID, "--event", "missed"); !strings.Contains(out, "queued missed") {
		t.Errorf("lifecycle output %q", out)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if rcv.count() != 7 {
			return fmt.Errorf("%d notifications", rcv.count())
		}
		return nil
	})
	if out := exec("deliveries"); !strings.Contains(out, "lifecycle") || !strings.Contains(out, "ENDPOINT") || !strings.Contains(out, "normal") {
		t.Errorf("deliveries output:\n%s", out)
	}
	var dr graphsim.DeliveriesReport
	if err := json.Unmarshal([]byte(exec("deliveries", "--json")), &dr); err != nil || len(dr.Deliveries) != 3 {
		t.Errorf("deliveries --json: %v, %d deliveries", err, len(dr.Deliveries))
	}

	var rep LoadReport
	if err := json.Unmarshal([]byte(exec("load", "--url", rcv.URL+"/load", "--requests", "10", "--batch", "2", "--json")), &rep); err != nil || rep.Notifications != 20 {
		t.Errorf("load --json: %+v %v", rep, err)
	}
	out = exec("load", "--sim", simURL, "--url", rcv.URL+"/load", "--rich", "--cert", certFile, "--requests", "3", "--rate", "100")
	if !strings.Contains(out, "notifications: 3 ") || !strings.Contains(out, "rich") {
		t.Errorf("load --sim output:\n%s", out)
	}

	if out := exec("advance", "--by", "3h"); !strings.Contains(out, "simulated time is now") {
		t.Errorf("advance output %q", out)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"bad flag", []string{"change", "--nope"}},
		{"load without url", []string{"load"}},
		{"subscribe without url", []string{"subscribe"}},
		{"lifecycle without subscription", []string{"lifecycle"}},
		{"stray argument", []string{"deliveries", "extra"}},
		{"advance without by", []string{"advance"}},
		{"bad max lifetime", []string{"serve", "--max-lifetime", "message"}},
		{"bad app", []string{"serve", "--app", "no-secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(t.Context(), tc.args, env(nil), io.Discard, &stderr)
			if !errors.Is(err, errUsage) || exitCode(err) != 2 {
				t.Fatalf("err %v (exit %d), want usage error", err, exitCode(err))
			}
			if stderr.Len() == 0 {
				t.Error("nothing printed to stderr")
			}
		})
	}
}

func TestCommandErrorsCarryGraphMessages(t *testing.T) {
	sim, err := graphsim.New(graphsim.Config{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	u, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = run(t.Context(), []string{"lifecycle", "--sim", u, "--subscription", "nope"}, env(nil), io.Discard, io.Discard)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("lifecycle on unknown subscription: %v", err)
	}
	err = run(t.Context(), []string{"change", "--sim", u}, env(nil), io.Discard, io.Discard)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "graphsim keeps subscriptions in memory; subscribe again") {
		t.Errorf("change without subscriptions: %v", err)
	}
	err = run(t.Context(), []string{"subscribe", "--sim", u, "--notification-url", "http://127.0.0.1:1/closed"},
		env(map[string]string{"GRAPHSIM_CLIENT_SECRET": sim.Config().ClientSecret}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Subscription validation request failed") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("subscribe to closed port: %v", err)
	}
}

// serveFor runs "graphsim serve args..." until the returned stop is
// called, and returns its base URL.
func serveFor(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), env(nil), &out, io.Discard)
	}()
	re := regexp.MustCompile(`listening on (https?://\S+)`)
	var u string
	testkit.CheckFor(t, 10*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, out.String())
		default:
		}
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("no address yet: %q", out.String())
		}
		u = m[1]
		return nil
	})
	return u, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

// TestStateFileSurvivesARestart: with --state-file a subscription made
// before a restart still receives changes after it.
func TestStateFileSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--ca-file", filepath.Join(dir, "ca.pem"), "--client-secret", "s", "--state-file", filepath.Join(dir, "state.json")}
	rcv := newReceiver(t)
	u, stop := serveFor(t, args...)
	getenv := env(map[string]string{"GRAPHSIM_URL": u, "GRAPHSIM_CA": args[1], "GRAPHSIM_CLIENT_SECRET": "s", "GRAPH_CLIENT_STATE": "cs"})
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"subscribe", "--notification-url", rcv.URL + "/n", "--resource", "users/u1/messages"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("subscribe: %v %s", err, errOut.String())
	}
	stop()
	if fi, err := os.Stat(filepath.Join(dir, "state.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	u, stop = serveFor(t, args...) // a new CA, the same subscriptions
	defer stop()
	getenv = env(map[string]string{"GRAPHSIM_URL": u, "GRAPHSIM_CA": args[1]})
	out.Reset()
	if err := run(t.Context(), []string{"change", "--wait", "10s"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("change after restart: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "queued 1 notifications in 1 batches for 1 subscriptions") || rcv.count() != 1 {
		t.Errorf("change after restart: %s (receiver got %d)", out.String(), rcv.count())
	}
}

// TestHelpShowsNoSecrets: flag defaults printed by -h never carry a
// secret taken from the environment.
func TestHelpShowsNoSecrets(t *testing.T) {
	for _, cmd := range []string{"serve", "token", "subscribe", "load"} {
		var stderr bytes.Buffer
		getenv := env(map[string]string{"GRAPHSIM_CLIENT_SECRET": "env-secret-1", "GRAPH_CLIENT_STATE": "env-secret-2"})
		run(t.Context(), []string{cmd, "-h"}, getenv, io.Discard, &stderr)
		if strings.Contains(stderr.String(), "env-secret") {
			t.Errorf("%s -h prints a secret:\n%s", cmd, stderr.String())
		}
	}
}
