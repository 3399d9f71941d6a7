package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/status"
	"github.com/graphhook/graphhook/subscriptions"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a notificationUrl the config file must name before the start.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// subscriptionsDoc is the guide whose examples these tests keep true.
var subscriptionsDoc = filepath.Join("..", "..", "docs", "subscriptions.md")

// docYAML returns the first yaml block after marker in the guide.
func docYAML(t *testing.T, marker string) string {
	t.Helper()
	return fileYAML(t, subscriptionsDoc, marker)
}

// fileYAML returns the first yaml block after marker in the file at path.
func fileYAML(t *testing.T, path, marker string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("%s lacks %s", path, marker)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("%s has no yaml block after %q", path, marker)
	}
	return block
}

// TestSubscriptionsSectionOfTheGuideLoads checks the guide's example
// section against the decoder (every key known, every value typed) and
// the problems of a bad section: each names the key as written, says
// what is right, and never shows a secret.
func TestSubscriptionsSectionOfTheGuideLoads(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig([]string{"--config", writeFile(t, dir, "receiver.yaml", docYAML(t, "## 1. The section"))}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Subscriptions
	if s == nil || len(s.Desired) != 2 || s.Desired[1].MaxLifetime != 48*time.Hour || !s.Desired[1].IncludeResourceData || s.Desired[0].ChangeType != "created,updated" {
		t.Fatalf("section decoded as %+v", s)
	}
	c, err = loadConfig([]string{"--config", writeFile(t, dir, "readme.yaml", fileYAML(t, readmePath, "## Keeping subscriptions alive"))}, noEnv)
	if err != nil || c.Subscriptions == nil || len(c.Subscriptions.Desired) != 1 || c.Subscriptions.ClientSecretFile == "" {
		t.Fatalf("the README's section: %v, %+v", err, c)
	}

	const inline = "inline-client-state-Hunter2"
	for _, tc := range []struct {
		name, section string
		wantErr       error
		wantPrefix    string // after the file name
	}{
		{"unknown key", "  tenantID: x\n  clientSecret: " + inline + "\n", errConfig, " line 1: subscriptions: has keys the section does not know"},
		{"bad duration", "  desired:\n    - resource: users/1/messages\n      maxLifetime: soon\n      clientState: [" + inline + "]\n", errConfig, " line 1: subscriptions: subscriptions.desired[0]"},
		{"bad cloud", "  cloud: mars\n", errConfig, ": subscriptions.cloud: \"mars\" is not global"},
		{"missing secret file", "  tenantId: t\n  clientId: c\n  clientSecretFile: " + filepath.Join(dir, "absent") + "\n", fs.ErrNotExist, ": subscriptions.clientSecretFile: cannot read "},
		{"secret missing", "  tenantId: t\n  clientId: c\n  credential: client-secret\n", subscriptions.ErrRequired, ": subscriptions.clientSecretFile: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), "receiver.yaml", "subscriptions:\n"+tc.section)
			args := []string{"--config", file, "--data-dir", t.TempDir(), "--client-state", "a-long-enough-client-state-value"}
			c, err := loadConfig(args, noEnv)
			if err == nil {
				var ps problems
				_, ps = c.loadSubs(noEnv, nil)
				err = ps.err()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, file+tc.wantPrefix) || !strings.Contains(msg, "example") || strings.Contains(msg, "\n") {
				t.Errorf("error:\n%s\nwant one line starting with %q and an example", msg, file+tc.wantPrefix)
			}
			if strings.Contains(msg, "Hunter2") {
				t.Errorf("the error shows a secret: %s", msg)
			}
		})
	}
}

