package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
)

// The subscription-manager scenarios run the receiver with a
// subscriptions section: its manager creates and renews the desired
// subscriptions in graphsim (over TLS, with the app's secret), keeping
// state and lease in the JetStream bucket, and the load is driven through
// the managed subscription, so every notification is checked against the
// clientState the manager keeps in the bucket.
//
// Graph raises every expiration to at least 45 minutes, and the manager
// renews when a third of the remaining lifetime is left, so renewals
// would be due half an hour after a create. The suite sets graphsim's
// clock (the tenant's, which decides that floor) simLag behind the wall
// clock and gives each desired subscription maxLifetime 1m: the manager
// asks for a minute, Graph's floor in its own clock is then exactly that
// minute, and renewals fall due 34 to 40 s after each create or renewal,
// 20 to 26 s before the expiry. The manager and the ledger both read
// expiries as absolute times, so nothing else sees the lag.
const (
	simLag        = 44 * time.Minute
	subsLifetime  = time.Minute
	subsLeaseTTL  = 6 * time.Second     // passes every 2 s
	subsMinRenew  = 34 * time.Second    // 0.57 of subsLifetime: the earliest renewal after the previous one
	subsResource  = "users/42/messages" // the managed subscription the load goes through
	subsResource2 = "users/42/events"   // a second managed subscription, without load
	subsSecret    = "faults-graph-app-secret"
	// Backoff of the renewals (the section's minBackoff and maxBackoff):
	// short enough that a few failures fit before a one-minute expiry.
	subsMinBackoff = time.Second
	subsMaxBackoff = 4 * time.Second
)

// managedSim is graphsim for the manager scenarios: the suite's delivery
// schedule, over HTTPS (azidentity needs it), its clock simLag behind.
type managedSim struct {
	*graphsim.Sim
	url    string // https://127.0.0.1:port
	caFile string
}

