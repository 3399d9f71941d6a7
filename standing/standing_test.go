package standing_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/standing"
)

func newMonitor(t *testing.T, cfg standing.Config) *standing.Monitor {
	t.Helper()
	m, err := standing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func endpointOf(t *testing.T, m *standing.Monitor, name string) standing.Endpoint {
	t.Helper()
	e, ok := m.Snapshot().Endpoint(name)
	if !ok {
		t.Fatalf("no endpoint %q in the snapshot", name)
	}
	return e
}

func TestBucketsHaveGraphsBudgets(t *testing.T) {
	b := standing.Buckets()
	has := map[float64]bool{}
	for i, v := range b {
		has[v] = true
		if i > 0 && v <= b[i-1] {
			t.Fatalf("buckets not increasing: %v", b)
		}
	}
	if !has[standing.DefaultSlowAfter.Seconds()] || !has[standing.DefaultTimeoutAfter.Seconds()] {
		t.Fatalf("buckets %v lack 3 s or 10 s", b)
	}
	b[0] = 99
	if standing.Buckets()[0] == 99 {
		t.Fatal("Buckets returns a shared slice")
	}
}

func TestClassifiesEachAnswerAsGraphSeesIt(t *testing.T) {
	type want struct{ slow, timedOut, failed int }
	tests := []struct {
		name     string
		answered time.Duration
		left     time.Duration
		status   int
		want     want
	}{
		{"fast 202", 20 * time.Millisecond, 0, 202, want{}},
		{"fast 200", 20 * time.Millisecond, 0, 200, want{}},
		{"fast 503", 20 * time.Millisecond, 0, 503, want{failed: 1}},
		{"fast 401", 20 * time.Millisecond, 0, 401, want{failed: 1}},
		{"redirect", 20 * time.Millisecond, 0, 302, want{failed: 1}},
		{"just under 3 s", 2999 * time.Millisecond, 0, 202, want{}},
		{"at 3 s", 3 * time.Second, 0, 202, want{slow: 1}},
		{"5 s answer of a retry", 5 * time.Second, 0, 202, want{slow: 1}},
		{"answer after 10 s", 11 * time.Second, 0, 202, want{slow: 1, timedOut: 1}},
		{"first attempt given up at 3 s", 8 * time.Second, 3 * time.Second, 503, want{slow: 1, failed: 1}},
		{"retry given up at 10 s", 12 * time.Second, 10 * time.Second, 503, want{slow: 1, timedOut: 1, failed: 1}},
		{"client left after the answer", 20 * time.Millisecond, 30 * time.Millisecond, 202, want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMonitor(t, standing.Config{})
			m.Observe("notifications", tt.answered, tt.left, tt.status)
			e := endpointOf(t, m, "notifications")
			got := want{e.Slow, e.TimedOut, e.Failed}
			if e.Responses != 1 || got != tt.want {
				t.Fatalf("responses %d, got %+v, want %+v", e.Responses, got, tt.want)
			}
			if e.Total.Responses != 1 || e.Total.Slow != tt.want.slow || e.Total.TimedOut != tt.want.timedOut || e.Total.Failed != tt.want.failed {
				t.Fatalf("totals %+v, want %+v", e.Total, tt.want)
			}
		})
	}
}

func TestStateFollowsGraphsThresholds(t *testing.T) {
	tests := []struct {
		name                 string
		fast, slow, timedOut int
		want                 standing.State
	}{
		{"all fast", 100, 0, 0, standing.StateNormal},
		{"10 % slow is not more than 10 %", 90, 10, 0, standing.StateNormal},
		{"11 % slow", 89, 11, 0, standing.StateSlow},
		{"15 % timed out is slow, not drop", 85, 0, 15, standing.StateSlow},
		{"16 % timed out", 84, 0, 16, standing.StateDrop},
		{"too few responses to judge", 0, 99, 0, standing.StateNormal},
		{"100 responses all timed out", 0, 0, 100, standing.StateDrop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMonitor(t, standing.Config{})
			for range tt.fast {
				m.Observe("n", 10*time.Millisecond, 0, 202)
			}
			for range tt.slow {
				m.Observe("n", 4*time.Second, 0, 202)
			}
			for range tt.timedOut {
				m.Observe("n", 12*time.Second, 10*time.Second, 503)
			}
			e := endpointOf(t, m, "n")
			if e.State != tt.want {
				t.Fatalf("state %s, want %s (%+v)", e.State, tt.want, e)
			}
			if e.Evaluated != (tt.fast+tt.slow+tt.timedOut >= standing.DefaultMinSamples) {
				t.Errorf("evaluated %v with %d responses", e.Evaluated, e.Responses)
			}
			if tt.want != standing.StateNormal && !strings.Contains(e.Warning, "Graph") {
				t.Errorf("state %s without a warning", e.State)
			}
		})
	}
}

