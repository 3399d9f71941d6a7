package faults

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
)

// single is the set-up most scenarios share: one external nats-server,
// one receiver binary using it, graphsim with a genuine and a forged
// subscription to the receiver, and the load running.
type single struct {
	nats        *natsNode
	rcv         *receiverProc
	sim         *graphsim.Sim
	load        *load
	clientState string
}

// startSingle starts the set-up and waits until the load flows.
func startSingle(t *testing.T, s settings) *single {
	t.Helper()
	b := bins.get(t)
	e := &single{clientState: randomClientState("faults-")}
	e.nats = newNATS(t, b.nats, "n1")
	e.nats.start(t)
	e.rcv = newReceiver(t, b.receiver, []string{e.nats.url()}, e.clientState)
	e.rcv.start(t)
	e.sim = newSim(t, maxBatch)
	gen := subscribe(t, e.sim, e.rcv.url, genuineResource, e.clientState, nil)
	forged := subscribe(t, e.sim, e.rcv.url, forgedResource, randomClientState("forged-"), nil)
	e.load = startLoad(t, e.sim, maxBatch, gen, forged, s.perTick, s.tick)
	waitDelivered(t, e.sim, e.rcv.url, s.warm, 30*time.Second)
	return e
}

// loadText describes the load of s for the table.
func loadText(s settings, perTick int) string {
	return fmt.Sprintf("%d/s in POSTs of %d", int(float64(perTick)/s.tick.Seconds()), maxBatch)
}

// finish keeps the load up for s.after once the receiver answers again,
// then runs the ledger.
func (e *single) finish(t *testing.T, s settings, faults ...fault) result {
	t.Helper()
	waitDelivered(t, e.sim, e.rcv.url, s.warm, 60*time.Second)
	hold(s.after)
	return ledger(t, e.load, []string{e.nats.url()}, natspub.DefaultStream, faults)
}

// readyz returns the status of the receiver's /readyz, or "no answer".
func readyz(base string) string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/readyz")
	if err != nil {
		return "no answer"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return strconv.Itoa(resp.StatusCode)
}