func newManagedSim(t *testing.T, batch int) *managedSim {
	t.Helper()
	cfg := simConfig(batch)
	cfg.ClientSecret = subsSecret
	cfg.Now = func() time.Time { return time.Now().Add(-simLag) }
	sim, err := graphsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u, _, err := sim.StartTLS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := sim.CACertPEM()
	if err != nil {
		t.Fatal(err)
	}
	m := &managedSim{Sim: sim, url: u, caFile: filepath.Join(t.TempDir(), "graphsim-ca.pem")}
	if err := os.WriteFile(m.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

// subsConfig writes the receiver's configuration file with the
// subscriptions section: the desired subscriptions on resources, each
// notifying notifyURL.
func subsConfig(t *testing.T, sim *managedSim, notifyURL string, leaseTTL time.Duration, resources ...string) string {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "graph-secret")
	if err := os.WriteFile(secret, []byte(subsSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var desired strings.Builder
	for _, r := range resources {
		fmt.Fprintf(&desired, "    - resource: %s\n      changeType: created\n      notificationUrl: %s\n      maxLifetime: %s\n", r, notifyURL, subsLifetime)
	}
	yaml := fmt.Sprintf(`subscriptions:
  tenantId: %s
  clientId: %s
  clientSecretFile: %s
  authorityHost: %s/
  graphUrl: %s/v1.0
  caFile: %s
  leaseTtl: %s
  minBackoff: %s
  maxBackoff: %s
  desired:
%s`, graphsim.DefaultTenantID, graphsim.DefaultAppID, secret, sim.url, sim.url, sim.caFile, leaseTTL, subsMinBackoff, subsMaxBackoff, desired.String())
	file := filepath.Join(dir, "receiver.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// newManagedReceiver prepares a receiver with the subscriptions section
// on a port chosen now, so the section can name its notificationUrl.
func newManagedReceiver(t *testing.T, bin string, natsURLs []string, clientState string) *receiverProc {
	t.Helper()
	r := newReceiver(t, bin, natsURLs, clientState)
	r.port = freePort(t)
	r.url = fmt.Sprintf("http://127.0.0.1:%d/notifications", r.port)
	return r
}

// configure adds the configuration file to the receiver's flags.
func (r *receiverProc) configure(file string) { r.args = append(r.args, "--config", file) }

// live reports whether the receiver's last launch still runs.
func (r *receiverProc) live() bool { return r.p != nil && !r.p.exited() }

// failover is the load balancer of the lease scenario: each request goes
// to the next receiver that runs (one killed is skipped; one that dies
// mid-request gets a 502, which graphsim retries).
func failover(t *testing.T, backends []*receiverProc) string {
	t.Helper()
	var n atomic.Uint64
	return balancer(t, func() *receiverProc {
		b := backends[0]
		for range backends {
			if b = backends[n.Add(1)%uint64(len(backends))]; b.live() {
				break
			}
		}
		return b
	})
}

// renewal is one change of a managed subscription's expiry seen in graphsim.
type renewal struct {
	at  time.Time
	exp time.Time
}

// subsWatch follows the managed subscriptions in graphsim every 50 ms
// from their creation to the end of the scenario: their renewals (a
// later expiry), every PATCH call (graphsim's APICalls), and whether one
// was ever missing or expired (a lapse).
type subsWatch struct {
	sim       *managedSim
	resources []string
	stop      context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex
	ids      map[string]string // resource -> subscription id
	created  time.Time
	renewals map[string][]renewal // subscription id -> renewals
	patches  []time.Time          // when the PATCH count grew (once per call seen)
	lapses   []string
}

// watchSubs waits until graphsim holds every desired subscription and
// follows them from then on.
func watchSubs(t *testing.T, sim *managedSim, resources ...string) *subsWatch {
	t.Helper()
	w := &subsWatch{sim: sim, resources: resources, ids: map[string]string{}, renewals: map[string][]renewal{}}
	testkit.CheckFor(t, 30*time.Second, func() error {
		for _, s := range sim.Subscriptions() {
			if slices.Contains(resources, s.Resource) {
				w.ids[s.Resource] = s.ID
			}
		}
		if len(w.ids) != len(resources) {
			return fmt.Errorf("graphsim holds %d of the %d desired subscriptions", len(w.ids), len(resources))
		}
		return nil
	})
	w.created = time.Now()
	if n := sim.APICalls()[graphsim.OpUpdate]; n != 0 {
		t.Fatalf("%d PATCH calls before the first renewal was due", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	last := map[string]time.Time{}
	for _, s := range sim.Subscriptions() {
		last[s.ID] = s.ExpirationDateTime
	}
	patches := 0
	w.wg.Go(func() {
		every(ctx, 50*time.Millisecond, func() bool {
			now := time.Now()
			subs := map[string]graphsim.Subscription{}
			for _, s := range sim.Subscriptions() {
				subs[s.ID] = s
			}
			n := sim.APICalls()[graphsim.OpUpdate]
			w.mu.Lock()
			defer w.mu.Unlock()
			for ; patches < n; patches++ {
				w.patches = append(w.patches, now)
			}
			for _, r := range w.resources {
				id := w.ids[r]
				s, ok := subs[id]
				switch {
				case !ok:
					w.lapses = append(w.lapses, fmt.Sprintf("%s (%s) gone from graphsim at %s", r, id, now.Format(time.TimeOnly)))
				case !s.ExpirationDateTime.After(now):
					w.lapses = append(w.lapses, fmt.Sprintf("%s (%s) expired at %s", r, id, s.ExpirationDateTime.Format(time.TimeOnly)))
				case s.ExpirationDateTime.After(last[id]):
					w.renewals[id] = append(w.renewals[id], renewal{at: now, exp: s.ExpirationDateTime})
					last[id] = s.ExpirationDateTime
				}
			}
			return len(w.lapses) == 0
		})
	})
	t.Cleanup(w.end)
	return w
}

// end stops following.
func (w *subsWatch) end() {
	w.stop()
	w.wg.Wait()
}

// id is the subscription id of a desired resource.
func (w *subsWatch) id(resource string) string { return w.ids[resource] }

// renewedSince waits until every managed subscription was renewed after
// since, and returns when the last of them was.
func (w *subsWatch) renewedSince(t *testing.T, since time.Time, timeout time.Duration) time.Time {
	t.Helper()
	var last time.Time
	testkit.CheckFor(t, timeout, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.lapses) > 0 {
			t.Fatalf("LAPSE: %s", strings.Join(w.lapses, "; "))
		}
		last = time.Time{}
		for _, r := range w.resources {
			i := slices.IndexFunc(w.renewals[w.ids[r]], func(rn renewal) bool { return rn.at.After(since) })
			if i < 0 {
				return fmt.Errorf("%s not renewed since %s", r, since.Format(time.TimeOnly))
			}
			if at := w.renewals[w.ids[r]][i].at; at.After(last) {
				last = at
			}
		}
		return nil
	})
	return last
}

// patchesBetween returns the PATCH calls graphsim saw in [from, to].
func (w *subsWatch) patchesBetween(from, to time.Time) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Time
	for _, p := range w.patches {
		if !p.Before(from) && !p.After(to) {
			out = append(out, p)
		}
	}
	return out
}

// subsResult is what the subscriptions part of the ledger found.
type subsResult struct {
	renewals, patches, bound int
}

func (s subsResult) text() string {
	return fmt.Sprintf("%d renewal(s) in %d PATCH call(s) (bound %d), no subscription lapsed", s.renewals, s.patches, s.bound)
}

// subsLedger is the ledger's subscriptions part, at the end of a
// scenario: every desired subscription exists in graphsim, with the id
// it was created with (renewed, never recreated) and an expiry in the
// future, and never lapsed meanwhile; no subscription was renewed twice
// within subsMinRenew (the policy renews at 0.57 of the lifetime at the
// earliest); and graphsim's PATCH calls stay within the policy's bound:
// per subscription one per subsMinRenew of the scenario, plus one, plus
// the failures injected.
func (w *subsWatch) ledger(t *testing.T, injected int) subsResult {
	t.Helper()
	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, l := range w.lapses {
		t.Errorf("LAPSE: %s", l)
	}
	subs := map[string]graphsim.Subscription{}
	for _, s := range w.sim.Subscriptions() {
		subs[s.Resource] = s
	}
	var res subsResult
	for _, r := range w.resources {
		s, ok := subs[r]
		switch {
		case !ok:
			t.Errorf("LAPSE: no subscription on %s in graphsim at the end", r)
			continue
		case s.ID != w.ids[r]:
			t.Errorf("LAPSE: %s was recreated (%s, was %s) instead of renewed", r, s.ID, w.ids[r])
		case !s.ExpirationDateTime.After(now):
			t.Errorf("LAPSE: %s expired at %s", r, s.ExpirationDateTime.Format(time.TimeOnly))
		}
		rns := w.renewals[w.ids[r]]
		res.renewals += len(rns)
		for i := 1; i < len(rns); i++ {
			if d := rns[i].at.Sub(rns[i-1].at); d < subsMinRenew-time.Second {
				t.Errorf("DOUBLE RENEWAL: %s renewed at %s and again %v later", r, rns[i-1].at.Format(time.TimeOnly), d.Round(time.Millisecond))
			}
		}
	}
	res.patches = len(w.patches)
	res.bound = len(w.resources)*(int(now.Sub(w.created)/subsMinRenew)+1) + injected
	if res.patches > res.bound {
		t.Errorf("DOUBLE RENEWAL: graphsim saw %d PATCH calls in %v, the policy allows at most %d", res.patches, now.Sub(w.created).Round(time.Second), res.bound)
	}
	if res.renewals < len(w.resources) {
		t.Errorf("%d renewals in the scenario, want at least one per subscription (%d)", res.renewals, len(w.resources))
	}
	return res
}

// untilDue waits until the renewals created at w.created are about to
// fall due: lead before the earliest.
func (w *subsWatch) untilDue(lead time.Duration) {
	hold(time.Until(w.created.Add(subsMinRenew - lead)))
}

// managedLoad starts the load through the managed subscription on
// resource and a forged one (created by the test, wrong clientState).
func managedLoad(t *testing.T, s settings, sim *managedSim, w *subsWatch, notifyURL string) *load {
	t.Helper()
	gen := &graphsim.Subscription{ID: w.id(subsResource)}
	forged := subscribe(t, sim.Sim, notifyURL, forgedResource, randomClientState("forged-"), nil)
	l := startLoad(t, sim.Sim, maxBatch, gen, forged, s.perTick, s.tick)
	waitDelivered(t, sim.Sim, notifyURL, s.warm, 30*time.Second)
	return l
}

// leaseHeld reports whether the receiver at base says on /metrics that
// it holds the renewal lease.
func leaseHeld(base string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "graphhook_subscription_lease_held{") && strings.HasSuffix(line, " 1") {
			return true
		}
	}
	return false
}

// leaseHolderKill: two receivers share one nats-server and the
// manager's bucket, behind a load balancer; the lease holder is killed
// (SIGKILL) shortly before the renewals fall due, and the other one must
// take the lease within the lease TTL and renew everything once.
func leaseHolderKill(t *testing.T, s settings) result {
	b := bins.get(t)
	sim := newManagedSim(t, maxBatch)
	n := newNATS(t, b.nats, "n1")
	n.start(t)
	clientState := randomClientState("faults-")
	a := newManagedReceiver(t, b.receiver, []string{n.url()}, clientState)
	c := newManagedReceiver(t, b.receiver, []string{n.url()}, clientState)
	lb := failover(t, []*receiverProc{a, c})
	file := subsConfig(t, sim, lb, subsLeaseTTL, subsResource, subsResource2)
	a.configure(file)
	c.configure(file)
	a.start(t) // alone on the bucket: the holder
	w := watchSubs(t, sim, subsResource, subsResource2)
	if !leaseHeld(a.base()) {
		t.Fatal("the first receiver does not report the lease on /metrics after creating the subscriptions")
	}
	c.start(t)
	l := managedLoad(t, s, sim, w, lb)
	w.untilDue(9 * time.Second)

	f := fault{label: "holder killed", start: time.Now()}
	a.p.signal(t, syscall.SIGKILL)
	a.p.wait(t, 10*time.Second)
	f.end = f.start // graphsim's retries reach the survivor at once
	var takeover time.Duration
	testkit.CheckFor(t, subsLeaseTTL+5*time.Second, func() error {
		if !leaseHeld(c.base()) {
			return fmt.Errorf("the surviving receiver does not hold the lease %v after the kill", time.Since(f.start).Round(time.Millisecond))
		}
		takeover = time.Since(f.start)
		return nil
	})
	if takeover > subsLeaseTTL {
		t.Errorf("the survivor took the lease %v after the kill, more than the lease TTL %v", takeover, subsLeaseTTL)
	}
	renewed := w.renewedSince(t, f.start, subsLifetime)
	waitDelivered(t, sim.Sim, lb, s.warm, 60*time.Second)
	hold(s.after)
	sr := w.ledger(t, 0)
	f.mayNotBite = true // whether a POST was in flight to the killed one is chance
	r := ledger(t, l, []string{n.url()}, natspub.DefaultStream, []fault{f})
	r.Load = loadText(s, s.perTick) + ", through a managed subscription"
	r.Done = fmt.Sprintf("two receivers with a subscriptions section (2 managed subscriptions of 1-minute lifetime, leaseTtl %s) on one nats-server, behind a load balancer; "+
		"the lease holder was killed with SIGKILL %s before the renewals fell due; the other held the lease %.2f s later and renewed both %.2f s after the kill; %s",
		secs(subsLeaseTTL), secs(w.created.Add(subsMinRenew).Sub(f.start).Round(time.Second)), takeover.Seconds(), renewed.Sub(f.start).Seconds(), sr.text())
	return r
}

// managedSingle is the set-up of the other manager scenarios: one
// nats-server, one receiver with the subscriptions section on resources,
// the load through the managed subscription.
type managedSingle struct {
	nats *natsNode
	rcv  *receiverProc
	sim  *managedSim
	w    *subsWatch
	load *load
}

func startManagedSingle(t *testing.T, s settings, leaseTTL time.Duration, resources ...string) *managedSingle {
	t.Helper()
	b := bins.get(t)
	e := &managedSingle{sim: newManagedSim(t, maxBatch)}
	e.nats = newNATS(t, b.nats, "n1")
	e.nats.start(t)
	e.rcv = newManagedReceiver(t, b.receiver, []string{e.nats.url()}, randomClientState("faults-"))
	e.rcv.configure(subsConfig(t, e.sim, e.rcv.url, leaseTTL, resources...))
	e.rcv.start(t)
	e.w = watchSubs(t, e.sim, resources...)
	e.load = managedLoad(t, s, e.sim, e.w, e.rcv.url)
	return e
}

// Graph's answers to the renewals in the graph-throttles-renewals
// scenario: a 429 asking for throttleRetryAfter, then two 503s.
const (
	throttleRetryAfter = 4 * time.Second
	throttle503s       = 2
	throttleLeaseTTL   = 3 * time.Second // passes every second
)

// graphThrottlesRenewals: Graph answers the renewal of the managed
// subscription with 429 and Retry-After, then 503 twice, then recovers.
// The manager must wait at least the Retry-After, back off between the
// 503s (minBackoff 1 s doubling: at least 1 s, then 2 s, with the
// policy's half jitter), and renew once Graph answers, before the expiry.
func graphThrottlesRenewals(t *testing.T, s settings) result {
	e := startManagedSingle(t, s, throttleLeaseTTL, subsResource)
	id := e.w.id(subsResource)
	e.w.untilDue(4 * time.Second)
	injected := time.Now()
	var expiry time.Time // before the renewal
	for _, sub := range e.sim.Subscriptions() {
		if sub.ID == id {
			expiry = sub.ExpirationDateTime
		}
	}
	faults := []graphsim.Fault{{Op: graphsim.OpUpdate, SubscriptionID: id, Status: 429, RetryAfterSeconds: int(throttleRetryAfter / time.Second), Count: 1}}
	for range throttle503s {
		faults = append(faults, graphsim.Fault{Op: graphsim.OpUpdate, SubscriptionID: id, Status: 503, Count: 1})
	}
	for _, f := range faults {
		if err := e.sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	renewed := e.w.renewedSince(t, injected, subsLifetime)
	calls := e.w.patchesBetween(injected, renewed)
	if len(calls) != len(faults)+1 {
		t.Fatalf("graphsim saw %d PATCH calls up to the renewal, want %d: the %d failures and the renewal", len(calls), len(faults)+1, len(faults))
	}
	// The watch sees a call within 50 ms of it; the manager's waits are
	// measured between calls, so allow one poll either side.
	const poll = 100 * time.Millisecond
	var gaps []string
	for i, min := range []time.Duration{throttleRetryAfter, subsMinBackoff, 2 * subsMinBackoff} {
		// After the n-th failure the wait is at least half of
		// minBackoff·2^(n-1) (the jitter), and never below Retry-After:
		// 4 s, then 1 s, then 2 s.
		want := min
		gap := calls[i+1].Sub(calls[i])
		gaps = append(gaps, fmt.Sprintf("%.1f s", gap.Seconds()))
		if gap < want-poll {
			t.Errorf("PATCH %d came %v after PATCH %d (answered %s), want at least %v", i+2, gap.Round(time.Millisecond), i+1, []string{"429", "503", "503"}[i], want)
		}
	}
	hold(s.after)
	sr := e.w.ledger(t, len(faults))
	r := ledger(t, e.load, []string{e.nats.url()}, natspub.DefaultStream, nil)
	r.Load = loadText(s, s.perTick) + ", through a managed subscription"
	r.Done = fmt.Sprintf("one receiver with a subscriptions section (a managed subscription of 1-minute lifetime, minBackoff %s, maxBackoff %s); "+
		"as its renewal fell due, graphsim answered the PATCH with 429 (Retry-After %s), then 503 twice: the manager's calls came %s apart, "+
		"and it renewed %.1f s after the first failure, %.1f s before the expiry; %s",
		secs(subsMinBackoff), secs(subsMaxBackoff), secs(throttleRetryAfter), strings.Join(gaps, ", "),
		renewed.Sub(calls[0]).Seconds(), expiry.Sub(renewed).Seconds(), sr.text())
	return r
}

// kvUnavailable stops the nats-server that holds the manager's bucket
// (and GRAPH) shortly before the renewals fall due, keeps it down, and
// starts it again on the same port and store. Meanwhile the receiver
// must answer 503 (it cannot store a notification) and never 202 for one
// it loses; once NATS is back the manager must take its lease again and
// renew before the expiry.
func kvUnavailable(t *testing.T, s settings) result {
	e := startManagedSingle(t, s, subsLeaseTTL, subsResource, subsResource2)
	e.w.untilDue(8 * time.Second)
	f, ready := stopNATS(t, e.nats, e.sim.Sim, e.rcv)
	hold(s.outage)
	f.end = time.Now()
	e.nats.start(t)
	renewed := e.w.renewedSince(t, f.end, subsLifetime)
	ok, total := answeredBetween(e.sim.Sim, e.load.genuine, f.start, f.end)
	waitDelivered(t, e.sim.Sim, e.rcv.url, s.warm, 60*time.Second)
	hold(s.after)
	sr := e.w.ledger(t, 0)
	if n := len(e.w.patchesBetween(f.start, f.end)); n != 0 {
		t.Errorf("%d PATCH calls while the bucket was unreachable: the manager called Graph without its lease", n)
	}
	r := ledger(t, e.load, []string{e.nats.url()}, natspub.DefaultStream, []fault{f})
	r.Load = loadText(s, s.perTick) + ", through a managed subscription"
	r.Done = fmt.Sprintf("one receiver with a subscriptions section (2 managed subscriptions of 1-minute lifetime, leaseTtl %s) on one nats-server that also holds the manager's bucket; "+
		"the nats-server was stopped with SIGTERM %s before the renewals fell due, kept down %s (%d of the %d POSTs started meanwhile answered 2xx, /readyz answered %s) "+
		"and started again on the same port and store; the manager renewed both %.2f s after the restart, with no PATCH while the bucket was unreachable; %s",
		secs(subsLeaseTTL), secs(e.w.created.Add(subsMinRenew).Sub(f.start).Round(time.Second)), secs(s.outage), ok, total, ready, renewed.Sub(f.end).Seconds(), sr.text())
	return r
}

// bucketStream is the stream behind the manager's key-value bucket.
const bucketStream = "KV_graphhook-subscriptions"

// kvLeaderless runs the receiver with a subscriptions section on a
// three-node NATS cluster with GRAPH pre-created R3, and kills the node
// that leads the manager's bucket (the manager creates it with one
// replica, so the bucket has no leader until that node is back), keeps
// it down and restarts it on the same port and store. GRAPH, with a
// majority left, stays writable: the receiver may go on accepting the
// notifications whose clientState it has cached, or answer 503, but never
// 202 for one it loses; the manager must make no Graph call while it
// cannot claim its records, and renew once the bucket is back.
func kvLeaderless(t *testing.T, s settings) result {
	b := bins.get(t)
	sim := newManagedSim(t, maxBatch)
	nodes, urls, js := startCluster(t, b.nats)
	rcv := newManagedReceiver(t, b.receiver, urls, randomClientState("faults-"))
	rcv.args = append(rcv.args, replicaFlags(t, b.receiver, 3)...)
	rcv.configure(subsConfig(t, sim, rcv.url, subsLeaseTTL, subsResource, subsResource2))
	rcv.start(t)
	w := watchSubs(t, sim, subsResource, subsResource2)
	l := managedLoad(t, s, sim, w, rcv.url)
	victim := leaderNode(t, nodes, waitReplicated(t, js, bucketStream, 1))
	outage := max(s.outage, 5*time.Second)
	w.untilDue(outage + 5*time.Second)
	f := fault{label: "bucket leader killed", start: time.Now(), mayNotBite: true}
	victim.p.signal(t, syscall.SIGKILL)
	victim.p.wait(t, 10*time.Second)
	hold(outage)
	f.end = time.Now()
	ok, total := answeredBetween(sim.Sim, l.genuine, f.start, f.end)
	patches := len(w.patchesBetween(f.start, f.end))
	victim.start(t)
	renewed := w.renewedSince(t, f.end, subsLifetime)
	waitDelivered(t, sim.Sim, rcv.url, s.warm, 60*time.Second)
	hold(s.after)
	sr := w.ledger(t, 0)
	if patches != 0 {
		t.Errorf("%d PATCH calls while the bucket had no leader: the manager called Graph without claiming its records", patches)
	}
	r := ledger(t, l, urls, natspub.DefaultStream, []fault{f})
	r.Load = loadText(s, s.perTick) + ", through a managed subscription"
	r.Done = fmt.Sprintf("one receiver with a subscriptions section (2 managed subscriptions of 1-minute lifetime, leaseTtl %s) on a 3-node nats-server cluster with GRAPH R3; "+
		"the node leading the manager's bucket (%s, created with 1 replica by the manager) was killed with SIGKILL %s before the renewals fell due and kept down %s: "+
		"%d of the %d POSTs started meanwhile were answered 2xx (clientStates from the receiver's cache), no PATCH was made; restarted on the same port and store, "+
		"the manager renewed both %.2f s later; %s",
		secs(subsLeaseTTL), bucketStream, secs(w.created.Add(subsMinRenew).Sub(f.start).Round(time.Second)), secs(outage), ok, total, renewed.Sub(f.end).Seconds(), sr.text())
	return r
}