// TestBadDesiredSubscriptionStopsTheStart: the subscriptions package's
// rules (checked when the manager is created, once NATS is up) come back
// as one line naming the section's key, with an example.
func TestBadDesiredSubscriptionStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "receiver.yaml", `subscriptions:
  tenantId: 84bd8158-6d4d-4958-8b9f-9d6445542f95
  clientId: 5f6b5c4e-1d1f-4a4e-9c7d-7a6f2b0c9e11
  credential: managed-identity
  desired:
    - resource: users/42/messages
      changeType: created
      notificationUrl: http://127.0.0.1:8080/notifications
    - resource: users/42/events
      changeType: edited
      notificationUrl: http://127.0.0.1:8080/notifications
`)
	var stdout testkit.SyncBuffer
	err := run(t.Context(), baseArgs(dir, "--config", file, "--client-state", "a-long-enough-client-state-value"), noEnv, &stdout, &testkit.SyncBuffer{})
	if !errors.Is(err, subscriptions.ErrBadValue) {
		t.Fatalf("err = %v, want errors.Is subscriptions.ErrBadValue", err)
	}
	want := file + ": subscriptions.desired[1].changeType: "
	if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.Contains(msg, "example: changeType: created,updated") || strings.Contains(msg, "\n") {
		t.Errorf("error:\n%s\nwant one line starting with %q and an example", msg, want)
	}
	if strings.Contains(stdout.String(), "is running") {
		t.Error("the receiver started")
	}
}

