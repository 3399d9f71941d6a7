package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/graphhook/graphhook/graphsim"
)

// sample is one run of one target.
type sample struct {
	Rate      float64 // notifications/s
	P50, P99  time.Duration
	ServerCPU time.Duration // during the window
	Window    time.Duration // the measured window, to the last answer
	ClientCPU time.Duration
	Requests  int    // requests in the window
	Notified  int    // notifications answered 2xx in the window
	PeakRSS   uint64 // bytes, VmHWM at the end of the run
	Errors    int    // requests not answered 2xx
	Late      int    // answers after 3 s
	Statuses  map[int]int
	Check     string // "" when the stream holds every answered item
}

// cpuPer1000 returns the server's CPU-seconds per 1,000 notifications.
func (s sample) cpuPer1000() float64 {
	if s.Notified == 0 {
		return 0
	}
	return s.ServerCPU.Seconds() * 1000 / float64(s.Notified)
}

// cores returns how many cores the server kept busy on average.
func (s sample) cores() float64 {
	if s.Window <= 0 {
		return 0
	}
	return s.ServerCPU.Seconds() / s.Window.Seconds()
}

func (s sample) clientPer1000() float64 {
	if s.Notified == 0 {
		return 0
	}
	return s.ClientCPU.Seconds() * 1000 / float64(s.Notified)
}

// row is one scenario against one target.
type row struct {
	Scenario scenario
	Target   target
	Peak     []sample
	Raw      []float64 // raw decrypt rate of the target's backend, per run
	RawCPU   []float64 // its CPU-ms per decrypt, per run
	HalfRate float64   // notifications/s of the half-peak runs
	Half     []sample
}

// burstRun is one 1,000-change burst.
type burstRun struct {
	Statuses map[int]int
	Failures int
	Max      time.Duration // slowest answer
	Check    string
}

// report is everything the harness measured.
type report struct {
	Options options
	Env     environment
	NoOpen  string
	Rows    []*row
	Burst   map[string][]burstRun // by target name
	Targets []target              // daemons, in order
	Elapsed time.Duration
	// Incomplete is the error that stopped the harness early, if any.
	Incomplete string `json:",omitempty"`
}

func (h *harness) runAll(ctx context.Context, scs []scenario) (*report, error) {
	rep := &report{Options: h.o, Env: h.env, NoOpen: h.noOpen, Burst: map[string][]burstRun{}, Targets: h.daemons}
	// Count the steps for the progress estimate.
	for _, sc := range scs {
		n := 1 + len(h.daemons)
		if sc.Kind == "rich" {
			n += len(h.daemons)
		}
		if h.o.Half {
			n += 1 + len(h.daemons)
		}
		h.todo += h.o.Runs * n
	}
	if h.o.Burst {
		h.todo += h.o.Runs * len(h.daemons)
	}
	h.logf("%d steps: %d run(s) of %s (after %s warm-up) per row; the machine's load average is %s", h.todo, h.o.Runs, h.o.Duration, h.o.Warmup, h.env.LoadBefore)
	var err error
	for _, sc := range scs {
		h.keepPool(sc.Bits)
		var rows []*row
		rows, err = h.runScenario(ctx, sc)
		rep.Rows = append(rep.Rows, rows...)
		if err != nil {
			err = fmt.Errorf("%s: %w", sc.Name, err)
			break
		}
	}
	if err == nil && h.o.Burst {
		if err = h.runBurst(ctx, rep); err != nil {
			err = fmt.Errorf("burst: %w", err)
		}
	}
	if err != nil {
		rep.Incomplete = err.Error()
	}
	rep.Env.LoadAfter = loadAvg()
	rep.Elapsed = time.Since(h.start)
	return rep, err
}

// bodies returns the pre-generated bodies of sc.
func (h *harness) bodies(ctx context.Context, sc scenario) (*bodySet, error) {
	switch sc.Kind {
	case "basic":
		return basicBodies(h.p, sc.Batch)
	case "rich":
		pool, err := h.pool(ctx, sc.Bits)
		if err != nil {
			return nil, err
		}
		return richBodies(h.sim, h.p, pool, sc.Batch)
	}
	return nil, nil
}

// pool returns the distinct rich items for a key size, generating them
// once.
func (h *harness) pool(ctx context.Context, bits int) ([]graphsim.Notification, error) {
	if p, ok := h.pools[bits]; ok {
		return p, nil
	}
	t0 := time.Now()
	h.logf("encrypting %d distinct RSA-%d items (before any measurement)...", richPoolSize, bits)
	p, err := richPool(ctx, h.p, h.keys[bits], h.keys[bits].ID, richPoolSize, func(done int) {
		h.logf("  %d/%d encrypted", done, richPoolSize)
	})
	if err != nil {
		return nil, err
	}
	h.logf("  done in %s", time.Since(t0).Round(100*time.Millisecond))
	h.pools[bits] = p
	return p, nil
}

