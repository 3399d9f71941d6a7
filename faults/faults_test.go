package faults

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	longFlag   = flag.Bool("faults.long", false, "run the fault scenarios with the long settings (also GRAPHHOOK_FAULTS_LONG=1)")
	updateFlag = flag.Bool("faults.update", false, "write the scenarios' results to RELIABILITY.md at the repository root")
)

// bins builds the receiver and nats-server once per test binary.
var bins builder

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "graphhook-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// settings are the sizes of a run of the suite.
type settings struct {
	long      bool
	outage    time.Duration // how long a fault lasts where we choose it
	after     time.Duration // load kept up after the recovery
	warm      int           // deliveries answered 2xx before a fault starts
	tick      time.Duration // load: a Change every tick ...
	perTick   int           // ... of this many notifications
	slowConns int           // slow clients of each kind
	attack    time.Duration // how long the slow clients stay
	receivers int           // receivers behind the load balancer in the cluster scenario
}

func currentSettings() settings {
	if *longFlag || os.Getenv("GRAPHHOOK_FAULTS_LONG") == "1" {
		return settings{long: true, outage: 10 * time.Second, after: 10 * time.Second, warm: 100,
			tick: 25 * time.Millisecond, perTick: 4, slowConns: 100, attack: 20 * time.Second, receivers: 3}
	}
	return settings{outage: 3 * time.Second, after: 2 * time.Second, warm: 20,
		tick: 25 * time.Millisecond, perTick: 4, slowConns: 40, attack: 4 * time.Second, receivers: 2}
}

// hold keeps a fault (or the load after it) up for a fixed time. It is
// the only sleep of the suite: fixed fault durations, never a wait for a
// condition (those poll with testkit.CheckFor).
func hold(d time.Duration) { time.Sleep(d) }

// scenario is one fault scenario of the suite.
type scenario struct {
	name string
	run  func(t *testing.T, s settings) result
	// manager marks the subscription-manager scenarios: most of their
	// time is spent waiting for renewals to fall due, so they run all at
	// once, after the others, as subtests of TestFaults/manager.
	manager bool
}

// scenarios are listed in this order in RELIABILITY.md.
func scenarios() []scenario {
	return []scenario{
		{name: "nats-restart", run: natsRestart},
		{name: "receiver-sigkill", run: receiverSIGKILL},
		{name: "receiver-sigterm", run: receiverSIGTERM},
		{name: "stream-full", run: streamFull},
		{name: "jwks-down", run: jwksDown},
		{name: "slow-clients", run: slowClients},
		{name: "cluster-leader-loss", run: clusterLeaderLoss},
		{name: "lease-holder-killed", run: leaseHolderKill, manager: true},
		{name: "graph-throttles-renewals", run: graphThrottlesRenewals, manager: true},
		{name: "kv-unavailable", run: kvUnavailable, manager: true},
		{name: "kv-leaderless", run: kvLeaderless, manager: true},
	}
}

