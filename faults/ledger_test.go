package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
)

// Delivery schedule of the simulator in every scenario. timeScale shrinks
// Graph's retry schedule (backoff 10 s doubling to 10 min, for 4 h) to
// 20 ms doubling to 1.2 s, for 28.8 s: every outage of the suite fits in
// the retry window, as a real one of minutes fits in Graph's. Request
// budgets (3 s, 10 s on retries) are Graph's, unscaled.
const (
	timeScale = 0.002
	maxBatch  = 4 // notifications per POST: many POSTs, so retries are fine-grained
)

// Resources of the genuine and the forged subscriptions.
const (
	genuineResource = "me/messages"
	forgedResource  = "users/mallory/messages"
)

// newSim returns a started simulator with the suite's schedule. Throttling
// (slow/drop endpoints) is off: a fault makes many answers slow, and a
// dropped notification would be Graph's loss, not the receiver's.
func newSim(t *testing.T, batch int) *graphsim.Sim {
	t.Helper()
	sim, err := graphsim.New(simConfig(batch))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return sim
}

// simConfig is the simulator's configuration in every scenario: the
// suite's delivery schedule, batch notifications per POST, throttling off,
// every delivery kept for the ledger.
func simConfig(batch int) graphsim.Config {
	return graphsim.Config{
		TimeScale:          timeScale,
		MaxBatch:           batch,
		ThrottleMinSamples: 1 << 30,
		MaxDeliveries:      1 << 22,
		SweepInterval:      -1,
	}
}

// subscribe creates a subscription for url (the simulator runs the
// validation handshake against it). key makes it a rich subscription.
func subscribe(t *testing.T, sim *graphsim.Sim, url, resource, clientState string, key *decrypt.Key) *graphsim.Subscription {
	t.Helper()
	req := graphsim.SubscriptionRequest{
		ChangeType:         "created",
		NotificationURL:    url,
		Resource:           resource,
		ExpirationDateTime: time.Now().Add(12 * time.Hour),
		ClientState:        clientState,
	}
	if key != nil {
		req.IncludeResourceData = true
		req.EncryptionCertificate = key.EncryptionCertificate()
		req.EncryptionCertificateID = key.ID
	}
	sub, err := sim.CreateSubscription(t.Context(), req)
	if err != nil {
		t.Fatalf("subscribe %s to %s: %v", resource, url, err)
	}
	return sub
}

// load drives continuous delivery: every tick it asks the simulator for
// perTick changes of the genuine subscription, and every forgedEvery-th
// tick for one change of the forged one. It records which delivery
// carries each generated notification (by resourceData.id), so that the
// ledger can tell what graphsim saw answered 2xx.
type load struct {
	sim             *graphsim.Sim
	batch           int
	genuine, forged string // subscription ids
	perTick         int
	tick            time.Duration

	mu          sync.Mutex
	genuineIDs  map[string]int64 // resourceData.id -> delivery id
	forgedIDs   map[string]int64
	err         error
	started     time.Time
	stopped     time.Time
	stop        context.CancelFunc
	wg          sync.WaitGroup
	forgedEvery int
}

