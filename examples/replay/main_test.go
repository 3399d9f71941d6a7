package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	tenant      = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	otherTenant = "0b1e5d8a-2f4c-4c59-9a43-6f3d1c2e7b90"
)

func TestReplayAfterConfigurationFix(t *testing.T) {
	ns, nc := natstest.Start(t)
	pub, err := natspub.New(t.Context(), natspub.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	key := testkit.DecryptKey(t, "cert-1")
	ring := testkit.KeyRing(t, key)
	serve := func(cfg receiver.Config) *httptest.Server {
		cfg.Sink = pub
		cfg.InsecureSkipTokenValidation = true
		r, err := receiver.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewServer(r)
		t.Cleanup(s.Close)
		return s
	}
	// Before the fix: the decryption key is missing and a rotated
	// clientState is not yet configured.
	before := serve(receiver.Config{ClientStates: []string{"s1"}})
	after := serve(receiver.Config{ClientStates: []string{"s1", "s2"}, Keys: ring})

	rich := func(sub, text string) map[string]any {
		ec, err := graphsim.Encrypt(key.Certificate, key.ID, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"subscriptionId": sub, "changeType": "created", "clientState": "s1", "tenantId": tenant,
			"resource": "chats('1')/messages('" + sub + "')", "encryptedContent": ec}
	}
	basic := map[string]any{"id": "b1", "subscriptionId": "sub-b", "changeType": "updated", "clientState": "s2", "tenantId": tenant, "resource": "users/u1"}
	postTo(t, before.URL, map[string]any{"value": []any{rich("sub-r1", `{"text":"one"}`), basic}, "validationTokens": []string{"tokA"}})
	postTo(t, before.URL, map[string]any{"value": []any{rich("sub-r2", `{"text":"two"}`)}, "validationTokens": []string{"tokB"}})
	// Two tenants' items rejected together: one message on tenant "_".
	basicOf := func(id, tenantID string) map[string]any {
		return map[string]any{"id": id, "subscriptionId": "sub-b", "changeType": "updated", "clientState": "s2", "tenantId": tenantID, "resource": "users/" + id}
	}
	postTo(t, before.URL, map[string]any{"value": []any{basicOf("b2", tenant), basicOf("b3", otherTenant)}})

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	count := func(stream string) int {
		s, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return int(info.State.Msgs)
	}
	// Both quarantine streams: items that passed clientState, and the
	// rest (natspub keeps them apart).
	quarantine := func() int { return count(natspub.DefaultQuarantineStream) + count(natspub.DefaultUnverifiedStream) }
	if q, g := quarantine(), count(natspub.DefaultStream); q != 4 || g != 0 {
		t.Fatalf("before replay: quarantine %d, events %d; want 4, 0", q, g)
	}

	replay := func(t *testing.T, url string, args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"--nats-url", ns.ClientURL(), "--url", url}, args...), &out)
		return out.String(), err
	}
	t.Run("decrypt", func(t *testing.T) {
		out, err := replay(t, after.URL, "--reason", "decrypt")
		if err != nil {
			t.Fatal(err)
		}
		// Items with different validationTokens go in separate requests:
		// had the tokens been lost, the rich items would be rejected again
		// as token_missing.
		if !strings.Contains(out, "replayed 2 items") || !strings.Contains(out, "in 2 requests") {
			t.Errorf("output = %q", out)
		}
		if g := count(natspub.DefaultStream); g != 2 {
			t.Fatalf("events after replay = %d, want 2", g)
		}
		s, _ := js.Stream(t.Context(), natspub.DefaultStream)
		m, err := s.GetLastMsgForSubject(t.Context(), "graph.notifications."+tenant+".sub-r2.created")
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Content map[string]string }
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Content["text"] != "two" {
			t.Errorf("replayed event = %s", m.Data)
		}
	})
	t.Run("again is deduplicated", func(t *testing.T) {
		if _, err := replay(t, after.URL, "--reason", "decrypt"); err != nil {
			t.Fatal(err)
		}
		if g := count(natspub.DefaultStream); g != 2 {
			t.Errorf("events = %d, want still 2", g)
		}
	})
	t.Run("client_state by tenant", func(t *testing.T) {
		// b1 from its tenant's message, b2 out of the mixed one; not b3.
		out, err := replay(t, after.URL, "--reason", "client_state", "--tenant", tenant)
		if err != nil || !strings.Contains(out, "replayed 2 items") || !strings.Contains(out, "in 2 requests") {
			t.Fatalf("replay = %q, %v", out, err)
		}
		if g := count(natspub.DefaultStream); g != 4 {
			t.Errorf("events = %d, want 4", g)
		}
		s, _ := js.Stream(t.Context(), natspub.DefaultStream)
		if _, err := s.GetLastMsgForSubject(t.Context(), "graph.notifications."+otherTenant+".>"); err == nil {
			t.Error("an item of another tenant was replayed")
		}
	})
	t.Run("still rejected stays quarantined once", func(t *testing.T) {
		if _, err := replay(t, before.URL); err != nil {
			t.Fatal(err)
		}
		if q := quarantine(); q != 4 {
			t.Errorf("quarantine = %d, want 4", q)
		}
	})
	t.Run("bodies are posted as quarantined", func(t *testing.T) {
		var mu sync.Mutex
		var got [][]byte
		rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, b)
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
		}))
		defer rec.Close()
		if _, err := replay(t, rec.URL, "--reason", "decrypt"); err != nil {
			t.Fatal(err)
		}
		s, _ := js.Stream(t.Context(), natspub.DefaultQuarantineStream)
		m, err := s.GetLastMsgForSubject(t.Context(), "graph.rejected.decrypt."+tenant)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || !bytes.Equal(got[1], m.Data) {
			t.Errorf("posted %q, want the last one to be %s", got, m.Data)
		}
	})
	t.Run("messages written before collections", func(t *testing.T) {
		old := nats.NewMsg("graph.rejected.token_missing." + tenant)
		old.Data, _ = json.Marshal(basicOf("b4", tenant))
		old.Header.Set("graphhook-reason", "token_missing")
		old.Header.Add("graphhook-validation-token", "tokC")
		if _, err := js.PublishMsg(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var body []byte
		rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			body, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusAccepted)
		}))
		defer rec.Close()
		if _, err := replay(t, rec.URL, "--reason", "token_missing"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := `{"value":[` + string(old.Data) + `],"validationTokens":["tokC"]}`; string(body) != want {
			t.Errorf("posted %s, want %s", body, want)
		}
	})
	t.Run("receiver unavailable", func(t *testing.T) {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "sink down", http.StatusServiceUnavailable)
		}))
		defer down.Close()
		if _, err := replay(t, down.URL, "--reason", "decrypt"); err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("replay to a 503 receiver = %v", err)
		}
	})
	t.Run("nothing to replay", func(t *testing.T) {
		out, err := replay(t, after.URL, "--reason", "token_invalid")
		if err != nil || !strings.Contains(out, "replayed 0 items") {
			t.Errorf("replay = %q, %v", out, err)
		}
	})
	t.Run("redirect is refused", func(t *testing.T) {
		var mu sync.Mutex
		reached := 0
		final := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			reached++
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
		}))
		defer final.Close()
		redirect := httptest.NewServer(http.RedirectHandler(final.URL, http.StatusTemporaryRedirect))
		defer redirect.Close()
		_, err := replay(t, redirect.URL, "--reason", "decrypt")
		if err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("replay to a redirect = %v, want refused", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if reached != 0 {
			t.Errorf("the redirect target received %d bodies holding clientStates and tokens", reached)
		}
	})
	t.Run("plain http beyond loopback warns", func(t *testing.T) {
		for _, tc := range []struct {
			url      string
			wantWarn bool
		}{
			{"http://hooks.example.com/notifications", true},
			{"http://127.0.0.1:1/notifications", false},
			{"http://localhost:1/notifications", false},
			{"https://hooks.example.com/notifications", false},
		} {
			out, err := replay(t, tc.url, "--reason", "token_invalid") // nothing to replay: no POST
			if err != nil {
				t.Fatalf("%s: %v", tc.url, err)
			}
			if got := strings.Contains(out, "warning: --url is plain http"); got != tc.wantWarn {
				t.Errorf("%s: warning %v, want %v (output %q)", tc.url, got, tc.wantWarn, out)
			}
		}
	})
	t.Run("not an http URL", func(t *testing.T) {
		if _, err := replay(t, "ftp://hooks.example.com/", "--reason", "decrypt"); err == nil {
			t.Error("replay accepted an ftp URL")
		}
	})
	t.Run("no url", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"--nats-url", ns.ClientURL()}, &out); err == nil {
			t.Error("run without --url succeeded")
		}
	})
}

// TestReplayWithoutTokenSaysWhereItIs connects to a server that, like the
// receiver's embedded one, requires a token.
func TestReplayWithoutTokenSaysWhereItIs(t *testing.T) {
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: t.TempDir(), Port: -1, Token: "a-token-of-the-embedded-server"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	err = run(t.Context(), []string{"--nats-url", ns.ClientURL(), "--url", "http://127.0.0.1:1/n"}, &bytes.Buffer{})
	if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "data/nats-token") {
		t.Fatalf("run = %v, want an authorization error naming data/nats-token", err)
	}
}

func postTo(t *testing.T, url string, coll any) {
	t.Helper()
	b, err := json.Marshal(coll)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
}