// keepPool drops the rich items of every key size but bits (0: all of
// them) and collects them: hundreds of MiB of them left in the client's
// heap cost its collector CPU that the later scenarios' servers share the
// cores with. A later scenario that needs them again encrypts them again.
func (h *harness) keepPool(bits int) {
	dropped := false
	for b := range h.pools {
		if b != bits {
			delete(h.pools, b)
			dropped = true
		}
	}
	if dropped {
		runtime.GC()
	}
}

// concurrency returns the closed-loop workers of sc: -batch-concurrency
// for batches of more than one item, -concurrency otherwise.
func (h *harness) concurrency(sc scenario) int {
	if sc.Batch > 1 {
		return h.o.BatchConcurrency
	}
	return h.o.Concurrency
}

// newLoad returns the load of sc on url.
func (h *harness) newLoad(sc scenario, bodies *bodySet, u string) load {
	l := load{URL: u, Bodies: bodies, Concurrency: h.concurrency(sc), Duration: h.o.Duration}
	if sc.Kind == "handshake" {
		l.Token = graphsim.ValidationTokenPrefix + graphsim.NewGUID()
	}
	return l
}

func (h *harness) runScenario(ctx context.Context, sc scenario) ([]*row, error) {
	bodies, err := h.bodies(ctx, sc)
	if err != nil {
		return nil, err
	}
	bare := &row{Scenario: sc, Target: h.bare}
	rows := []*row{bare}
	for _, d := range h.daemons {
		rows = append(rows, &row{Scenario: sc, Target: d})
	}
	for i := range h.o.Runs {
		if sc.Kind == "rich" {
			for _, r := range rows[1:] {
				h.stepf("%s run %d/%d: raw decrypt rate, backend %s, %d goroutines", sc.Name, i+1, h.o.Runs, r.Target.Backend, h.env.Cores)
				raw, err := measureRaw(ctx, r.Target.Self, h.keyFiles[sc.Bits], r.Target.Backend, h.o.RawDuration)
				if err != nil {
					return rows, err
				}
				r.Raw = append(r.Raw, raw.PerSecond)
				r.RawCPU = append(r.RawCPU, raw.CPUPerDecrypt)
				h.logf("  %.0f decrypts/s, %.3f CPU-ms per decrypt", raw.PerSecond, raw.CPUPerDecrypt)
			}
		}
		for _, r := range rows {
			h.stepf("%s run %d/%d: %s, %d workers", sc.Name, i+1, h.o.Runs, r.Target.Name, h.concurrency(sc))
			s, err := h.measure(ctx, sc, r.Target, bodies, 0)
			if err != nil {
				return rows, err
			}
			r.Peak = append(r.Peak, s)
			h.logSample(s)
		}
	}
	if !h.o.Half {
		return rows, nil
	}
	for _, r := range rows {
		var rates []float64
		for _, s := range r.Peak {
			rates = append(rates, s.Rate)
		}
		r.HalfRate = median(rates) / 2
		for i := range h.o.Runs {
			h.stepf("%s half-peak run %d/%d: %s at %.0f notifications/s (open loop)", sc.Name, i+1, h.o.Runs, r.Target.Name, r.HalfRate)
			s, err := h.measure(ctx, sc, r.Target, bodies, r.HalfRate)
			if err != nil {
				return rows, err
			}
			r.Half = append(r.Half, s)
			h.logSample(s)
		}
	}
	return rows, nil
}

func (h *harness) logSample(s sample) {
	check := ""
	if s.Check != "" {
		check = "; CHECK FAILED: " + s.Check
	}
	h.logf("  %.0f notifications/s, p50 %.2f ms, p99 %.2f ms, %.3f server CPU-s/1000, peak RSS %.0f MiB, client CPU %.1fs, non-2xx %d%s",
		s.Rate, ms(s.P50), ms(s.P99), s.cpuPer1000(), float64(s.PeakRSS)/(1<<20), s.ClientCPU.Seconds(), s.Errors, check)
}

// startTarget starts a fresh server for t. Ports are chosen free but may
// be taken by another process before the server binds them (the machine
// is shared), so a server that exits at once is retried on new ports.
func (h *harness) startTarget(ctx context.Context, t target) (*server, error) {
	for attempt := 1; ; attempt++ {
		var srv *server
		var err error
		if t.Bare {
			srv, err = startBare(ctx, t.Self, h.work)
		} else {
			srv, err = startDaemon(ctx, t.Daemon, h.work, h.dcfg)
		}
		if err == nil || !errors.Is(err, errExited) || attempt == 3 {
			return srv, err
		}
		h.logf("  %v; retrying on other ports", err)
	}
}