func TestWarnsBeforeGraphActs(t *testing.T) {
	m := newMonitor(t, standing.Config{})
	for range 93 {
		m.Observe("n", time.Millisecond, 0, 202)
	}
	for range 7 { // 7 %: not yet slow, past half of the 10 % limit
		m.Observe("n", 4*time.Second, 0, 202)
	}
	e := endpointOf(t, m, "n")
	if e.State != standing.StateNormal || !strings.Contains(e.Warning, "7.0% of answers") || !strings.Contains(e.Warning, "above 10%") {
		t.Fatalf("state %s, warning %q", e.State, e.Warning)
	}
	if e.SlowRatio != 0.07 {
		t.Errorf("slow ratio %v, want 0.07", e.SlowRatio)
	}
	quiet := newMonitor(t, standing.Config{})
	quiet.Observe("n", time.Millisecond, 0, 202)
	if w := endpointOf(t, quiet, "n").Warning; w != "" {
		t.Errorf("warning for a healthy endpoint: %q", w)
	}
}

func TestWindowForgetsOldResponses(t *testing.T) {
	clk := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := newMonitor(t, standing.Config{Now: clk.Now, MinSamples: 10})
	for range 10 {
		m.Observe("n", 12*time.Second, 10*time.Second, 503)
	}
	e := endpointOf(t, m, "n")
	if e.State != standing.StateDrop || !e.Since.Equal(clk.Now()) {
		t.Fatalf("state %s since %v, want drop now", e.State, e.Since)
	}
	clk.Advance(standing.DefaultWindow / 2)
	if e := endpointOf(t, m, "n"); e.Responses != 10 || e.State != standing.StateDrop {
		t.Fatalf("half a window later: %d responses, %s", e.Responses, e.State)
	}
	clk.Advance(standing.DefaultWindow/2 + time.Second)
	e = endpointOf(t, m, "n")
	if e.Responses != 0 || e.State != standing.StateNormal || !e.Since.Equal(clk.Now()) {
		t.Fatalf("a window later: %d responses, %s since %v", e.Responses, e.State, e.Since)
	}
	if e.Total.Responses != 10 || e.Total.TimedOut != 10 {
		t.Errorf("totals forgotten: %+v", e.Total)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name      string
		cfg       standing.Config
		wantField string
		wantErr   error
	}{
		{"zero value", standing.Config{}, "", nil},
		{"negative window", standing.Config{Window: -time.Second}, "Window", standing.ErrInvalidConfig},
		{"window too short", standing.Config{Window: 100}, "Window", standing.ErrInvalidConfig},
		{"negative samples", standing.Config{MinSamples: -1}, "MinSamples", standing.ErrInvalidConfig},
		{"negative slow", standing.Config{SlowAfter: -1}, "SlowAfter", standing.ErrInvalidConfig},
		{"negative timeout", standing.Config{TimeoutAfter: -1}, "TimeoutAfter", standing.ErrInvalidConfig},
		{"timeout not after slow", standing.Config{SlowAfter: 10 * time.Second}, "TimeoutAfter", standing.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
			}
			_, nerr := standing.New(tt.cfg)
			if !errors.Is(nerr, tt.wantErr) {
				t.Fatalf("New: %v, want %v", nerr, tt.wantErr)
			}
			if tt.wantErr == nil {
				return
			}
			var ce *standing.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.wantField || !strings.HasPrefix(err.Error(), "standing: Config."+tt.wantField+": ") {
				t.Fatalf("error %q, want a ConfigError for %s", err, tt.wantField)
			}
		})
	}
}