// jsConnect returns a JetStream client of the servers at urls that
// reconnects through every outage, closed when the test ends.
func jsConnect(t *testing.T, urls ...string) jetstream.JetStream {
	t.Helper()
	return connectJS(t, urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

// stopNATS stops the nats-server n with SIGTERM under load and waits
// until graphsim sees a delivery to rcv fail. It returns the fault,
// started at the signal, and what the receiver's /readyz answered then.
func stopNATS(t *testing.T, n *natsNode, sim *graphsim.Sim, rcv *receiverProc) (fault, string) {
	t.Helper()
	f := fault{label: "NATS restart", start: time.Now()}
	n.p.signal(t, syscall.SIGTERM)
	if code := n.p.wait(t, 30*time.Second); code != 0 {
		t.Logf("nats-server exited with %d after SIGTERM", code)
	}
	waitFailures(t, sim, rcv.url, 1, 30*time.Second)
	return f, readyz(rcv.base())
}

// natsRestart stops the external nats-server under load (SIGTERM), keeps
// it down, and starts it again on the same port and store.
func natsRestart(t *testing.T, s settings) result {
	e := startSingle(t, s)
	f, ready := stopNATS(t, e.nats, e.sim, e.rcv)
	hold(s.outage)
	f.end = time.Now()
	e.nats.start(t)
	r := e.finish(t, s, f)
	r.Load = loadText(s, s.perTick)
	r.Done = fmt.Sprintf("the external nats-server was stopped with SIGTERM under load, kept down %s and started again on the same port and store "+
		"(the receiver kept running; /readyz answered %s while NATS was down)", secs(s.outage), ready)
	return r
}

// burstPOSTs is the number of POSTs queued at once right before the
// receiver is killed or stopped, so that some are in flight.
const burstPOSTs = 200

// stopInBurst starts the set-up, queues a burst of POSTs so that some are
// in flight, and stops the receiver with sig. It returns the set-up, the
// fault (started at the signal) and the receiver's exit code.
func stopInBurst(t *testing.T, s settings, sig syscall.Signal, timeout time.Duration) (*single, fault, int) {
	t.Helper()
	e := startSingle(t, s)
	e.load.burst(t, e.rcv.url, burstPOSTs)
	f := fault{label: "receiver restart", start: time.Now()}
	e.rcv.p.signal(t, sig)
	return e, f, e.rcv.p.wait(t, timeout)
}

// restartAfterBurst keeps the receiver stopped by stopInBurst down for
// s.outage, starts it again on the same port and runs the ledger.
func (e *single) restartAfterBurst(t *testing.T, s settings, f fault) result {
	t.Helper()
	hold(s.outage)
	f.end = time.Now()
	e.rcv.start(t)
	r := e.finish(t, s, f)
	r.Load = loadText(s, s.perTick) + fmt.Sprintf(", and a burst of %d", burstPOSTs)
	return r
}

// receiverSIGKILL kills the receiver under load and starts it again on
// the same port, as a supervisor would after its restart delay.
func receiverSIGKILL(t *testing.T, s settings) result {
	e, f, _ := stopInBurst(t, s, syscall.SIGKILL, 10*time.Second)
	r := e.restartAfterBurst(t, s, f)
	r.Done = fmt.Sprintf("during a burst of %d POSTs, the receiver was killed with SIGKILL under load (%s), kept down %s "+
		"and started again on the same port; NATS kept running", burstPOSTs, inFlight(t, e.sim, e.load.genuine, f.start), secs(s.outage))
	return r
}

// receiverSIGTERM stops the receiver with SIGTERM under load: it drains
// (in-flight batches finish or get 503) and exits 0; then it starts again.
func receiverSIGTERM(t *testing.T, s settings) result {
	e, f, code := stopInBurst(t, s, syscall.SIGTERM, 60*time.Second)
	drained := time.Since(f.start)
	if code != 0 {
		t.Errorf("receiver exited with %d after SIGTERM, want 0", code)
	}
	if logs := e.rcv.p.stderr.String(); !strings.Contains(logs, `"msg":"shutdown complete"`) {
		t.Errorf("the receiver's log does not say shutdown complete:\n%s", tail(logs, 2000))
	}
	r := e.restartAfterBurst(t, s, f)
	r.Done = fmt.Sprintf("during a burst of %d POSTs, the receiver got SIGTERM under load (%s), drained and exited %d after %.2f s, "+
		"stayed down %s and was started again on the same port", burstPOSTs, inFlight(t, e.sim, e.load.genuine, f.start), code, drained.Seconds(), secs(s.outage))
	return r
}

// streamFull limits GRAPH to a few more messages with discard new, so
// JetStream refuses writes, and raises the limit after the outage.
func streamFull(t *testing.T, s settings) result {
	e := startSingle(t, s)
	js := jsConnect(t, e.nats.url())
	ctx := t.Context()
	st, err := js.Stream(ctx, natspub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	origMax, origDiscard := cfg.MaxMsgs, cfg.Discard
	f := fault{label: "stream full", start: time.Now()}
	cfg.MaxMsgs = int64(info.State.Msgs) + 50
	cfg.Discard = jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("limit %s: %v", natspub.DefaultStream, err)
	}
	waitFailures(t, e.sim, e.rcv.url, 5, 30*time.Second)
	ready := readyz(e.rcv.base())
	hold(s.outage)
	cfg.MaxMsgs, cfg.Discard = origMax, origDiscard
	f.end = time.Now()
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("free %s: %v", natspub.DefaultStream, err)
	}
	r := e.finish(t, s, f)
	r.Load = loadText(s, s.perTick)
	r.Done = fmt.Sprintf("while the receiver ran, GRAPH was limited (UpdateStream) to 50 more messages with discard new, so JetStream refused writes for %s "+
		"(/readyz answered %s meanwhile), then set back to unlimited (the limit is changed at run time, "+
		"so the scenario does not depend on whether the receiver keeps an existing stream's limits when it starts)", secs(s.outage), ready)
	return r
}

// jwksProxy is the key endpoint the receiver is configured with: a
// reverse proxy to graphsim's JWKS that the test turns off (connections
// refused) and on again on the same port.
type jwksProxy struct {
	t      *testing.T
	port   int
	target *url.URL
	srv    *http.Server
}

func newJWKSProxy(t *testing.T, sim *graphsim.Sim) *jwksProxy {
	u, err := url.Parse(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &jwksProxy{t: t, port: freePort(t), target: u}
	t.Cleanup(p.down)
	return p
}

// url is the JWKS URL the receiver fetches.
func (p *jwksProxy) url() string {
	return fmt.Sprintf("http://127.0.0.1:%d/common/discovery/v2.0/keys", p.port)
}

// up starts serving.
func (p *jwksProxy) up() {
	p.t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.port))
	if err != nil {
		p.t.Fatalf("JWKS proxy: %v", err)
	}
	rp := httputil.NewSingleHostReverseProxy(p.target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
}

// down stops serving: new connections are refused, open ones closed.
func (p *jwksProxy) down() {
	if p.srv != nil {
		_ = p.srv.Close()
		p.srv = nil
	}
}

// jwksDown runs rich notifications with the key endpoint down when the
// receiver starts, and down again during a key rotation.
func jwksDown(t *testing.T, s settings) result {
	b := bins.get(t)
	clientState := randomClientState("faults-")
	key, err := decrypt.GenerateKey(2048, "graphhook-faults", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key.ID = "faults-key"
	pemData, err := key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	sim := newSim(t, maxBatch)
	proxy := newJWKSProxy(t, sim)
	n := newNATS(t, b.nats, "n1")
	n.start(t)

	// Down at start.
	atStart := fault{label: "down at start", start: time.Now()}
	rcv := newReceiver(t, b.receiver, []string{n.url()}, clientState,
		"--key", keyFile+",id="+key.ID, "--app-id", graphsim.DefaultAppID, "--jwks-url", proxy.url())
	rcv.start(t)
	gen := subscribe(t, sim, rcv.url, genuineResource, clientState, &key)
	forged := subscribe(t, sim, rcv.url, forgedResource, randomClientState("forged-"), nil)
	const perTick = 2 // every rich item costs the receiver an RSA decryption
	l := startLoad(t, sim, maxBatch, gen, forged, perTick, s.tick)
	waitFailures(t, sim, rcv.url, 5, 30*time.Second)
	readyDown := readyz(rcv.base())
	hold(s.outage)
	atStart.end = time.Now()
	proxy.up()
	waitDelivered(t, sim, rcv.url, s.warm, 60*time.Second)

	// Down during a rotation: the new kid is unknown, the refetch fails.
	rotation := fault{label: "down at rotation", start: time.Now()}
	proxy.down()
	if err := sim.RotateKey(); err != nil {
		t.Fatal(err)
	}
	waitFailures(t, sim, rcv.url, 5, 30*time.Second)
	hold(s.outage)
	rotation.end = time.Now()
	proxy.up()
	waitDelivered(t, sim, rcv.url, s.warm, 60*time.Second)
	hold(s.after)

	r := ledger(t, l, []string{n.url()}, natspub.DefaultStream, []fault{atStart, rotation})
	r.Load = fmt.Sprintf("%d/s rich (encrypted, validationTokens) in POSTs of %d", int(float64(perTick)/s.tick.Seconds()), maxBatch)
	r.Done = fmt.Sprintf("rich notifications with the receiver's --jwks-url pointing at a proxy of graphsim's key set that refused connections for %s "+
		"after the receiver started (/readyz answered %s), then again for %s right after graphsim rotated its signing key (tokens with an unknown kid, refetch failing)",
		secs(s.outage), readyDown, secs(s.outage))
	return r
}

// slowStats counts what the slow clients achieved.
type slowStats struct {
	dialed, cut, open atomic.Int64
}

// slowClient opens a connection to addr and trickles a request: only
// headers (bodyUpfront < 0), or complete headers announcing a 4 MiB body
// of which bodyUpfront bytes are sent at once and the rest one byte per
// 100 ms, until ctx ends.
func slowClient(ctx context.Context, addr string, bodyUpfront int, st *slowStats) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	st.dialed.Add(1)
	st.open.Add(1)
	defer st.open.Add(-1)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	write := func(s string) bool {
		if _, err := io.WriteString(c, s); err != nil {
			if ctx.Err() == nil {
				st.cut.Add(1)
			}
			return false
		}
		return true
	}
	head := "POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	drip := "a"
	if bodyUpfront < 0 {
		head += "X-Slow: "
	} else {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n{\"value\":[", 4<<20) + strings.Repeat(" ", bodyUpfront)
		drip = " "
	}
	if !write(head) {
		return
	}
	every(ctx, 100*time.Millisecond, func() bool { return write(drip) })
}

// every calls f every d until ctx ends or f returns false.
func every(ctx context.Context, d time.Duration, f func() bool) {
	tk := time.NewTicker(d)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if !f() {
			return
		}
	}
}