// TestFaults runs every fault scenario against the real receiver binary
// and real nats-server processes, under continuous delivery from
// graphsim, and checks the ledger after each. The results go to
// RELIABILITY.md in t.TempDir(), and to the repository root with
// -faults.update.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite runs real processes for about two minutes; run it without -short")
	}
	s := currentSettings()
	var mu sync.Mutex
	passed := map[string]result{}
	runOne := func(t *testing.T, sc scenario) {
		r := sc.run(t, s)
		r.Name = sc.name
		if !t.Failed() {
			mu.Lock()
			passed[sc.name] = r
			mu.Unlock()
		}
	}
	for _, sc := range scenarios() {
		if !sc.manager {
			t.Run(sc.name, func(t *testing.T) { runOne(t, sc) })
		}
	}
	// The manager scenarios run at once, each t.Run on a goroutine of its
	// own (not t.Parallel, which -parallel, GOMAXPROCS by default, would
	// limit to two at a time on a two-core machine).
	t.Run("manager", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, sc := range scenarios() {
			if sc.manager {
				wg.Go(func() { t.Run(sc.name, func(t *testing.T) { runOne(t, sc) }) })
			}
		}
		wg.Wait()
	})
	var results []result
	for _, sc := range scenarios() {
		if r, ok := passed[sc.name]; ok {
			results = append(results, r)
		}
	}
	report := renderReport(s, results)
	out := filepath.Join(t.TempDir(), "RELIABILITY.md")
	if err := os.WriteFile(out, report, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("results:\n%s", report)
	if *updateFlag {
		if len(results) != len(scenarios()) {
			t.Fatalf("-faults.update needs every scenario to run and pass (%d of %d did); RELIABILITY.md left as it is", len(results), len(scenarios()))
		}
		if err := os.WriteFile(filepath.Join("..", "RELIABILITY.md"), report, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote ../RELIABILITY.md")
	}
}

// reportHeader is the table header of RELIABILITY.md; the columns are
// explained under it.
const reportHeader = "| Scenario | Load | Sent | Answered 2xx | Landed | Duplicates | Lost | Retried (landed) | Forged sent / quarantined / landed | Recovery |"

// renderReport writes RELIABILITY.md.
func renderReport(s settings, results []result) []byte {
	var b bytes.Buffer
	mode := "short settings (the default of `go test ./...`)"
	cmd := "go test ./faults -run TestFaults -faults.update"
	if s.long {
		mode = "long settings"
		cmd += " -faults.long"
	}
	fmt.Fprintf(&b, "# Reliability\n\n")
	fmt.Fprintf(&b, "Generated by the fault suite in `faults/` with `%s` (%s: faults of %s, %s of load after each recovery; "+
		"`-faults.long` or `GRAPHHOOK_FAULTS_LONG=1` runs longer faults and more load), %s, %s/%s. Do not edit by hand.\n\n",
		cmd, mode, secs(s.outage), secs(s.after), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	b.WriteString("Each scenario runs the real `receiver` binary against real `nats-server` processes on 127.0.0.1, while graphsim " +
		"(the local Microsoft Graph) delivers notifications continuously and retries every answer that is not 2xx, as Graph does " +
		"(its schedule shrunk 500-fold: 20 ms doubling to 1.2 s, for 28.8 s). One subscription has the receiver's clientState; " +
		"a second one, with a wrong clientState, sends forged notifications alongside. At the end the ledger compares what graphsim " +
		"saw answered 2xx with the GRAPH stream, counted by event id (`ce-id`) and by the notification's resource id.\n\n")
	b.WriteString("The subscription-manager scenarios (lease-holder-killed, graph-throttles-renewals, kv-unavailable, kv-leaderless) run the receiver with a " +
		"`subscriptions:` section: its manager creates and renews the subscriptions in graphsim over TLS, and the load goes through the " +
		"managed subscription, checked against the clientState the manager keeps in its bucket. Their subscriptions have a 1-minute " +
		"lifetime (graphsim's clock runs 44 minutes behind, so Graph's 45-minute floor is one minute on the wall clock), so renewals " +
		"fall due 34 to 40 s after each create or renewal. Their ledger also checks the subscriptions: each desired one was never " +
		"missing or expired in graphsim (polled every 50 ms), is renewed and never recreated at the end, was never renewed twice within " +
		"34 s, and graphsim's PATCH calls stay within the policy's bound (one per subscription per 34 s, plus one, plus the failures injected). " +
		"They run in parallel with each other, after the others.\n\n")
	b.WriteString(reportHeader + "\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d (%d) | %d / %d / %d | %s |\n",
			r.Name, r.Load, r.Sent, r.Answered, r.Landed, r.Duplicates, r.Lost, r.Retried, r.RetriedLanded, r.ForgedSent, r.ForgedQuarantined, r.ForgedLanded, r.recoveryText())
	}
	b.WriteString("\n")
	b.WriteString("- **Sent**: genuine notifications graphsim generated and delivered. **Answered 2xx**: of those, the ones whose POST graphsim " +
		"finally saw answered 2xx (the rest would be retried until Graph gives up; there were none). **Landed**: found in GRAPH. " +
		"**Duplicates**: extra copies in GRAPH. **Lost**: answered 2xx but not in GRAPH. **Retried**: notifications whose POST needed " +
		"at least one retry, and how many of them landed. **Forged**: notifications with a wrong clientState: sent, found in the " +
		"quarantine stream that holds clientState rejections (every one answered 202 must be), and found in GRAPH (none may be). **Recovery**: from the end of the fault (the restart, the limit raised, the endpoint back; " +
		"for the leader loss, from the kill) to the first POST answered 2xx that started after it.\n\n")
	b.WriteString("## What each scenario did\n\n")
	for _, r := range results {
		fmt.Fprintf(&b, "- **%s**: %s; %s.\n", r.Name, r.Done, r.failedText())
	}
	return b.Bytes()
}

// randomClientState returns a clientState of 40 random characters.
func randomClientState(prefix string) string {
	return prefix + strings.ToLower(rand.Text())
}