// measure starts a fresh server for t, warms it up, measures one window
// (closed loop, or open loop at rate notifications/s), and checks the
// stream.
func (h *harness) measure(ctx context.Context, sc scenario, t target, bodies *bodySet, rate float64) (sample, error) {
	srv, err := h.startTarget(ctx, t)
	if err != nil {
		return sample{}, err
	}
	defer srv.stop()
	l := h.newLoad(sc, bodies, srv.URL)
	if rate > 0 {
		l.Rate, l.Concurrency = rate, h.o.InFlight
	}
	warm := l
	warm.Duration = h.o.Warmup
	w := warm.run(ctx)
	cpu0, err := processCPU(srv.pid())
	if err != nil {
		return sample{}, err
	}
	o := l.run(ctx)
	cpu1, err := processCPU(srv.pid())
	if err != nil {
		return sample{}, err
	}
	rss, err := processPeakRSS(srv.pid())
	if err != nil {
		return sample{}, err
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	s := sample{
		Rate: o.rate(), P50: percentile(o.Latencies, 50), P99: percentile(o.Latencies, 99),
		ServerCPU: cpu1 - cpu0, Window: o.Elapsed, ClientCPU: o.ClientCPU, Requests: o.Requests, Notified: o.Notifications, PeakRSS: rss,
		Errors: o.errors(), Late: o.Late, Statuses: o.Statuses,
	}
	if o.Notifications == 0 {
		s.Check = "no request was answered 2xx: " + o.FirstError
	}
	if !t.Bare && sc.Kind != "handshake" {
		answered := w.Notifications + o.Notifications
		sent := (w.Requests + o.Requests) * sc.Batch
		s.Check = joinCheck(s.Check, checkStream(ctx, srv, answered, sent))
	}
	return s, nil
}

// checkStream checks that the daemon stored every answered item (at least
// answered, at most sent) and quarantined none; it returns "" when so.
func checkStream(ctx context.Context, srv *server, answered, sent int) string {
	stored, quarantined, err := srv.streamCounts(ctx)
	if err != nil {
		return "cannot read the stream: " + err.Error()
	}
	return judgeStream(stored, quarantined, answered, sent)
}

// judgeStream compares the stream's message counts with what the client
// saw: every item answered 2xx must be stored (items of a batch answered
// 503 may be stored too, so up to sent), and none quarantined (a rejected
// clientState, token or decryption would still be answered 202).
func judgeStream(stored, quarantined uint64, answered, sent int) string {
	switch {
	case quarantined > 0:
		return fmt.Sprintf("%d items quarantined (clientState, token or decryption rejected)", quarantined)
	case stored < uint64(answered):
		return fmt.Sprintf("stream holds %d items, %d were answered 2xx", stored, answered)
	case stored > uint64(sent):
		return fmt.Sprintf("stream holds %d items, only %d were sent", stored, sent)
	}
	return ""
}

func joinCheck(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// burstSize and burstBatch make Graph's 1,000-change burst of issue 14:
// 10 concurrent batches of 100 rich RSA-2048 changes.
const (
	burstSize  = 10
	burstBatch = 100
)

func (h *harness) runBurst(ctx context.Context, rep *report) error {
	pool, err := h.pool(ctx, 2048)
	if err != nil {
		return err
	}
	bodies, err := richBodies(h.sim, h.p, pool, burstBatch)
	if err != nil {
		return err
	}
	for i := range h.o.Runs {
		for _, t := range h.daemons {
			h.stepf("burst run %d/%d: %s, %d concurrent batches of %d rich RSA-2048 changes to an idle daemon", i+1, h.o.Runs, t.Name, burstSize, burstBatch)
			b, err := h.burst(ctx, t, bodies)
			if err != nil {
				return err
			}
			rep.Burst[t.Name] = append(rep.Burst[t.Name], b)
			h.logf("  statuses %v, transport failures %d, slowest answer %.0f ms %s", b.Statuses, b.Failures, ms(b.Max), b.Check)
		}
	}
	return nil
}

func (h *harness) burst(ctx context.Context, t target, bodies *bodySet) (burstRun, error) {
	srv, err := h.startTarget(ctx, t)
	if err != nil {
		return burstRun{}, err
	}
	defer srv.stop()
	// Connect and take the bodies first, so that all requests leave at once.
	conns := make([]*conn, burstSize)
	for i := range conns {
		if conns[i], err = newConn(srv.URL, ""); err != nil {
			return burstRun{}, err
		}
		if err := conns[i].dial(); err != nil {
			return burstRun{}, err
		}
	}
	var (
		mu    sync.Mutex
		out   = burstRun{Statuses: map[int]int{}}
		wg    sync.WaitGroup
		ready sync.WaitGroup
		gate  = make(chan struct{})
	)
	for _, c := range conns {
		ready.Add(1)
		wg.Go(func() {
			defer c.close()
			one := &bodySet{batch: bodies.batch, bodies: [][]byte{bodies.take()}, slots: [][]int{nil}}
			ready.Done()
			<-gate
			t0 := time.Now()
			status, err := c.post(one, "")
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			out.Max = max(out.Max, d)
			if err != nil {
				out.Failures++
				return
			}
			out.Statuses[status]++
		})
	}
	ready.Wait()
	close(gate)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return burstRun{}, err
	}
	ok := 0
	for code, n := range out.Statuses {
		if code >= 200 && code <= 299 {
			ok += n
		}
	}
	out.Check = checkStream(ctx, srv, ok*burstBatch, burstSize*burstBatch)
	return out, nil
}