// slowClients attacks the receiver with slow clients (headers trickled,
// and bodies trickled after a large start) while graphsim delivers.
func slowClients(t *testing.T, s settings) result {
	e := startSingle(t, s)
	addr := strings.TrimPrefix(e.rcv.base(), "http://")
	rssBefore := e.rcv.p.peakRSS()
	const upfront = 256 << 10
	var st slowStats
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	f := fault{label: "slow clients", start: time.Now(), mayNotBite: true}
	for i := range 2 * s.slowConns {
		up := -1
		if i%2 == 1 {
			up = upfront
		}
		wg.Go(func() { slowClient(ctx, addr, up, &st) })
	}
	testkit.CheckFor(t, 30*time.Second, func() error {
		if d := st.dialed.Load(); d < int64(s.slowConns) {
			return fmt.Errorf("%d slow clients connected", d)
		}
		return nil
	})
	waitDelivered(t, e.sim, e.rcv.url, s.warm, 60*time.Second) // genuine deliveries go on during the attack
	hold(s.attack)
	open := st.open.Load()
	rssPeak := e.rcv.p.peakRSS()
	f.end = time.Now()
	cancel()
	wg.Wait()
	ok, total := answeredBetween(e.sim, e.load.genuine, f.start, f.end)
	r := e.finish(t, s, f)
	r.Load = loadText(s, s.perTick)
	r.Done = fmt.Sprintf("%d slow clients trickled headers (1 byte per 100 ms) and %d sent headers announcing 4 MiB and %d KiB of body, then 1 byte per 100 ms, "+
		"for %s while graphsim delivered; %d of %d connected, %d still open at the end, %d cut by the receiver; during the attack %d of %d genuine POSTs were answered 2xx; "+
		"receiver peak RSS %s before, %s during the attack",
		s.slowConns, s.slowConns, upfront>>10, secs(s.attack), st.dialed.Load(), 2*s.slowConns, open, st.cut.Load(), ok, total, mib(rssBefore), mib(rssPeak))
	return r
}

