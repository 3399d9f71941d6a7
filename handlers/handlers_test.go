package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/graphhook/graphhook/handlers"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

const secret = "secretClientValue"

// recorder is a Sink that records every batch, or fails after Fail.
type recorder struct {
	testkit.Recorder[*receiver.Batch]
}

func (s *recorder) Deliver(ctx context.Context, b *receiver.Batch) error {
	return s.Record(b)
}

func start(t *testing.T, sink receiver.Sink, cfg handlers.Config) string {
	t.Helper()
	r, err := receiver.New(receiver.Config{ClientStates: []string{secret}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HideBanner = true
	handlers.Register(e, r, cfg)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

func do(t *testing.T, method, u, contentType, body string) (*http.Response, string) {
	t.Helper()
	resp, b := testkit.Do(t, method, u, contentType, []byte(body))
	return resp, string(b)
}

const batch = `{"value":[{"subscriptionId":"s1","clientState":"secretClientValue","changeType":"created","resource":"me/messages/1","tenantId":"t1"},
 {"subscriptionId":"s1","clientState":"secretClientValue","lifecycleEvent":"missed","tenantId":"t1"}]}`

func TestRegisterAnswersHandshakeOnBothPaths(t *testing.T) {
	u := start(t, &recorder{}, handlers.Config{})
	for _, p := range []string{"/notifications", "/lifecycle"} {
		resp, body := do(t, http.MethodPost, u+p+"?validationToken=a%2Bb+c%3Cscript%3E", "text/plain; charset=utf-8", "")
		if resp.StatusCode != http.StatusOK || body != "a+b c<script>" {
			t.Errorf("%s: %d %q, want 200 %q", p, resp.StatusCode, body, "a+b c<script>")
		}
		if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
	}
}

func TestRegisterDeliversBatchWithQuery(t *testing.T) {
	sink := &recorder{}
	u := start(t, sink, handlers.Config{NotificationPath: "/graph", LifecyclePath: "/graph"})
	resp, body := do(t, http.MethodPost, u+"/graph?tenant=contoso", "application/json", batch)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if len(sink.All()) != 1 || len(sink.All()[0].Notifications) != 2 {
		t.Fatalf("batches = %v", sink.All())
	}
	b := sink.All()[0]
	if b.Query.Get("tenant") != "contoso" || b.Notifications[0].IsLifecycle() || !b.Notifications[1].IsLifecycle() {
		t.Errorf("query %v, kinds %v/%v", b.Query, b.Notifications[0].IsLifecycle(), b.Notifications[1].IsLifecycle())
	}
}

func TestErrorsGoThroughEchosErrorHandler(t *testing.T) {
	sink := &recorder{}
	u := start(t, sink, handlers.Config{BodyLimit: 512})
	tests := []struct {
		name, method, contentType, body string
		wantStatus                      int
	}{
		{"malformed json", http.MethodPost, "application/json", `{"value":`, http.StatusBadRequest},
		{"not json", http.MethodPost, "text/xml", `<a/>`, http.StatusUnsupportedMediaType},
		{"over the limit", http.MethodPost, "application/json", `{"value":[` + strings.Repeat(`{},`, 300) + `{}]}`, http.StatusRequestEntityTooLarge},
		{"get without token", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"binary garbage", http.MethodPost, "application/json", "\x00\xff\xfe{", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, u+"/notifications", tc.contentType, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			var e struct{ Message string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message == "" {
				t.Errorf("body %q is not Echo's JSON error", body)
			}
		})
	}
	sink.Fail(errors.New("bus down"))
	resp, body := do(t, http.MethodPost, u+"/notifications", "application/json", batch)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("sink down: %d Retry-After %q, want 503 5", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if strings.Contains(body, "bus down") {
		t.Errorf("503 leaks the cause: %s", body)
	}
}

func TestLargeBodyWithinLimitIsAccepted(t *testing.T) {
	sink := &recorder{}
	u := start(t, sink, handlers.Config{})
	var items []string
	item := `{"subscriptionId":"s1","clientState":"secretClientValue","changeType":"created","resource":"me/messages/1","tenantId":"t1","resourceData":{"pad":"` + strings.Repeat("x", 1000) + `"}}`
	for range 2000 {
		items = append(items, item)
	}
	body := `{"value":[` + strings.Join(items, ",") + `]}`
	if len(body) < 2<<20 {
		t.Fatalf("test body is only %d bytes", len(body))
	}
	resp, _ := do(t, http.MethodPost, u+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusAccepted || len(sink.All()[0].Notifications) != 2000 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp, _ = do(t, http.MethodPost, u+"/notifications", "application/json", body+string(bytes.Repeat([]byte(" "), 4<<20-len(body)+1)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("4 MiB + 1: status %d, want 413", resp.StatusCode)
	}
}

// onlyReader hides the body's length, so the client sends it chunked.
type onlyReader struct{ io.Reader }

func TestChunkedBodyOverTheLimitIs413(t *testing.T) {
	sink := &recorder{}
	u := start(t, sink, handlers.Config{BodyLimit: 512})
	body := `{"value":[` + strings.Repeat(`{},`, 300) + `{}]}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u+"/notifications", onlyReader{strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit: status %d, want 413", resp.StatusCode)
	}
	if len(sink.All()) != 0 {
		t.Errorf("a batch was delivered")
	}
}

// TestErrorsCarryTheReceiversPolicy: the adapter shows what the receiver
// decides (status, message, Retry-After, Allow) and derives none of it.
func TestErrorsCarryTheReceiversPolicy(t *testing.T) {
	sink := &recorder{}
	r, err := receiver.New(receiver.Config{ClientStates: []string{secret}, Sink: sink, RetryAfter: 9 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	handlers.Register(e, r, handlers.Config{})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	resp, body := do(t, http.MethodGet, srv.URL+"/notifications", "", "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET without token: %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	var msg struct{ Message string }
	if err := json.Unmarshal([]byte(body), &msg); err != nil || !strings.Contains(msg.Message, receiver.ErrMethod.Error()) {
		t.Errorf("405 body %q, want the receiver's message", body)
	}
	sink.Fail(errors.New("bus down"))
	resp, body = do(t, http.MethodPost, srv.URL+"/lifecycle", "application/json", batch)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "9" {
		t.Errorf("sink down: %d Retry-After %q, want 503 9 (the receiver's RetryAfter)", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Message != http.StatusText(http.StatusServiceUnavailable) {
		t.Errorf("503 body %q, want the bare status text", body)
	}
	if st := r.Stats(); st.Invalid != 1 || st.Unavailable != 1 {
		t.Errorf("Stats = %+v, want 1 invalid, 1 unavailable", st)
	}
}
