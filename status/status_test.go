package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/status"
)

// hostile is a snapshot whose attacker-influenced strings try to break out
// of the markup.
func hostile(now time.Time) *status.Snapshot {
	return &status.Snapshot{
		GeneratedAt: now,
		Ready:       false,
		Degraded:    "stream GRAPH is full",
		Standing:    &status.Standing{State: "slow", SlowRatio: 0.125, FailureRatio: 0.02, Requests: 800, Window: 10 * time.Minute},
		Subscriptions: []status.Subscription{
			{
				ID:               "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
				Resource:         `users/<script>alert(1)</script>/messages`,
				ChangeTypes:      []string{"created", "updated"},
				ExpiresAt:        now.Add(50*time.Hour + 30*time.Minute),
				LastNotification: now.Add(-90 * time.Second),
				LastRenewal:      now.Add(-2 * time.Hour),
				LastOutcome:      "ok",
				Events:           []status.Event{{At: now.Add(-time.Hour), Kind: "reauthorizationRequired"}},
				Gaps:             []status.Gap{{Start: now.Add(-3 * time.Hour), End: now.Add(-170 * time.Minute), Reason: "subscriptionRemoved"}},
			},
			{
				ID:          `"><img src=x onerror=alert(2)>`,
				Resource:    "communications/presences/u1",
				ChangeTypes: []string{"updated"},
				ExpiresAt:   now.Add(-5 * time.Minute),
				LastOutcome: "forbidden",
			},
		},
		Quarantine: []status.Quarantine{{Stream: "GRAPH_REJECTED", Reason: "clientState", Messages: 12, Latest: now.Add(-time.Minute)}},
		Streams: []status.Stream{
			{Name: "GRAPH", Messages: 1042, Bytes: 2 << 20, Replicas: 3, Consumers: []status.Consumer{{Name: "billing", Pending: 17, AckPending: 2}}},
			{Name: "GRAPH_REJECTED", Messages: 12, Bytes: 4096, Replicas: 1},
		},
	}
}

func serve(t *testing.T, snap *status.Snapshot) *httptest.Server {
	t.Helper()
	h := status.Handler(func(context.Context) (*status.Snapshot, error) { return snap, nil })
	mux := http.NewServeMux()
	mux.Handle("/status", h)
	mux.Handle("/status.json", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestStatusJSONServesTheSnapshot(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	srv := serve(t, hostile(now))
	resp, body := get(t, srv.URL+"/status.json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var got status.Snapshot
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Subscriptions) != 2 || got.Subscriptions[0].Resource != `users/<script>alert(1)</script>/messages` {
		t.Fatalf("subscriptions = %+v", got.Subscriptions)
	}
	if !got.GeneratedAt.Equal(now) || got.Standing.State != "slow" || got.Streams[0].Consumers[0].Pending != 17 {
		t.Fatalf("snapshot = %+v", got)
	}
}

func TestStatusHTMLEscapesAttackerStrings(t *testing.T) {
	srv := serve(t, hostile(time.Now()))
	resp, body := get(t, srv.URL+"/status")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type = %q", ct)
	}
	for _, raw := range []string{"<script>alert(1)", `"><img`, "<img src=x"} {
		if strings.Contains(body, raw) {
			t.Fatalf("page holds unescaped %q", raw)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("resource not shown escaped")
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "<script") {
		t.Fatal("page loads an external asset or a script")
	}
}

func TestStatusAnswersSourceFailureWith503(t *testing.T) {
	h := status.Handler(func(context.Context) (*status.Snapshot, error) { return nil, errors.New("bucket unavailable") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "bucket unavailable") {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: got %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}