// secs formats d in seconds, e.g. "3 s".
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// mib formats a byte count in MiB, or "n/a".
func mib(n int64) string {
	if n <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// roundRobin is the load balancer in front of the receivers of the
// scale-out scenario: each request goes to the next receiver; a receiver
// that cannot be reached gets a 502, which graphsim retries.
func roundRobin(t *testing.T, backends []*receiverProc) string {
	t.Helper()
	var n atomic.Uint64
	return balancer(t, func() *receiverProc { return backends[n.Add(1)%uint64(len(backends))] })
}

// balancer serves a reverse proxy on a free port that sends each request
// to the receiver next picks, and returns its notification URL. A
// receiver that cannot be reached gets a 502, which graphsim retries.
func balancer(t *testing.T, next func() *receiverProc) string {
	t.Helper()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u, _ := url.Parse(next().base())
			pr.SetURL(u)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/notifications"
}

// graphStream is GRAPH as the receiver makes it with its defaults, with
// replicas replicas: what an operator pre-creates for a cluster.
func graphStream(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       natspub.DefaultStream,
		Subjects:   []string{natspub.DefaultSubjectPrefix + ".notifications.>", natspub.DefaultSubjectPrefix + ".lifecycle.>"},
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		MaxAge:     natspub.DefaultMaxAge,
		Duplicates: natspub.DefaultDuplicateWindow,
	}
}

