package graphsim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

func TestLoadConcurrencyCountsEverything(t *testing.T) {
	e := newEndpoint(t)
	var fail atomic.Bool
	e.setRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if fail.Load() && n%4 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	rep, err := graphsim.Load(t.Context(), graphsim.LoadConfig{
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
	rep, err = graphsim.Load(t.Context(), graphsim.LoadConfig{URL: e.URL, Concurrency: 1, Requests: 20})
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
	rep, err := graphsim.Load(t.Context(), graphsim.LoadConfig{URL: e.URL, Rate: 2000, Batch: 2, Requests: 40, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "rate" || rep.Requests != 40 || rep.Notifications != 80 || rep.Concurrency != graphsim.DefaultLoadInFlight {
		t.Fatalf("report %+v", rep)
	}
	// 40 requests at 1000 requests/s take about 39 ms of schedule.
	if rep.Seconds < 0.035 {
		t.Errorf("ran %.3fs, faster than the schedule allows", rep.Seconds)
	}
}

func TestLoadRichDecrypts(t *testing.T) {
	e := newEndpoint(t)
	key := testKey(t)
	sim := newSim(t, fastConfig())
	rep, err := graphsim.Load(t.Context(), graphsim.LoadConfig{
		URL: e.URL, Requests: 4, Batch: 3, Rich: true, Signer: sim,
		EncryptionCertificate: key.EncryptionCertificate(), EncryptionCertificateID: key.ID,
	})
	if err != nil || rep.Notifications != 12 {
		t.Fatalf("report %+v %v", rep, err)
	}
	set := fetchJWKS(t, sim.JWKSURL())
	for _, c := range e.collections() {
		checkClaims(t, verifyToken(t, set, c.ValidationTokens[0]), "2.0", graphsim.DefaultAppID, graphsim.DefaultTenantID)
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
		cfg  graphsim.LoadConfig
	}{
		{"no url", graphsim.LoadConfig{}},
		{"negative rate", graphsim.LoadConfig{URL: "http://127.0.0.1:1", Rate: -1}},
		{"rich without certificate", graphsim.LoadConfig{URL: "http://127.0.0.1:1", Rich: true}},
		{"rich with bad certificate", graphsim.LoadConfig{URL: "http://127.0.0.1:1", Rich: true, EncryptionCertificate: "!!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := graphsim.Load(t.Context(), tc.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestLoadStopsAtDurationAndCountsConnectionErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rep, err := graphsim.Load(ctx, graphsim.LoadConfig{URL: "http://127.0.0.1:1/closed", Concurrency: 1, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.Errors != rep.Requests || rep.Statuses["error"] != rep.Requests || rep.Notifications != 0 {
		t.Errorf("report %+v", rep)
	}
}