// TestMiddlewareObservesAnswersOverLoopback drives a real server: answers
// of each kind, a handshake and a GET that are not counted, and a client
// that gives up before the answer.
func TestMiddlewareObservesAnswersOverLoopback(t *testing.T) {
	m := newMonitor(t, standing.Config{SlowAfter: 50 * time.Millisecond, TimeoutAfter: 400 * time.Millisecond})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Query().Get("do") {
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "write":
			io.WriteString(w, "ok")
		case "nothing":
		case "hang": // until the client gives up, then answer anyway
			<-r.Context().Done()
			<-release
			w.WriteHeader(http.StatusAccepted)
		case "slow":
			select {
			case <-time.After(80 * time.Millisecond):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	srv := httptest.NewServer(m.Middleware("notifications")(h))
	t.Cleanup(srv.Close)
	post := func(query string, timeout time.Duration) {
		t.Helper()
		c := &http.Client{Timeout: timeout}
		resp, err := c.Post(srv.URL+"/?"+query, "application/json", strings.NewReader(`{"value":[]}`))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	post("do=202", 5*time.Second)
	post("do=write", 5*time.Second)
	post("do=nothing", 5*time.Second)
	post("do=503", 5*time.Second)
	post("do=slow", 5*time.Second)
	post("validationToken=abc", 5*time.Second) // handshake: not counted
	if resp, err := http.Get(srv.URL); err == nil {
		resp.Body.Close()
	}
	post("do=hang", 60*time.Millisecond) // gives up like a first attempt
	close(release)

	testkit.CheckFor(t, 5*time.Second, func() error {
		e := endpointOf(t, m, "notifications")
		if e.Responses != 6 {
			return fmt.Errorf("%d responses, want 6", e.Responses)
		}
		if e.Slow != 2 || e.Failed != 2 || e.TimedOut != 0 {
			return fmt.Errorf("slow %d failed %d timed out %d, want 2 2 0", e.Slow, e.Failed, e.TimedOut)
		}
		return nil
	})
}

func TestMiddlewareCountsRetryGivenUpAtTheRetryBudget(t *testing.T) {
	m := newMonitor(t, standing.Config{SlowAfter: 30 * time.Millisecond, TimeoutAfter: 150 * time.Millisecond})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	srv := httptest.NewServer(m.Middleware("lifecycle")(h))
	t.Cleanup(srv.Close)
	c := &http.Client{Timeout: 200 * time.Millisecond}
	if _, err := c.Post(srv.URL, "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("the handler answered")
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if e := endpointOf(t, m, "lifecycle"); e.Responses != 1 || e.TimedOut != 1 || e.Slow != 1 || e.Failed != 1 {
			return fmt.Errorf("%+v", e)
		}
		return nil
	})
}

func TestMetrics(t *testing.T) {
	m := newMonitor(t, standing.Config{MinSamples: 2})
	m.Middleware("lifecycle") // registered, no traffic yet
	m.Observe("notifications", time.Millisecond, 0, 202)
	m.Observe("notifications", 4*time.Second, 0, 202)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP graphhook_standing_slow_ratio Share of delivery requests in the window answered after 3 s or given up on by the client; Graph marks the endpoint slow above 0.10.
# TYPE graphhook_standing_slow_ratio gauge
graphhook_standing_slow_ratio{endpoint="lifecycle"} 0
graphhook_standing_slow_ratio{endpoint="notifications"} 0.5
# HELP graphhook_standing_state The state Graph would put the endpoint in now: 1 for the current state (normal, slow, drop), 0 for the others.
# TYPE graphhook_standing_state gauge
graphhook_standing_state{endpoint="lifecycle",state="drop"} 0
graphhook_standing_state{endpoint="lifecycle",state="normal"} 1
graphhook_standing_state{endpoint="lifecycle",state="slow"} 0
graphhook_standing_state{endpoint="notifications",state="drop"} 0
graphhook_standing_state{endpoint="notifications",state="normal"} 0
graphhook_standing_state{endpoint="notifications",state="slow"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "graphhook_standing_state", "graphhook_standing_slow_ratio"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 2*(3+4+4) {
		t.Fatalf("%d series (%v), want %d", n, err, 2*(3+4+4))
	}
}

func TestMiddlewareByPathCountsOnlyItsPaths(t *testing.T) {
	m := newMonitor(t, standing.Config{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/lifecycle" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(m.MiddlewareByPath(map[string]string{"/notifications": "notifications", "/lifecycle": "lifecycle"})(h))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/notifications", "/notifications", "/lifecycle", "/other", "/notifications/x"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	s := m.Snapshot()
	if len(s.Endpoints) != 2 {
		t.Fatalf("endpoints %+v, want notifications and lifecycle only", s.Endpoints)
	}
	n, _ := s.Endpoint("notifications")
	l, _ := s.Endpoint("lifecycle")
	if n.Responses != 2 || n.Failed != 0 || l.Responses != 1 || l.Failed != 1 {
		t.Fatalf("notifications %+v, lifecycle %+v", n, l)
	}
}