// replicaFlags returns the receiver's flags that set the streams'
// replicas on create, if this receiver has them (issue 15 adds them).
func replicaFlags(t *testing.T, bin string, replicas int) []string {
	t.Helper()
	help, _ := exec.CommandContext(t.Context(), bin, "-h").CombinedOutput()
	var out []string
	for _, name := range []string{"stream-replicas", "quarantine-stream-replicas"} {
		if strings.Contains(string(help), "--"+name) {
			out = append(out, "--"+name, strconv.Itoa(replicas))
		}
	}
	return out
}

// streamNames lists the streams of the account.
func streamNames(js jetstream.JetStream) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := js.StreamNames(ctx)
	var names []string
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// waitReplicated waits until stream has a leader and replicas-1 current
// followers.
func waitReplicated(t *testing.T, js jetstream.JetStream, stream string, replicas int) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	testkit.CheckFor(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		if info, err = st.Info(ctx); err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("%s has no leader", stream)
		}
		current := 0
		for _, p := range info.Cluster.Replicas {
			if p.Current && !p.Offline {
				current++
			}
		}
		if current < replicas-1 {
			return fmt.Errorf("%s has %d current followers, want %d", stream, current, replicas-1)
		}
		return nil
	})
	return info
}

// startCluster starts a three-node NATS cluster and pre-creates GRAPH
// with three replicas in it, as an operator of the scale-out deployment
// does. It returns the nodes, their client URLs and a JetStream client of
// them all.
func startCluster(t *testing.T, bin string) ([]*natsNode, []string, jetstream.JetStream) {
	t.Helper()
	nodes := newCluster(t, bin, 3)
	var urls []string
	for _, n := range nodes {
		n.start(t)
		urls = append(urls, n.url())
	}
	js := jsConnect(t, urls...)
	testkit.CheckFor(t, 60*time.Second, func() error {
		actx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(actx)
		return err
	})
	// Until every server has joined the meta group, placement may find
	// too few peers; creating an identical stream again is a no-op.
	testkit.CheckFor(t, 60*time.Second, func() error {
		cctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := js.CreateStream(cctx, graphStream(3)); err != nil {
			return fmt.Errorf("pre-create GRAPH R3: %w", err)
		}
		return nil
	})
	return nodes, urls, js
}

// leaderNode returns the node of nodes that leads the stream of info.
func leaderNode(t *testing.T, nodes []*natsNode, info *jetstream.StreamInfo) *natsNode {
	t.Helper()
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			return n
		}
	}
	t.Fatalf("%s is led by %q, not one of the cluster's nodes", info.Config.Name, info.Cluster.Leader)
	return nil
}

