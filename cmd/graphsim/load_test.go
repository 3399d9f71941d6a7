package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// loadEndpoint records the batches a load run POSTs; SetRespond picks
// the answer to the n-th POST instead (true: handled).
type loadEndpoint struct {
	*httptest.Server
	testkit.Webhook[graphsim.Collection]
}

func newEndpoint(t testing.TB) *loadEndpoint {
	e := &loadEndpoint{}
	e.Server = httptest.NewServer(&e.Webhook)
	t.Cleanup(e.Close)
	return e
}

func (e *loadEndpoint) items() []graphsim.Notification {
	var out []graphsim.Notification
	for _, c := range e.Bodies() {
		out = append(out, c.Value...)
	}
	return out
}

// verifyValidationToken checks a validationToken against the simulator's
// JWKS and returns its claims.
func verifyValidationToken(t testing.TB, sim *graphsim.Sim, tok string) map[string]any {
	t.Helper()
	set, err := jwk.Parse(sim.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	return testkit.VerifyJWS(t, set, tok)
}

func TestLoadConcurrencyCountsEverything(t *testing.T) {
	e := newEndpoint(t)
	var fail atomic.Bool
	e.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if fail.Load() && n%4 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	rep, err := Load(t.Context(), LoadConfig{
		URL: e.URL, Concurrency: 3, Requests: 60, Batch: 5, ClientState: "cs", Duration: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 60 || rep.Errors != 0 || rep.Notifications != 300 || rep.Statuses["202"] != 60 {
		t.Fatalf("report %+v", rep)
	}
	if got := len(e.items()); got != 300 {
		t.Errorf("receiver got %d notifications, want 300", got)
	}
	ids := map[string]bool{}
	for _, n := range e.items() {
		if n.ClientState != "cs" || n.ChangeType != "created" {
			t.Fatalf("item %+v", n)
		}
		ids[n.ResourceData.ID] = true
	}
	if len(ids) != 300 {
		t.Errorf("%d distinct resource ids, want 300", len(ids))
	}
	if !(rep.P50Ms > 0 && rep.P50Ms <= rep.P90Ms && rep.P90Ms <= rep.P99Ms && rep.P99Ms <= rep.MaxMs) {
		t.Errorf("latencies %+v", rep)
	}
	if rep.NotificationsPerSecond <= 0 || rep.Mode != "concurrency" {
		t.Errorf("report %+v", rep)
	}

	fail.Store(true)
	rep, err = Load(t.Context(), LoadConfig{URL: e.URL, Concurrency: 1, Requests: 20})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors == 0 || rep.Errors+rep.Statuses["202"] != 20 || rep.Statuses["503"] != rep.Errors || rep.FirstError != "HTTP 503" {
		t.Errorf("report with failures %+v", rep)
	}
	text := rep.String()
	for _, want := range []string{"notifications:", "p50", "p99", "503="} {
		if !strings.Contains(text, want) {
			t.Errorf("String() lacks %q:\n%s", want, text)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"notificationsPerSecond"`) || !strings.Contains(string(b), `"p99Ms"`) {
		t.Errorf("JSON %s %v", b, err)
	}
}

func TestLoadRateMode(t *testing.T) {
	e := newEndpoint(t)
	rep, err := Load(t.Context(), LoadConfig{URL: e.URL, Rate: 2000, Batch: 2, Requests: 40, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "rate" || rep.Requests != 40 || rep.Notifications != 80 || rep.Concurrency != DefaultLoadInFlight {
		t.Fatalf("report %+v", rep)
	}
	// 40 requests at 1000 requests/s take about 39 ms of schedule.
	if rep.Seconds < 0.035 {
		t.Errorf("ran %.3fs, faster than the schedule allows", rep.Seconds)
	}
}

func TestLoadRichDecrypts(t *testing.T) {
	e := newEndpoint(t)
	key, err := decrypt.GenerateKey(2048, "load-test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key.ID = "test-key-1"
	sim, err := graphsim.New(graphsim.Config{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	rep, err := Load(t.Context(), LoadConfig{
		URL: e.URL, Requests: 4, Batch: 3, Rich: true, Signer: sim,
		EncryptionCertificate: key.EncryptionCertificate(), EncryptionCertificateID: key.ID,
	})
	if err != nil || rep.Notifications != 12 {
		t.Fatalf("report %+v %v", rep, err)
	}
	for _, c := range e.Bodies() {
		claims := verifyValidationToken(t, sim, c.ValidationTokens[0])
		if claims["aud"] != graphsim.DefaultAppID || claims["tid"] != graphsim.DefaultTenantID || claims["azp"] != graphsim.GraphChangeTrackingAppID || claims["ver"] != "2.0" {
			t.Errorf("validationToken claims %v", claims)
		}
		for _, n := range c.Value {
			if _, err := decrypt.Content(key.Private, n.EncryptedContent); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  LoadConfig
	}{
		{"no url", LoadConfig{}},
		{"negative rate", LoadConfig{URL: "http://127.0.0.1:1", Rate: -1}},
		{"rich without certificate", LoadConfig{URL: "http://127.0.0.1:1", Rich: true}},
		{"rich with bad certificate", LoadConfig{URL: "http://127.0.0.1:1", Rich: true, EncryptionCertificate: "!!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(t.Context(), tc.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestLoadStopsAtDurationAndCountsConnectionErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rep, err := Load(ctx, LoadConfig{URL: "http://127.0.0.1:1/closed", Concurrency: 1, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.Errors != rep.Requests || rep.Statuses["error"] != rep.Requests || rep.Notifications != 0 {
		t.Errorf("report %+v", rep)
	}
}

// TestLoadReportsWhatTheReceiverStored: against a receiver that answers
// 202 to every batch but stores only items with its clientState (and
// counts the rest as client_state rejects, as graphhook's receiver does),
// load --metrics-url says how many were stored and warns; without a
// clientState it warns before sending.
func TestLoadReportsWhatTheReceiverStored(t *testing.T) {
	reg := prometheus.NewRegistry()
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "graphhook_notifications_total", Help: "by outcome"}, []string{"outcome"})
	reg.MustRegister(outcomes)
	for _, o := range []string{"published", "stored", "duplicate", "client_state"} {
		outcomes.WithLabelValues(o) // graphhook's receiver always exports every outcome
	}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c graphsim.Collection
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, n := range c.Value {
			if n.ClientState == "right" {
				outcomes.WithLabelValues("published").Inc()
				outcomes.WithLabelValues("stored").Inc()
			} else {
				outcomes.WithLabelValues("client_state").Inc()
			}
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rcv.Close)
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)

	tests := []struct {
		name        string
		clientState string
		wantOut     []string
		wantErrOut  string
	}{
		{"right clientState", "right", []string{"receiver: 10 stored"}, ""},
		{"wrong clientState", "wrong", []string{"receiver: 0 stored, 10 rejected (client_state)", "warning: the receiver stored 0 of 10"}, ""},
		{"no clientState", "", []string{"10 rejected (client_state)"}, "warning: no --client-state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			args := []string{"load", "--url", rcv.URL, "--requests", "5", "--batch", "2", "--metrics-url", metrics.URL, "--client-state", tc.clientState}
			if err := run(t.Context(), args, env(nil), &out, &errOut); err != nil {
				t.Fatalf("load: %v\n%s", err, errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.wantErrOut != "" && !strings.Contains(errOut.String(), tc.wantErrOut) {
				t.Errorf("stderr lacks %q: %s", tc.wantErrOut, errOut.String())
			}
		})
	}
	var errOut strings.Builder
	err := run(t.Context(), []string{"load", "--url", rcv.URL, "--requests", "1", "--metrics-url", rcv.URL + "/nothing", "--client-state", "x"}, env(nil), io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--metrics-url") {
		t.Errorf("metrics URL without metrics: %v", err)
	}
}