// startLoad starts the load; stopLoad ends it.
func startLoad(t *testing.T, sim *graphsim.Sim, batch int, genuine, forged *graphsim.Subscription, perTick int, tick time.Duration) *load {
	t.Helper()
	l := &load{sim: sim, batch: batch, genuine: genuine.ID, forged: forged.ID, perTick: perTick, tick: tick, forgedEvery: 10,
		genuineIDs: map[string]int64{}, forgedIDs: map[string]int64{}, started: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	l.wg.Go(func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for i := 0; ; i++ {
			if err := l.change(ctx, l.genuine, perTick, l.genuineIDs); err != nil {
				l.fail(err)
				return
			}
			if i%l.forgedEvery == 0 {
				if err := l.change(ctx, l.forged, 1, l.forgedIDs); err != nil {
					l.fail(err)
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	})
	t.Cleanup(l.stopLoad)
	return l
}

// change queues count changes of subscription sub and records their
// deliveries in into.
func (l *load) change(ctx context.Context, sub string, count int, into map[string]int64) error {
	rep, err := l.sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: sub, Count: count})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("graphsim change: %w", err)
	}
	if want := (len(rep.Items) + l.batch - 1) / l.batch; len(rep.Deliveries) != want || len(rep.Items) != count {
		return fmt.Errorf("graphsim queued %d items in %d deliveries, want %d in %d", len(rep.Items), len(rep.Deliveries), count, want)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, it := range rep.Items {
		into[it.ID] = rep.Deliveries[i/l.batch]
	}
	return nil
}

func (l *load) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

// burst queues n POSTs of genuine notifications to url at once and
// returns when the first tenth of them have been answered: graphsim then
// has as many in flight as its concurrency allows, so a fault that
// strikes right after cuts batches mid-way.
func (l *load) burst(t *testing.T, url string, n int) {
	t.Helper()
	a0, _ := endpointCounts(l.sim, url)
	if err := l.change(t.Context(), l.genuine, n*l.batch, l.genuineIDs); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 30*time.Second, func() error {
		if a, _ := endpointCounts(l.sim, url); a-a0 < n/10 {
			return fmt.Errorf("%d of the burst's %d POSTs answered", a-a0, n)
		}
		return nil
	})
}

// stopLoad stops generating changes (queued deliveries go on).
func (l *load) stopLoad() {
	l.stop()
	l.wg.Wait()
	l.mu.Lock()
	if l.stopped.IsZero() {
		l.stopped = time.Now()
	}
	l.mu.Unlock()
}

// endpointCounts returns the attempts and successful deliveries the
// simulator made to url so far; attempts-delivered is the number of
// failed attempts (each delivered delivery has one successful attempt).
func endpointCounts(sim *graphsim.Sim, url string) (attempts, delivered int) {
	for _, e := range sim.Endpoints() {
		if e.URL == url {
			return e.Attempts, e.Delivered
		}
	}
	return 0, 0
}

// waitDelivered waits until at least n more deliveries to url succeeded
// than when it was called.
func waitDelivered(t *testing.T, sim *graphsim.Sim, url string, n int, timeout time.Duration) {
	t.Helper()
	_, base := endpointCounts(sim, url)
	testkit.CheckFor(t, timeout, func() error {
		if _, d := endpointCounts(sim, url); d-base < n {
			return fmt.Errorf("%d of %d deliveries answered 2xx", d-base, n)
		}
		return nil
	})
}

// waitFailures waits until at least n more attempts to url failed than
// when it was called: the fault is visible to Graph.
func waitFailures(t *testing.T, sim *graphsim.Sim, url string, n int, timeout time.Duration) {
	t.Helper()
	a0, d0 := endpointCounts(sim, url)
	testkit.CheckFor(t, timeout, func() error {
		a, d := endpointCounts(sim, url)
		if f := (a - d) - (a0 - d0); f < n {
			return fmt.Errorf("%d of %d attempts failed so far", f, n)
		}
		return nil
	})
}

// fault is one fault of a scenario, from its start to its end (the end
// is when the faulty part was brought back: a process restarted, a limit
// raised, an endpoint served again).
type fault struct {
	label      string
	start, end time.Time
	// fromStart measures recovery from the start: faults that are
	// supposed to heal by themselves (a cluster electing a new leader).
	fromStart bool
	// mayNotBite: Graph need not see a failure (slow clients).
	mayNotBite bool
}

// result is one row of RELIABILITY.md.
type result struct {
	Name, Load, Done string

	Sent, Answered, Landed, Duplicates, Lost int
	Retried, RetriedLanded                   int // items whose delivery needed retries
	ForgedSent, ForgedLanded                 int
	ForgedAnswered, ForgedQuarantined        int // answered 2xx; of those, found in the quarantine stream
	Unknown                                  int // messages in the stream nobody sent
	Undelivered                              int // deliveries graphsim gave up on
	FailedAttempts                           int
	FailedBy                                 map[string]int // failed attempts by status ("error" = no answer)

	Recovery []recovery
}

type recovery struct {
	label string
	d     time.Duration // -1: no 2xx after the fault
}