// clusterLeaderLoss runs the scale-out deployment: receivers behind a
// load balancer, a three-node NATS cluster with R3 streams; it kills the
// GRAPH stream leader (SIGKILL) under load.
func clusterLeaderLoss(t *testing.T, s settings) result {
	b := bins.get(t)
	ctx := t.Context()
	nodes, urls, js := startCluster(t, b.nats)

	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		names, err := streamNames(js)
		if err != nil {
			t.Log(err)
		}
		for _, name := range names {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if st, err := js.Stream(cctx, name); err != nil {
				t.Logf("%s: %v", name, err)
			} else if info, err := st.Info(cctx); err != nil {
				t.Logf("%s: %v", name, err)
			} else if info.Cluster != nil {
				t.Logf("%s: leader %q, replicas %d, messages %d", name, info.Cluster.Leader, info.Config.Replicas, info.State.Msgs)
				for _, p := range info.Cluster.Replicas {
					t.Logf("%s: peer %s current %v offline %v lag %d", name, p.Name, p.Current, p.Offline, p.Lag)
				}
			}
			cancel()
		}
	})

	clientState := randomClientState("faults-")
	flags := replicaFlags(t, b.receiver, 3)
	rcvs := make([]*receiverProc, s.receivers)
	for i := range rcvs {
		rcvs[i] = newReceiver(t, b.receiver, urls, clientState, flags...)
		rcvs[i].start(t)
	}
	// The scale-out needs every stream at R3. A receiver without replica
	// settings creates its quarantine streams at R1, and before issue 15
	// it also set an existing GRAPH back to R1 when it started: raise
	// what is below R3, and say so in the report.
	var raised []string
	streams, err := streamNames(js)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range streams {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas >= 3 {
			continue
		}
		what := fmt.Sprintf("created %s at R%d", name, info.Config.Replicas)
		if name == natspub.DefaultStream {
			what = fmt.Sprintf("lowered the pre-created %s to R%d", name, info.Config.Replicas)
		}
		raised = append(raised, what)
		cfg := info.Config
		cfg.Replicas = 3
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("raise %s to R3: %v", name, err)
		}
	}
	for _, name := range streams {
		waitReplicated(t, js, name, 3)
	}

	lb := roundRobin(t, rcvs)
	sim := newSim(t, maxBatch)
	gen := subscribe(t, sim, lb, genuineResource, clientState, nil)
	forged := subscribe(t, sim, lb, forgedResource, randomClientState("forged-"), nil)
	l := startLoad(t, sim, maxBatch, gen, forged, s.perTick, s.tick)
	waitDelivered(t, sim, lb, s.warm, 30*time.Second)

	leader := leaderNode(t, nodes, waitReplicated(t, js, natspub.DefaultStream, 3))
	f := fault{label: "leader killed", start: time.Now(), fromStart: true}
	leader.p.signal(t, syscall.SIGKILL)
	leader.p.wait(t, 10*time.Second)
	f.end = time.Now()
	var survivors []string
	for _, n := range nodes {
		if n != leader {
			survivors = append(survivors, n.url())
		}
	}
	waitDelivered(t, sim, lb, s.warm, 60*time.Second)
	hold(s.after)
	newLeader := "?"
	{
		sjs := jsConnect(t, survivors...)
		info := waitReplicated(t, sjs, natspub.DefaultStream, 2)
		newLeader = info.Cluster.Leader
		if info.Config.Replicas != 3 {
			t.Errorf("GRAPH has %d replicas after the leader loss, want 3", info.Config.Replicas)
		}
	}

	// The killed server comes back under load and catches up.
	rejoin := time.Now()
	leader.start(t)
	waitReplicated(t, js, natspub.DefaultStream, 3)
	caughtUp := time.Since(rejoin)
	hold(s.after)

	r := ledger(t, l, urls, natspub.DefaultStream, []fault{f})
	r.Load = loadText(s, s.perTick)
	flagText := "no replica flags (this receiver has none)"
	if len(flags) > 0 {
		flagText = strings.Join(flags, " ")
	}
	note := "every stream was R3"
	if len(raised) > 0 {
		note = "NOTE: the receivers " + strings.Join(raised, " and ") + "; the test raised them to R3 before the load"
	}
	r.Done = fmt.Sprintf("%d receivers (%s) behind a round-robin load balancer, a 3-node nats-server cluster with GRAPH pre-created R3 (streams %s; %s); "+
		"the GRAPH leader %s was killed with SIGKILL under load and %s took over; %s later %s was restarted and was a current replica again %.2f s after its start",
		s.receivers, flagText, strings.Join(streams, ", "), note, leader.name, newLeader, secs(s.after), leader.name, caughtUp.Seconds())
	return r
}