// streamMsgs returns how many messages stream holds.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// walkthroughGraph starts graphsim over TLS with a registered app and returns
// it, a data directory, the notification listener's address, and the
// configuration of docs/subscriptions.md's walk-through on this test's
// ports and files (the app's secret and graphsim's CA written into dir).
func walkthroughGraph(t *testing.T) (sim *graphsim.Sim, dir, addr, yaml string) {
	t.Helper()
	const secret = "graph-app-secret-42"
	sim, err := graphsim.New(graphsim.Config{ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	gURL, _, err := sim.StartTLS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := sim.CACertPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir, addr = t.TempDir(), freeAddr(t)
	yaml = strings.NewReplacer(
		"https://127.0.0.1:9090", gURL,
		"127.0.0.1:8080", addr,
		"graphsim-client-secret", writeFile(t, dir, "graph-secret", secret+"\n"),
		"graphsim-ca.pem", writeFile(t, dir, "graphsim-ca.pem", string(caPEM)),
	).Replace(docYAML(t, "<!-- walkthrough-config -->"))
	return sim, dir, addr, yaml
}

// TestSubscriptionsSectionEndToEnd runs the daemon with a subscriptions
// section against graphsim over TLS (azidentity unmodified, trusting
// graphsim's CA through caFile) and its embedded NATS server: the
// subscriptions are created on start, a notification is accepted with the
// bucket's clientState, --client-state still covers subscriptions the
// manager does not know, /status.json and "subscriptions list --json" show
// them, a mutating command refuses while the daemon holds the lease, and
// "subscriptions rotate-cert" PATCHes the rich one to the newest --key.
func TestSubscriptionsSectionEndToEnd(t *testing.T) {
	const staticState = "static-client-state-for-manual-subscriptions"
	sim, dir, addr, walk := walkthroughGraph(t)
	// The walk-through's configuration plus a rich subscription.
	yaml := walk + fmt.Sprintf(`    - resource: teams/1/channels/2/messages
      changeType: created
      notificationUrl: http://%s/notifications
      lifecycleNotificationUrl: http://%s/lifecycle
      includeResourceData: true
`, addr, addr)
	file := writeFile(t, dir, "receiver.yaml", yaml)
	key1 := pemKeyFile(t, dir, "key-1.pem")
	common := []string{"--listen", addr, "--data-dir", dir, "--embedded-nats-listen", freeAddr(t), "--config", file,
		"--client-state", staticState, "--insecure-skip-token-validation"}
	args := append([]string{"--key", key1 + ",id=key-1"}, common...)
	p := startInProcess(t, args, nil)
	ctx := t.Context()
	js, err := jetstream.New(natstest.Connect(t, embeddedURL(t, p.endpoints.nats, dir)))
	if err != nil {
		t.Fatal(err)
	}

	// Created on start, with a clientState of the manager's (not ours).
	var plain, rich graphsim.Subscription
	testkit.CheckFor(t, 20*time.Second, func() error {
		for _, s := range sim.Subscriptions() {
			switch s.Resource {
			case "users/42/messages":
				plain = s
			case "teams/1/channels/2/messages":
				rich = s
			}
		}
		if plain.ID == "" || rich.ID == "" {
			return fmt.Errorf("graphsim holds %d subscriptions, want both", len(sim.Subscriptions()))
		}
		return nil
	})
	if plain.ClientState == "" || plain.ClientState == staticState || rich.EncryptionCertificateID != "key-1" {
		t.Fatalf("created with clientState set %v (static: %v), certificate id %q; want a generated clientState and key-1",
			plain.ClientState != "", plain.ClientState == staticState, rich.EncryptionCertificateID)
	}

	// A change is delivered with the bucket's clientState and stored.
	if _, err := sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: plain.ID}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 10*time.Second, func() error {
		if n := streamMsgs(t, js, natspub.DefaultStream); n != 1 {
			return fmt.Errorf("%d messages in %s, want 1", n, natspub.DefaultStream)
		}
		return nil
	})

	// A subscription the manager does not know: --client-state still
	// applies, and a wrong clientState is quarantined as before.
	for _, tc := range []struct {
		name, state    string
		stream         string
		wantStreamMsgs uint64
	}{
		{"static clientState", staticState, natspub.DefaultStream, 2},
		{"wrong clientState", "not-the-client-state-of-anything", natspub.DefaultUnverifiedStream, 1},
	} {
		body, err := sim.Batch("", graphsim.Notification{
			SubscriptionID: "11111111-0000-0000-0000-00000000beef", SubscriptionExpirationDateTime: time.Now().Add(time.Hour).UTC().Format(graphsim.DateTimeLayout),
			ChangeType: "created", Resource: "users/7/messages/1", ClientState: tc.state, TenantID: graphsim.DefaultTenantID,
		})
		if err != nil {
			t.Fatal(err)
		}
		code, err := post(ctx, http.DefaultClient, p.endpoints.base+"/notifications", body)
		if err != nil || code != 202 {
			t.Fatalf("%s: status %d, %v; want 202", tc.name, code, err)
		}
		testkit.CheckFor(t, 10*time.Second, func() error {
			if n := streamMsgs(t, js, tc.stream); n != tc.wantStreamMsgs {
				return fmt.Errorf("%s: %d messages in %s, want %d", tc.name, n, tc.stream, tc.wantStreamMsgs)
			}
			return nil
		})
	}

	// /status.json lists the subscriptions with their expiry.
	testkit.CheckFor(t, 10*time.Second, func() error {
		code, body, err := get(ctx, p.endpoints.ops+"/status.json")
		if err != nil || code != 200 {
			return fmt.Errorf("status %d, %v", code, err)
		}
		var snap status.Snapshot
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			return err
		}
		for _, s := range snap.Subscriptions {
			if s.ID == plain.ID {
				if s.ExpiresAt.Sub(plain.ExpirationDateTime).Abs() > time.Microsecond || s.Resource != plain.Resource || s.LastNotification.IsZero() || len(s.Events) == 0 {
					return fmt.Errorf("status shows %+v; want expiry %v, the resource, the last notification and its create event", s, plain.ExpirationDateTime)
				}
				return nil
			}
		}
		return fmt.Errorf("status.json lists %d subscriptions, not %s", len(snap.Subscriptions), plain.ID)
	})

	// The manager's collectors are on /metrics.
	testkit.CheckFor(t, 10*time.Second, func() error {
		_, body, err := get(ctx, p.endpoints.ops+"/metrics")
		if err != nil {
			return err
		}
		if _, ok := metricValue(body, `graphhook_subscription_expiry_seconds{resource="users/42/messages",subscription_id="`+plain.ID+`"}`); !ok {
			return errors.New("no graphhook_subscription_expiry_seconds for the subscription on /metrics")
		}
		return nil
	})

	// The CLI, with the daemon's settings, lists them without clientStates.
	var out testkit.SyncBuffer
	if err := run(ctx, append([]string{"subscriptions", "list", "--json"}, args...), noEnv, &out, &testkit.SyncBuffer{}); err != nil {
		t.Fatalf("subscriptions list: %v", err)
	}
	var recs []subscriptions.Record
	if err := json.Unmarshal([]byte(out.String()), &recs); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out.String())
	}
	if len(recs) != 2 || strings.Contains(out.String(), plain.ClientState) {
		t.Fatalf("list --json shows %d records (want 2), clientState shown: %v", len(recs), strings.Contains(out.String(), plain.ClientState))
	}
	for _, r := range recs {
		if r.ID == plain.ID && r.Expiration.Sub(plain.ExpirationDateTime).Abs() > time.Microsecond {
			t.Errorf("list: expiration %v, want %v", r.Expiration, plain.ExpirationDateTime)
		}
	}

	// While the daemon holds the lease, a mutating command says so.
	err = run(ctx, append([]string{"subscriptions", "renew"}, args...), noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "holds the renewal lease") || !strings.Contains(err.Error(), "stop every daemon") {
		t.Fatalf("renew while the daemon runs: %v; want the lease message", err)
	}

	// SIGHUP reads the desired subscriptions again: a new one is created.
	grown := strings.Replace(yaml, "  desired:\n", fmt.Sprintf("  desired:\n    - resource: users/43/messages\n      changeType: deleted\n      notificationUrl: http://%s/notifications\n", addr), 1)
	writeFile(t, dir, "receiver.yaml", grown)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 20*time.Second, func() error {
		for _, s := range sim.Subscriptions() {
			if s.Resource == "users/43/messages" {
				return nil
			}
		}
		return fmt.Errorf("no subscription on users/43/messages after SIGHUP; log:\n%s", p.stderr.String())
	})

	// Graph removes a subscription: the daemon's manager, consuming the
	// lifecycle events the receiver published, recreates it within 5 s,
	// and /status.json shows the gap.
	if err := sim.Lifecycle(ctx, plain.ID, graphsim.EventSubscriptionRemoved); err != nil {
		t.Fatal(err)
	}
	var recreated string
	removedAt := time.Now()
	testkit.CheckFor(t, 5*time.Second, func() error {
		for _, s := range sim.Subscriptions() {
			if s.Resource == plain.Resource && s.ID != plain.ID {
				recreated = s.ID
				return nil
			}
		}
		return errors.New("the removed subscription was not recreated")
	})
	t.Logf("recreated %v after the removal", time.Since(removedAt).Round(time.Millisecond))
	testkit.CheckFor(t, 10*time.Second, func() error {
		_, body, err := get(ctx, p.endpoints.ops+"/status.json")
		if err != nil {
			return err
		}
		var snap status.Snapshot
		if err := json.Unmarshal([]byte(body), &snap); err != nil {
			return err
		}
		for _, s := range snap.Subscriptions {
			for _, g := range s.Gaps {
				if s.ID == recreated && g.Reason == subscriptions.GapRemoved && !g.End.Before(g.Start) && !g.End.IsZero() {
					return nil
				}
			}
		}
		return fmt.Errorf("status.json shows no closed subscriptionRemoved gap for %s", recreated)
	})

	// Stopped, the daemon frees the lease (and its embedded server the
	// store); rotate-cert moves the rich subscription to the newest --key
	// with a PATCH.
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	key2 := pemKeyFile(t, dir, "key-2.pem")
	rotate := append([]string{"subscriptions", "rotate-cert", "--key", key2 + ",id=key-2", "--key", key1 + ",id=key-1"}, common...)
	var errOut testkit.SyncBuffer
	out = testkit.SyncBuffer{}
	if err := run(ctx, rotate, noEnv, &out, &errOut); err != nil {
		t.Fatalf("rotate-cert: %v", err)
	}
	if !strings.Contains(errOut.String(), "opening the embedded server's store") {
		t.Errorf("rotate-cert without a daemon does not say it opened the store itself: %q", errOut.String())
	}
	certID := "(gone)"
	for _, s := range sim.Subscriptions() {
		if s.ID == rich.ID {
			certID = s.EncryptionCertificateID
		}
	}
	if certID != "key-2" { // the same subscription, PATCHed: not recreated
		t.Errorf("after rotate-cert subscription %s has certificate id %q, want key-2", rich.ID, certID)
	}
	if !strings.Contains(out.String(), "key-2") || !strings.Contains(out.String(), "EXPIRES IN") {
		t.Errorf("rotate-cert table:\n%s", out.String())
	}
}
