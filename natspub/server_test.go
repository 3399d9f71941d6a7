package natspub_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/nats-io/nats.go"
)

func TestStartServer(t *testing.T) {
	dir := t.TempDir()
	var logs testkit.SyncBuffer
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: dir, Port: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.JetStreamEnabled() || !strings.HasPrefix(ns.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("server: JetStream %v, URL %s", ns.JetStreamEnabled(), ns.ClientURL())
	}
	if !strings.Contains(logs.String(), "JetStream") {
		t.Errorf("server notices not logged: %q", logs.String())
	}
	nc := natstest.Connect(t, ns.ClientURL())
	if mp := nc.MaxPayload(); mp != natspub.DefaultServerMaxPayload {
		t.Errorf("MaxPayload = %d, want %d", mp, natspub.DefaultServerMaxPayload)
	}
	p := newPublisher(t, nc, natspub.Config{})
	if err := p.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}

	t.Run("port in use", func(t *testing.T) {
		port := natstest.Port(t, ns)
		_, err := natspub.StartServer(natspub.ServerConfig{StoreDir: t.TempDir(), Port: port})
		if !errors.Is(err, natspub.ErrServerStart) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("StartServer on a busy port = %v, want ErrServerStart and EADDRINUSE", err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(port)) {
			t.Errorf("error %q does not name the port", err)
		}
	})
	t.Run("no store dir", func(t *testing.T) {
		if _, err := natspub.StartServer(natspub.ServerConfig{Port: -1}); !errors.Is(err, natspub.ErrInvalidConfig) {
			t.Errorf("StartServer without StoreDir = %v", err)
		}
	})
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var logs testkit.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	key := testkit.DecryptKey(t, certID)
	dir := t.TempDir()
	ns := natstest.RunServer(t, dir, -1)
	nc := natstest.Connect(t, ns.ClientURL())
	e := newEnv(t, nc, key, natspub.Config{Logger: log})
	e.mustPost(t, body(t, []string{"tok"}, richItem(t, key, plaintext), basicItem("x", "created", "r", "")))
	ns.Shutdown()
	ns.WaitForShutdown()
	e.post(t, body(t, []string{"tok"}, richItem(t, key, plaintext)))
	for _, s := range []string{secret, "top secret"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs contain %q:\n%s", s, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "batch not published") || !strings.Contains(logs.String(), "stream ready") {
		t.Errorf("expected log lines missing:\n%s", logs.String())
	}
}

func TestNewWarnsWhenServerPayloadIsBelowBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPayload int32
		wantWarn   bool
	}{
		{"stock 1 MiB server", 1 << 20, true},
		{"embedded default", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := natspub.StartServer(natspub.ServerConfig{StoreDir: t.TempDir(), Port: -1, MaxPayload: tc.maxPayload})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			var logs bytes.Buffer
			pub, err := natspub.New(t.Context(), natspub.Config{Conn: nc, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			if got := strings.Contains(logs.String(), "max_payload"); got != tc.wantWarn {
				t.Errorf("warning logged = %v, want %v:\n%s", got, tc.wantWarn, logs.String())
			}
		})
	}
}

func TestStartServerRequiresTheToken(t *testing.T) {
	srv, err := natspub.StartServer(natspub.ServerConfig{StoreDir: t.TempDir(), Port: -1, Token: "s3cret-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without the token connected")
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.Token("s3cret-token-0123456789"))
	if err != nil {
		t.Fatalf("with the token: %v", err)
	}
	nc.Close()
}