// ledger waits for graphsim's deliveries to finish and compares what it
// saw answered 2xx with what the stream holds. natsURLs are servers to
// read the stream from.
func ledger(t *testing.T, l *load, natsURLs []string, stream string, faults []fault) result {
	t.Helper()
	l.stopLoad()
	l.mu.Lock()
	loadErr := l.err
	genuine, forged := maps.Clone(l.genuineIDs), maps.Clone(l.forgedIDs)
	l.mu.Unlock()
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	t.Logf("ledger: waiting for graphsim to finish %d genuine and %d forged notifications ...", len(genuine), len(forged))
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := l.sim.Wait(ctx); err != nil {
		t.Fatalf("graphsim deliveries still pending after 90 s: %v", err)
	}

	deliveries := map[int64]graphsim.Delivery{}
	var all, genuineDeliveries []graphsim.Delivery
	for _, d := range l.sim.Deliveries() {
		deliveries[d.ID] = d
		all = append(all, d)
		if slices.Contains(d.SubscriptionIDs, l.genuine) {
			genuineDeliveries = append(genuineDeliveries, d)
		}
	}

	msgs := readEvents(t, natsURLs, stream)
	counts := map[string]int{} // genuine resourceData.id -> messages
	ceIDs := map[string]int{}
	var res result
	for _, m := range msgs {
		ceIDs[m.ceID]++
		switch m.subscriptionID {
		case l.genuine:
			if _, ok := genuine[m.resourceID]; ok {
				counts[m.resourceID]++
				continue
			}
		case l.forged:
			res.ForgedLanded++
			continue
		}
		res.Unknown++
	}
	for _, n := range ceIDs {
		if n > 1 {
			res.Duplicates += n - 1
		}
	}
	dupItems := 0
	for id, did := range genuine {
		d, ok := deliveries[did]
		if !ok {
			t.Fatalf("graphsim has no record of delivery %d (MaxDeliveries too small?)", did)
		}
		res.Sent++
		n := counts[id]
		if n > 0 {
			res.Landed++
		}
		if n > 1 {
			dupItems += n - 1
		}
		retried := len(d.Attempts) > 1
		if retried {
			res.Retried++
		}
		if d.State != graphsim.StateDelivered {
			res.Undelivered++
			continue
		}
		res.Answered++
		if n == 0 {
			res.Lost++
			if res.Lost <= 5 {
				t.Errorf("LOST: notification %s (delivery %d, %d attempts, answered 2xx) is not in %s", id, did, len(d.Attempts), stream)
			}
			continue
		}
		if retried {
			res.RetriedLanded++
		}
	}
	res.Duplicates = max(res.Duplicates, dupItems)

	// Forged notifications answered 202 must be in the quarantine stream
	// that stores clientState rejections.
	qstream := streamFor(t, natsURLs, natspub.DefaultSubjectPrefix+".rejected.client_state."+graphsim.DefaultTenantID)
	quarantined := readQuarantined(t, natsURLs, qstream)
	for id, did := range forged {
		res.ForgedSent++
		if d := deliveries[did]; d.State == graphsim.StateDelivered {
			res.ForgedAnswered++
			if quarantined[id] {
				res.ForgedQuarantined++
			}
		}
	}
	if res.ForgedQuarantined != res.ForgedAnswered {
		t.Errorf("%d forged notifications were answered 2xx but only %d are in %s", res.ForgedAnswered, res.ForgedQuarantined, qstream)
	}

	// Failed attempts and recovery, per fault. Recovery and whether the
	// fault bit look at the genuine deliveries only: forged ones go to the
	// quarantine stream, which may be fine while GRAPH is not.
	res.FailedBy = map[string]int{}
	for _, d := range all {
		for _, a := range d.Attempts {
			if a.Status >= 200 && a.Status < 300 {
				continue
			}
			res.FailedAttempts++
			k := strconv.Itoa(a.Status)
			if a.Status == 0 {
				k = "error"
			}
			res.FailedBy[k]++
		}
	}
	for _, f := range faults {
		from := f.end
		if f.fromStart {
			from = f.start
		}
		first := time.Duration(-1)
		for _, d := range genuineDeliveries {
			for _, a := range d.Attempts {
				if a.Status < 200 || a.Status >= 300 || a.Start.Before(from) {
					continue
				}
				if got := a.Start.Add(a.Latency).Sub(from); first < 0 || got < first {
					first = got
				}
			}
		}
		res.Recovery = append(res.Recovery, recovery{label: f.label, d: first})
		if first < 0 {
			t.Errorf("%s: no delivery was answered 2xx after the fault", f.label)
		}
		if !f.mayNotBite && failedBetween(genuineDeliveries, f.start, f.end.Add(max(first, 0))) == 0 {
			t.Errorf("%s: graphsim saw no failed attempt during the fault; the fault did not bite", f.label)
		}
	}

	// The promise.
	if res.Lost > 0 {
		t.Errorf("LOST: %d notifications answered 2xx are not in %s", res.Lost, stream)
	}
	if res.Duplicates > 0 {
		t.Errorf("DUPLICATED: %d extra copies in %s", res.Duplicates, stream)
	}
	if res.ForgedLanded > 0 {
		t.Errorf("FORGED: %d notifications with a wrong clientState are in %s", res.ForgedLanded, stream)
	}
	if res.Unknown > 0 {
		t.Errorf("%d messages in %s that no subscription sent", res.Unknown, stream)
	}
	if res.Undelivered > 0 {
		t.Errorf("graphsim gave up on %d notifications: the receiver never answered 2xx for them", res.Undelivered)
	}
	if res.Sent == 0 || res.ForgedSent == 0 {
		t.Errorf("no load: %d genuine and %d forged notifications sent", res.Sent, res.ForgedSent)
	}
	t.Logf("ledger: sent %d, answered 2xx %d, landed %d, duplicates %d, lost %d, retried %d (landed %d), forged %d (answered %d, quarantined %d, landed %d), failed attempts %v, recovery %v",
		res.Sent, res.Answered, res.Landed, res.Duplicates, res.Lost, res.Retried, res.RetriedLanded, res.ForgedSent, res.ForgedAnswered, res.ForgedQuarantined, res.ForgedLanded, res.FailedBy, res.recoveryText())
	return res
}

