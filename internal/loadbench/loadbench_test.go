package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{3}, 3},
		{"odd unsorted", []float64{9, 1, 5}, 5},
		{"even is mean of middle two", []float64{4, 1, 3, 10}, 3.5},
		{"outlier ignored", []float64{100, 101, 99, 1e9, 102}, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			if got := median(tt.in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("median reordered its input: %v", tt.in)
				}
			}
		})
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name string
		p    float64
		want time.Duration
	}{
		{"p50", 50, 100 * time.Millisecond},
		{"p99", 99, 198 * time.Millisecond},
		{"p100", 100, 200 * time.Millisecond},
		{"tiny p", 0.1, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(d, tt.p); got != tt.want {
				t.Errorf("percentile(1..200 ms, %v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestPairedRatioIsMedianOfPerRunRatios(t *testing.T) {
	// Run 2 is disturbed for both servers; per-run ratios stay 0.5.
	got := pairedRatio([]float64{50, 10, 60}, []float64{100, 20, 120})
	if got != 0.5 {
		t.Errorf("pairedRatio = %v, want 0.5", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields 14 (utime) and 15 (stime) are 250 and 50 ticks: 3 s.
	rest := "S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 2000 300"
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr error
	}{
		{"plain", "4242 (receiver) " + rest, 3 * time.Second, nil},
		{"name with spaces and parens", "4242 (a b) (c)) " + rest, 3 * time.Second, nil},
		{"no name", "4242 receiver " + rest, 0, errProcFormat},
		{"truncated", "4242 (receiver) S 1 2 3", 0, errProcFormat},
		{"not a number", "4242 (receiver) " + strings.Replace(rest, "250", "x", 1), 0, errProcFormat},
		{"overflow", "4242 (receiver) " + strings.Replace(rest, "250", "18446744073709551615", 1), 0, errProcFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("cpu = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProcessCPUGrowsWithWork(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	testkit.CheckFor(t, 10*time.Second, func() error {
		for range 20000 {
			sum = sha256.Sum256(sum[:])
		}
		now, err := processCPU(os.Getpid())
		if err != nil {
			return err
		}
		if now-before < 20*time.Millisecond {
			return fmt.Errorf("CPU time went from %v to %v", before, now)
		}
		return nil
	})
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\treceiver\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
	tests := []struct {
		name    string
		status  string
		want    uint64
		wantErr error
	}{
		{"present", status, 50 << 20, nil},
		{"missing", "Name:\treceiver\nVmRSS:\t 1 kB\n", 0, errProcFormat},
		{"other unit", "VmHWM:\t 5 MB\n", 0, errProcFormat},
		{"overflow", "VmHWM:\t 18446744073709551615 kB\n", 0, errProcFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmHWM([]byte(tt.status))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("VmHWM = %d, want %d", got, tt.want)
			}
		})
	}
	rss, err := processPeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("peak RSS of the test process = %d bytes, want at least 1 MiB", rss)
	}
}

func TestPutHex(t *testing.T) {
	b := []byte("xxxxxx")
	putHex(b, 0xabc)
	if string(b) != "000abc" {
		t.Errorf("putHex = %q, want 000abc", b)
	}
}

// ids parses body as the receiver does and returns its notification ids.
func ids(t *testing.T, body []byte) []string {
	t.Helper()
	c, err := receiver.Parse(body)
	if err != nil {
		t.Fatalf("receiver.Parse: %v\n%s", err, body)
	}
	var out []string
	for _, n := range c.Value {
		if n.SubscriptionID != loadSubID || string(n.ClientState) != loadClientState {
			t.Errorf("item has subscription %q clientState %q", n.SubscriptionID, n.ClientState)
		}
		out = append(out, n.ID)
	}
	return out
}

func TestBasicBodiesVaryIDs(t *testing.T) {
	p := payload{ClientState: loadClientState, SubscriptionID: loadSubID, AppID: graphsim.DefaultAppID}
	set, err := basicBodies(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	// More takes than templates, so templates are reused.
	for range basicTemplates + 2 {
		got := ids(t, set.take())
		if len(got) != 100 {
			t.Fatalf("body has %d items, want 100", len(got))
		}
		for _, id := range got {
			if !strings.HasPrefix(id, idPrefix) || len(id) != len(idPlaceholder) {
				t.Fatalf("id %q does not have the form %s", id, idPlaceholder)
			}
			if seen[id] {
				t.Fatalf("id %q sent twice", id)
			}
			seen[id] = true
		}
	}
	if !bytes.Contains(set.bodies[0], []byte(idPlaceholder)) {
		t.Error("take changed a template: its placeholder is gone")
	}
}

func TestRichBodiesVaryIDsAndStayDecryptable(t *testing.T) {
	key, err := decrypt.GenerateKey(2048, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key.ID = "k1"
	sim, err := graphsim.New(graphsim.Config{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	p := payload{ClientState: loadClientState, SubscriptionID: loadSubID, AppID: graphsim.DefaultAppID}
	pool, err := richPool(t.Context(), p, key, key.ID, 4, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	set, err := richBodies(sim, p, pool, 2)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := decrypt.NewKeyRing(key)
	if err != nil {
		t.Fatal(err)
	}
	seenID := map[string]bool{}
	dataKeys := map[string]int{}
	for range 4 { // two templates, each sent twice
		body := set.take()
		c, err := receiver.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.ValidationTokens) != 1 {
			t.Errorf("body has %d validationTokens, want 1", len(c.ValidationTokens))
		}
		for _, n := range c.Value {
			if seenID[n.ID] {
				t.Fatalf("id %q sent twice", n.ID)
			}
			seenID[n.ID] = true
			dataKeys[n.EncryptedContent.DataKey]++
			if _, err := ring.Decrypt(n.EncryptedContent); err != nil {
				t.Fatalf("decrypt: %v", err)
			}
		}
	}
	if len(dataKeys) != 4 {
		t.Errorf("%d distinct dataKeys in the pool of 4", len(dataKeys))
	}
}

func TestRichPoolExceedsUnwrapCache(t *testing.T) {
	if richPoolSize <= decrypt.UnwrapCacheSize {
		t.Errorf("richPoolSize %d must exceed decrypt.UnwrapCacheSize %d, or the receiver's cache hides the RSA cost", richPoolSize, decrypt.UnwrapCacheSize)
	}
}

func TestBareHandler(t *testing.T) {
	srv := httptest.NewServer(bareHandler())
	t.Cleanup(srv.Close)
	tests := []struct {
		name       string
		url        string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"handshake echoes the token", "/notifications?validationToken=a+b%3Ac", "", http.StatusOK, "a b:c"},
		{"batch", "/notifications", `{"value":[{"id":"1","subscriptionId":"s","clientState":"c"}]}`, http.StatusAccepted, ""},
		{"bad JSON", "/notifications", `{"value":[`, http.StatusBadRequest, "bad JSON\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tt.url, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.wantStatus || b.String() != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestLoadClosedLoopCountsAnswers(t *testing.T) {
	srv := httptest.NewServer(bareHandler())
	t.Cleanup(srv.Close)
	p := payload{ClientState: loadClientState, SubscriptionID: loadSubID}
	set, err := basicBodies(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	l := load{URL: srv.URL + "/notifications", Bodies: set, Concurrency: 3, Duration: 200 * time.Millisecond}
	o := l.run(t.Context())
	if o.Requests == 0 || o.errors() != 0 {
		t.Fatalf("requests %d, errors %d (%s)", o.Requests, o.errors(), o.FirstError)
	}
	if o.Notifications != 10*o.Requests || len(o.Latencies) != o.Requests || o.Statuses[http.StatusAccepted] != o.Requests {
		t.Errorf("requests %d, notifications %d, latencies %d, statuses %v", o.Requests, o.Notifications, len(o.Latencies), o.Statuses)
	}
	if uint64(o.Requests) != set.next.Load() {
		t.Errorf("%d requests but %d bodies taken", o.Requests, set.next.Load())
	}
}

func TestLoadOpenLoopSendsOnSchedule(t *testing.T) {
	srv := httptest.NewServer(bareHandler())
	t.Cleanup(srv.Close)
	tok := graphsim.ValidationTokenPrefix + "a b:c"
	// 500 requests/s for 200 ms: requests are scheduled at 0, 2, ..., 198 ms.
	l := load{URL: srv.URL + "/notifications", Token: tok, Concurrency: 8, Rate: 500, Duration: 200 * time.Millisecond}
	o := l.run(t.Context())
	if o.Requests != 100 || o.Notifications != 100 || o.errors() != 0 {
		t.Errorf("requests %d, notifications %d, errors %d (%s); want 100 each and no errors", o.Requests, o.Notifications, o.errors(), o.FirstError)
	}
	if o.Elapsed < 198*time.Millisecond {
		t.Errorf("elapsed %v: the schedule was not kept", o.Elapsed)
	}
}

func TestHandshakeLoadDetectsWrongEcho(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("something else"))
	}))
	t.Cleanup(srv.Close)
	l := load{URL: srv.URL + "/", Token: "x", Concurrency: 1, Rate: 100, Duration: 50 * time.Millisecond}
	o := l.run(t.Context())
	if o.BadEcho != o.Requests || o.Notifications != 0 || o.Requests == 0 {
		t.Errorf("requests %d, bad echoes %d, notifications %d", o.Requests, o.BadEcho, o.Notifications)
	}
}

func TestSelectScenarios(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    int
		wantErr error
	}{
		{"all", "all", len(allScenarios()), nil},
		{"two", "basic-1, handshake", 2, nil},
		{"unknown", "basic-2", 0, errUnknownScenario},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectScenarios(tt.list)
			if !errors.Is(err, tt.wantErr) || len(got) != tt.want {
				t.Errorf("selectScenarios(%q) = %d scenarios, %v", tt.list, len(got), err)
			}
		})
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{1234567.4: "1,234,567", 999: "999", 12.34: "12.3", 0.0456: "0.05", 100: "100"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadReconnectsAndCountsRefusals(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer closes the connection; every other one is a 503.
		w.Header().Set("Connection", "close")
		if n.Add(1)%2 == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	set, err := basicBodies(payload{ClientState: loadClientState, SubscriptionID: loadSubID}, 5)
	if err != nil {
		t.Fatal(err)
	}
	l := load{URL: srv.URL + "/notifications", Bodies: set, Concurrency: 1, Rate: 1000, Duration: 100 * time.Millisecond} // 200 requests/s
	o := l.run(t.Context())
	if o.Requests != 20 || o.Failures != 0 {
		t.Fatalf("requests %d, transport failures %d (%s); want 20 and 0", o.Requests, o.Failures, o.FirstError)
	}
	if o.Statuses[http.StatusAccepted] != 10 || o.Statuses[http.StatusServiceUnavailable] != 10 || o.Notifications != 50 || o.errors() != 10 {
		t.Errorf("statuses %v, notifications %d, errors %d", o.Statuses, o.Notifications, o.errors())
	}
}

func TestWriteReportRatiosAndTargets(t *testing.T) {
	scs := allScenarios()
	basic1 := scs[0]
	bare := target{Name: "bare net/http", Bare: true}
	gh := target{Name: "graphhook go", Backend: "go"}
	peak := func(rate float64, rss uint64) sample {
		return sample{Rate: rate, P50: time.Millisecond, P99: 5 * time.Millisecond, ServerCPU: time.Second, Window: 2 * time.Second, Notified: 10000, PeakRSS: rss, Statuses: map[int]int{202: 10}}
	}
	rep := &report{
		Options: options{Runs: 3, Duration: 2 * time.Second, Concurrency: 8, BatchConcurrency: 4, InFlight: 64, Half: true, Burst: true},
		Env:     environment{Cores: 2},
		Rows: []*row{
			{Scenario: basic1, Target: bare, Peak: []sample{peak(1000, 10<<20), peak(2000, 10<<20), peak(3000, 10<<20)}},
			{Scenario: basic1, Target: gh, Peak: []sample{peak(700, 50<<20), peak(1400, 150<<20), peak(2100, 150<<20)},
				HalfRate: 700, Half: []sample{peak(700, 50<<20)}},
		},
		Burst:   map[string][]burstRun{"graphhook go": {{Statuses: map[int]int{202: 6, 503: 4}}}},
		Targets: []target{gh},
	}
	var b bytes.Buffer
	if err := writeReport(&b, rep); err != nil {
		t.Fatal(err)
	}
	// -json then -from-json renders the same report.
	j, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("-json cannot encode the report: %v", err)
	}
	var back report
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := writeReport(&again, &back); err != nil {
		t.Fatal(err)
	}
	if again.String() != b.String() {
		t.Errorf("report from JSON differs:\n%s\nwant:\n%s", again.String(), b.String())
	}
	out := b.String()
	if strings.Contains(out, "failed their check") {
		t.Error("report claims a failed check")
	}
	rep.Rows[1].Half[0].Check = "stream holds 1 items, 2 were answered 2xx"
	var failed bytes.Buffer
	if err := writeReport(&failed, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(failed.String(), "**1 run(s) failed their check**") || !strings.Contains(failed.String(), "| FAILED: stream holds 1 items") {
		t.Errorf("a failed check is not reported:\n%s", failed.String())
	}
	for _, want := range []string{
		"**Short mode**",
		"| basic, batch 1 | graphhook go | 1,400 | 0.70× | 1.00 | 5.00 | 0.100 | 0.50 | 150 |",
		"| basic batch 1 ≥ 0.6× bare | 0.70× | yes |",
		"| 1,000-change burst (go): no 503 | 4 in 1 run(s) | **no** |",
		"| peak RSS ≤ 100 MiB at peak load (worst row) | 150 MiB (basic, batch 1, go) | **no** |",
		"| p99 ≤ 20 ms at half of peak load (basic and handshake rows, worst) | 5.0 ms (basic, batch 1, go) | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestRawDecryptRateUsesEveryCoreAndThisBackend(t *testing.T) {
	key, err := decrypt.GenerateKey(2048, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/key.pem"
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := rawDecryptRate(t.Context(), path, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Backend != decrypt.Backend || r.Bits != 2048 || r.Goroutines < 1 {
		t.Errorf("result %+v: want backend %q, 2048 bits", r, decrypt.Backend)
	}
	if r.Decrypts == 0 || r.PerSecond <= 0 || r.CPUPerDecrypt <= 0 {
		t.Errorf("result %+v: nothing measured", r)
	}
}

func TestMeasuringArgsDropOutputFiles(t *testing.T) {
	got := strings.Join(measuringArgs([]string{"-runs", "1", "-json", "x.json", "--out=b.md", "-duration", "2s", "-out", "c.md"}), " ")
	if want := "-runs 1 -duration 2s"; got != want {
		t.Errorf("measuringArgs = %q, want %q", got, want)
	}
}

// FuzzParseProc feeds arbitrary text to the /proc parsers: they return an
// error or a value, never panic, and never a negative CPU time.
func FuzzParseProc(f *testing.F) {
	f.Add([]byte("4242 (a b) (c)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 2000 300"))
	f.Add([]byte("Name:\treceiver\nVmHWM:\t   51200 kB\n"))
	f.Add([]byte(")"))
	f.Add([]byte("VmHWM: 18446744073709551615 kB"))
	f.Add([]byte("1 (x) S 1 2 3 4 5 6 7 8 9 10 9223372036854775807 1 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseStatCPU(b); err == nil && (d < 0 || d%(time.Second/userHZ) != 0) {
			t.Errorf("parseStatCPU(%q) = %v", b, d)
		} else if err != nil && !errors.Is(err, errProcFormat) {
			t.Errorf("parseStatCPU(%q): error %v does not wrap errProcFormat", b, err)
		}
		if v, err := parseVmHWM(b); err != nil && !errors.Is(err, errProcFormat) {
			t.Errorf("parseVmHWM(%q): error %v does not wrap errProcFormat", b, err)
		} else if err == nil && v%1024 != 0 {
			t.Errorf("parseVmHWM(%q) = %d, not whole kB (overflow?)", b, v)
		}
	})
}

func TestJudgeStream(t *testing.T) {
	tests := []struct {
		name                string
		stored, quarantined uint64
		answered, sent      int
		wantOK              bool
	}{
		{"all stored", 500, 0, 500, 500, true},
		{"refused batch partly stored", 550, 0, 500, 600, true},
		{"answered but lost", 499, 0, 500, 500, false},
		{"more than sent", 601, 0, 500, 600, false},
		{"quarantined", 500, 1, 500, 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeStream(tt.stored, tt.quarantined, tt.answered, tt.sent)
			if (got == "") != tt.wantOK {
				t.Errorf("judgeStream = %q, want ok %v", got, tt.wantOK)
			}
		})
	}
}