// inFlight describes the genuine POSTs that were in flight at instant
// at: started before it and answered (or cut) after it, by outcome.
func inFlight(t *testing.T, sim *graphsim.Sim, genuine string, at time.Time) string {
	t.Helper()
	n := 0
	by := map[string]int{}
	for _, d := range sim.Deliveries() {
		if !slices.Contains(d.SubscriptionIDs, genuine) {
			continue
		}
		for _, a := range d.Attempts {
			if a.Start.Before(at) && a.Start.Add(a.Latency).After(at) {
				n++
				switch {
				case a.Status == 0:
					by["cut"]++
				default:
					by[strconv.Itoa(a.Status)]++
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("no POST was in flight when the fault struck at %v", at)
		return "no POST was in flight at that instant"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d %s", by[k], k))
	}
	return fmt.Sprintf("%d POSTs were in flight at that instant (%s)", n, strings.Join(parts, ", "))
}

// answeredBetween counts the genuine POSTs that started in [from, to]:
// all of them, and those answered 2xx.
func answeredBetween(sim *graphsim.Sim, genuine string, from, to time.Time) (ok, total int) {
	for _, d := range sim.Deliveries() {
		if !slices.Contains(d.SubscriptionIDs, genuine) {
			continue
		}
		for _, a := range d.Attempts {
			if a.Start.Before(from) || a.Start.After(to) {
				continue
			}
			total++
			if a.Status >= 200 && a.Status < 300 {
				ok++
			}
		}
	}
	return ok, total
}

// failedBetween counts the failed attempts that started in [from, to].
func failedBetween(all []graphsim.Delivery, from, to time.Time) int {
	n := 0
	for _, d := range all {
		for _, a := range d.Attempts {
			if (a.Status < 200 || a.Status >= 300) && !a.Start.Before(from) && !a.Start.After(to) {
				n++
			}
		}
	}
	return n
}

// storedEvent is what the ledger needs of one message of the stream.
type storedEvent struct {
	ceID, subscriptionID, resourceID string
}

// graphItem is the part of a notification (an event body, or an item of
// a quarantined collection) the ledger reads.
type graphItem struct {
	SubscriptionID string `json:"subscriptionId"`
	ResourceData   struct {
		ID string `json:"id"`
	} `json:"resourceData"`
}

// readEvents reads every event of the events stream.
func readEvents(t *testing.T, natsURLs []string, stream string) []storedEvent {
	t.Helper()
	var out []storedEvent
	readStream(t, natsURLs, stream, func(m jetstream.Msg) error {
		var it graphItem
		if err := json.Unmarshal(m.Data(), &it); err != nil {
			return fmt.Errorf("message %q is not an event: %w", m.Headers().Get(natspub.HeaderID), err)
		}
		out = append(out, storedEvent{ceID: m.Headers().Get(natspub.HeaderID), subscriptionID: it.SubscriptionID, resourceID: it.ResourceData.ID})
		return nil
	})
	return out
}

// readQuarantined returns the resource ids of the items in the
// quarantine stream (each message is a changeNotificationCollection).
func readQuarantined(t *testing.T, natsURLs []string, stream string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	readStream(t, natsURLs, stream, func(m jetstream.Msg) error {
		var coll struct {
			Value []graphItem `json:"value"`
		}
		if err := json.Unmarshal(m.Data(), &coll); err != nil {
			return fmt.Errorf("quarantine message is not a collection: %w", err)
		}
		for _, it := range coll.Value {
			out[it.ResourceData.ID] = true
		}
		return nil
	})
	return out
}

// streamFor returns the name of the stream that stores subject.
func streamFor(t *testing.T, natsURLs []string, subject string) string {
	t.Helper()
	js := connectJS(t, natsURLs, nats.Timeout(5*time.Second))
	var name string
	testkit.CheckFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		var err error
		name, err = js.StreamNameBySubject(ctx, subject)
		if err != nil {
			return fmt.Errorf("the stream of %s: %w", subject, err)
		}
		return nil
	})
	return name
}

// readStream passes every message of stream, read from one of the
// servers, to each. A read that fails (a cluster still settling after a
// restart) is retried from the start.
func readStream(t *testing.T, natsURLs []string, stream string, each func(jetstream.Msg) error) {
	t.Helper()
	js := connectJS(t, natsURLs, nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	var msgs []jetstream.Msg
	testkit.CheckFor(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var err error
		msgs, err = readAll(ctx, js, stream)
		if err != nil {
			return fmt.Errorf("ledger: read %s: %w", stream, err)
		}
		return nil
	})
	for _, m := range msgs {
		if err := each(m); err != nil {
			t.Fatalf("ledger: %s: %v", stream, err)
		}
	}
}

// connectJS returns a JetStream client of the servers at urls, connected
// with opts and closed when the test ends.
func connectJS(t *testing.T, urls []string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		t.Fatalf("connect to %v: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// readAll returns every message of stream, through an ordered consumer.
func readAll(ctx context.Context, js jetstream.JetStream, stream string) ([]jetstream.Msg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	want := int(info.State.Msgs)
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	out := make([]jetstream.Msg, 0, want)
	for len(out) < want {
		batch, err := cons.Fetch(min(1000, want-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("the stream reports %d messages but only %d could be read", want, len(out))
		}
	}
	return out, nil
}

// recoveryText formats the recovery times for the table.
func (r result) recoveryText() string {
	var parts []string
	for _, rc := range r.Recovery {
		v := "none"
		switch {
		case rc.d >= time.Second:
			v = fmt.Sprintf("%.2f s", rc.d.Seconds())
		case rc.d >= 0:
			v = fmt.Sprintf("%d ms", rc.d.Milliseconds())
		}
		if len(r.Recovery) > 1 {
			v = rc.label + ": " + v
		}
		parts = append(parts, v)
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, "; ")
}

// failedText formats the failed attempts by status, most frequent first.
func (r result) failedText() string {
	if r.FailedAttempts == 0 {
		return "no failed attempts"
	}
	keys := make([]string, 0, len(r.FailedBy))
	for k := range r.FailedBy {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if r.FailedBy[a] != r.FailedBy[b] {
			return r.FailedBy[b] - r.FailedBy[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		label := k
		if k == "error" {
			label = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%d × %s", r.FailedBy[k], label))
	}
	return fmt.Sprintf("%d failed attempts (%s)", r.FailedAttempts, strings.Join(parts, ", "))
}
