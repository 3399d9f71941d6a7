package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// stack is graphsim over TLS, an in-process JetStream, the natspub
// Publisher and a receiver whose clientState lookup is the Manager's.
type stack struct {
	clk  *testkit.Clock
	g    *graph
	nc   *nats.Conn
	js   jetstream.JetStream
	url  string // receiver
	mgr  *Manager
	sink *batches
}

type stackOpts struct {
	wallClock bool
	sim       graphsim.Config
	keys      *decrypt.KeyRing
	gate      *failing
}

func newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	st := &stack{clk: newClock(), sink: &batches{}}
	now := st.clk.Now
	if o.wallClock {
		now = time.Now
	}
	o.sim.Now = now
	if !o.wallClock && o.sim.AccessTokenLifetime == 0 {
		// azidentity caches tokens by the wall clock, the simulator checks
		// them on the test clock, which jumps days ahead.
		o.sim.AccessTokenLifetime = 400 * 24 * time.Hour
	}
	if o.sim.SweepInterval == 0 {
		o.sim.SweepInterval = -1
	}
	st.g = startGraph(t, o.sim)
	_, st.nc = natstest.Start(t)
	js, err := jetstream.New(st.nc)
	if err != nil {
		t.Fatal(err)
	}
	st.js = js
	pub, err := natspub.New(t.Context(), natspub.Config{Conn: st.nc})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(ctx context.Context, id string) (string, error) {
		if st.mgr == nil {
			return "", receiver.ErrUnknownSubscription
		}
		return st.mgr.ClientStateLookup(ctx, id)
	}
	observed := sinkFunc(func(ctx context.Context, b *receiver.Batch) error {
		var next receiver.Sink = teeSink{pub, st.sink}
		if o.gate != nil {
			next = teeSink{o.gate, pub, st.sink}
		}
		if st.mgr != nil {
			next = st.mgr.Observe(next)
		}
		return next.Deliver(ctx, b)
	})
	rcfg := receiver.Config{Sink: observed, ClientStateLookup: lookup, Keys: o.keys}
	if !o.wallClock {
		rcfg.Now = st.clk.Now // lifecycle events carry receipt times on the test clock
	}
	st.url = startReceiverWith(t, rcfg)
	return st
}

type sinkFunc func(context.Context, *receiver.Batch) error

func (f sinkFunc) Deliver(ctx context.Context, b *receiver.Batch) error { return f(ctx, b) }

// teeSink stores batches in NATS and keeps them for assertions.
type teeSink []receiver.Sink

// failing is a Sink that refuses batches while down is set, as natspub does
// while NATS is unreachable.
type failing struct {
	mu   sync.Mutex
	down bool
}

func (f *failing) Deliver(ctx context.Context, b *receiver.Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("test: sink down")
	}
	return nil
}

func (f *failing) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (ts teeSink) Deliver(ctx context.Context, b *receiver.Batch) error {
	for _, s := range ts {
		if err := s.Deliver(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (st *stack) manager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	cfg.Client, cfg.JetStream = st.g.client, st.js
	if cfg.Now == nil {
		cfg.Now = st.clk.Now
	}
	if cfg.Interval == 0 {
		cfg.Interval = -1
	}
	cfg.TenantID = graphsim.DefaultTenantID
	if cfg.Policy.MinBackoff == 0 {
		cfg.Policy.MinBackoff = time.Second
	}
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if st.mgr == nil {
		st.mgr = m
	}
	return m
}

func (st *stack) spec(resource, changeType string) Spec {
	return Spec{Resource: resource, ChangeType: changeType, NotificationURL: st.url, LifecycleNotificationURL: st.url}
}

// managed returns a Manager of cfg for spec alone after its first pass,
// and spec's record.
func (st *stack) managed(t *testing.T, spec Spec, cfg Config) (*Manager, Record) {
	t.Helper()
	cfg.Subscriptions = []Spec{spec}
	m := st.manager(t, cfg)
	reconcile(t, m)
	return m, recordFor(t, m, spec)
}

func recordFor(t *testing.T, m *Manager, s Spec) Record {
	t.Helper()
	r, _, ok := m.record(s.key())
	if !ok {
		t.Fatalf("no record for %s", s.Resource)
	}
	return r
}

// subscribe collects JSON messages on subject.
func subscribe[T any](t *testing.T, nc *nats.Conn, subject string) func() []T {
	t.Helper()
	ch := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	var got []T
	return func() []T {
		for {
			select {
			case m := <-ch:
				var v T
				if err := json.Unmarshal(m.Data, &v); err != nil {
					t.Fatalf("decode %s: %v", m.Subject, err)
				}
				got = append(got, v)
			default:
				return got
			}
		}
	}
}

func TestCreateOnStartAndClientStateLookup(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/42/messages", "created")
	ctx := t.Context()
	m, rec := st.managed(t, spec, Config{})
	sub, err := st.g.sim.Subscription(rec.ID)
	if err != nil {
		t.Fatalf("subscription %s not in Graph: %v", rec.ID, err)
	}
	if n := len(rec.ClientState); n == 0 || n > MaxClientStateLen || sub.ClientState != rec.ClientState {
		t.Fatalf("clientState: record %d chars, Graph has the same: %v", n, sub.ClientState == rec.ClientState)
	}
	if rec.Owner != DefaultOwner || !rec.Expiration.Equal(sub.ExpirationDateTime) {
		t.Fatalf("record owner %q expiry %v; Graph expiry %v", rec.Owner, rec.Expiration, sub.ExpirationDateTime)
	}
	if v := testutil.ToFloat64(m.met.expiry.WithLabelValues(rec.ID, spec.Resource)); v != rec.Expiration.Sub(st.clk.Now()).Seconds() {
		t.Fatalf("expiry gauge %v, want %v", v, rec.Expiration.Sub(st.clk.Now()).Seconds())
	}
	if v := testutil.ToFloat64(m.met.leaseHeld); v != 1 {
		t.Fatalf("lease gauge %v", v)
	}
	cap := MaxLifetime(spec.Resource, false)
	if life := rec.Expiration.Sub(st.clk.Now()); life >= cap || life < cap-cap/10 {
		t.Fatalf("lifetime %v, want just under the cap %v", life, cap)
	}
	// A real notification passes the receiver's check against the bucket.
	if _, err := st.g.sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: rec.ID}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		st.sink.mu.Lock()
		defer st.sink.mu.Unlock()
		if len(st.sink.items) != 1 || st.sink.items[0].SubscriptionID != rec.ID {
			return fmt.Errorf("accepted %d notifications", len(st.sink.items))
		}
		return nil
	})
	// An unknown subscription is rejected by the lookup.
	if _, err := m.ClientStateLookup(ctx, "11111111-2222-3333-4444-555555555555"); !errors.Is(err, receiver.ErrUnknownSubscription) {
		t.Fatalf("lookup of an unknown id = %v, want ErrUnknownSubscription", err)
	}
	// A second pass changes nothing in Graph.
	reconcile(t, m)
	if n := len(st.g.sim.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions after a second pass, want 1", n)
	}
}

func TestAdoptOn409(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/42/events", "created,updated")
	existing, err := st.g.sim.CreateSubscription(t.Context(), graphsim.SubscriptionRequest{
		Resource: spec.Resource, ChangeType: "updated,created", NotificationURL: spec.NotificationURL,
		ClientState: "theirs", ExpirationDateTime: st.clk.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := st.manager(t, Config{Subscriptions: []Spec{spec}})
	m.listed = true // as if the list at start had failed: the create meets a 409
	reconcile(t, m)
	rec := recordFor(t, m, spec)
	if rec.ID != existing.ID || rec.Owner != "" || rec.ClientState != "theirs" {
		t.Fatalf("record id %s owner %q; want the existing %s adopted without owner, with its clientState", rec.ID, rec.Owner, existing.ID)
	}
	if n := len(st.g.sim.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	if !rec.Expiration.After(st.clk.Now().Add(24 * time.Hour)) {
		t.Fatalf("adopted subscription not renewed under our policy: expires %v", rec.Expiration)
	}
	// Leaving the configuration forgets it but does not delete it.
	if err := m.SetSubscriptions(nil); err != nil {
		t.Fatal(err)
	}
	reconcile(t, m)
	if _, err := st.g.sim.Subscription(existing.ID); err != nil {
		t.Fatalf("adopted subscription deleted: %v", err)
	}
	if _, _, ok := m.record(spec.key()); ok {
		t.Fatal("record of a removed spec kept")
	}
}

func TestAdoptFromListAtStartAndDeleteOwnedOnly(t *testing.T) {
	st := newStack(t, stackOpts{})
	mine := st.spec("users/1/messages", "created")
	m := st.manager(t, Config{Subscriptions: []Spec{mine}})
	reconcile(t, m)
	id := recordFor(t, m, mine).ID
	if err := m.SetSubscriptions(nil); err != nil {
		t.Fatal(err)
	}
	reconcile(t, m)
	if _, err := st.g.sim.Subscription(id); !errors.Is(err, graphsim.ErrNotFound) {
		t.Fatalf("owned subscription left the configuration but still exists: %v", err)
	}
}

func TestRecreateOn404WithGap(t *testing.T) {
	st := newStack(t, stackOpts{})
	gaps := subscribe[Gap](t, st.nc, "graph.gaps.>")
	spec := st.spec("users/42/messages", "created")
	ctx := t.Context()
	m, before := st.managed(t, spec, Config{})
	if err := st.g.sim.DeleteSubscription(ctx, before.ID); err != nil {
		t.Fatal(err)
	}
	st.clk.Advance(before.RenewAt.Sub(st.clk.Now()) + time.Second)
	reconcile(t, m)
	after := recordFor(t, m, spec)
	if after.ID == "" || after.ID == before.ID {
		t.Fatalf("not recreated: id %q (was %s), outcome %s %s", after.ID, before.ID, after.LastOutcome, after.LastError)
	}
	if _, err := st.g.sim.Subscription(after.ID); err != nil {
		t.Fatal(err)
	}
	var got []Gap
	testkit.CheckFor(t, 5*time.Second, func() error {
		if got = gaps(); len(got) != 1 {
			return fmt.Errorf("%d gap events", len(got))
		}
		return nil
	})
	g := got[0]
	if g.Reason != GapRemoved || g.SubscriptionID != after.ID || g.PreviousSubscriptionID != before.ID ||
		!g.Start.Equal(before.LastRenewal) || !g.End.Equal(after.LastRenewal) {
		t.Fatalf("gap %+v; want removed from %v to %v", g, before.LastRenewal, after.LastRenewal)
	}
}

func TestPermanent403StopsAfterOneTry(t *testing.T) {
	st := newStack(t, stackOpts{})
	events := subscribe[Event](t, st.nc, "graph.subscriptions.>")
	// Graph supports no application permission for todoTask: 403.
	spec := st.spec("users/1/todo/lists/1/tasks", "created")
	m := st.manager(t, Config{Subscriptions: []Spec{spec}})
	for range 5 {
		reconcile(t, m)
		st.clk.Advance(time.Hour)
	}
	rec := recordFor(t, m, spec)
	if !rec.Permanent || rec.ID != "" || rec.LastOutcome != OutcomePermanent {
		t.Fatalf("record %+v (%s), want a permanent failure", rec, rec.LastError)
	}
	if n := st.g.calls.count("POST /v1.0/subscriptions"); n != 1 {
		t.Fatalf("%v create calls, want 1", n)
	}
	if n := testutil.ToFloat64(m.met.actions.WithLabelValues(ActionCreate, OutcomePermanent)); n != 1 {
		t.Fatalf("%v create attempts counted, want 1", n)
	}
	if g := testutil.ToFloat64(m.met.permanent.WithLabelValues(spec.Resource)); g != 1 {
		t.Fatalf("permanent_failures gauge = %v, want 1", g)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		for _, e := range events() {
			if e.Action == ActionPermanent && e.Resource == spec.Resource && strings.Contains(e.Error, "403") {
				return nil
			}
		}
		return errors.New("no permanent_failure event")
	})
}

func TestLifetimeLimitLearned(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("print/printers/1/jobs", "created")
	spec.MaxLifetime = 10 * 24 * time.Hour // more than Graph allows (4,230 min)
	m, rec := st.managed(t, spec, Config{})
	if rec.ID == "" || rec.MaxLifetime != 4230*time.Minute {
		t.Fatalf("record id %q, learned cap %v (outcome %s: %s); want created under 4230m", rec.ID, rec.MaxLifetime, rec.LastOutcome, rec.LastError)
	}
	if life := rec.Expiration.Sub(st.clk.Now()); life >= 4230*time.Minute {
		t.Fatalf("lifetime %v not under the learned cap", life)
	}
	if v := testutil.ToFloat64(m.met.actions.WithLabelValues(ActionCreate, OutcomeLearned)); v != 1 {
		t.Fatalf("learned counter = %v, want 1", v)
	}
}

// TestThirtyDays runs 30 simulated days for a mix of resources: no
// subscription lapses, and each is renewed within the policy's bounds.
func TestThirtyDays(t *testing.T) {
	if testing.Short() {
		t.Skip("30 simulated days")
	}
	st := newStack(t, stackOpts{})
	specs := []Spec{
		st.spec("teams/1/schedule/shifts", "created,updated"),
		st.spec("users/1/messages", "created"),
		st.spec("drives/1/root", "updated"),
		st.spec("users", "updated,deleted"),
		st.spec("teams/1/channels/2/messages", "created"),
	}
	// Lifecycle reactions are TestLifecycleReactions' business: here only
	// the renewal schedule runs.
	// The Manager runs on graphsim's simulated clock, which Advance moves
	// through expirations and the reauthorization schedule in order.
	now := st.g.sim.Now
	m := st.manager(t, Config{Subscriptions: specs, GraphStream: "-", Now: now})
	ctx := t.Context()
	const step = 10 * time.Minute
	const days = 30 * 24 * time.Hour
	renewals := map[string]int{}
	last := map[string]time.Time{}
	start := now()
	for now().Sub(start) < days {
		reconcile(t, m)
		for _, s := range specs {
			r := recordFor(t, m, s)
			if r.ID == "" || !r.Expiration.After(now().Add(step)) {
				t.Fatalf("%s at %v: id %q expires %v (%s %s)", s.Resource, now().Sub(start), r.ID, r.Expiration, r.LastOutcome, r.LastError)
			}
			if !r.LastRenewal.Equal(last[s.Resource]) {
				renewals[s.Resource]++
				last[s.Resource] = r.LastRenewal
			}
		}
		if err := st.g.sim.Advance(ctx, step); err != nil {
			t.Fatal(err)
		}
		if n := len(st.g.sim.Subscriptions()); n != len(specs) {
			t.Fatalf("at %v Graph holds %d subscriptions, want %d", now().Sub(start), n, len(specs))
		}
	}
	if n := st.g.calls.count("GET /v1.0/subscriptions"); n != 1 || st.g.sim.APICalls()[graphsim.OpList] != 1 {
		t.Errorf("listed %d times in 30 days (graphsim counted %d), want once at start", n, st.g.sim.APICalls()[graphsim.OpList])
	}
	for _, s := range specs {
		l := m.cfg.Policy.Lifetime(MaxLifetime(s.Resource, false))
		// Renewals land between 0.567 L and 0.667 L apart (plus one step).
		lo := int(float64(days)/(float64(l)*2/3+float64(step))) - 1
		hi := int(float64(days)/(float64(l)*0.56)) + 2
		n := renewals[s.Resource] - 1 // the first is the create
		if n < max(lo, 0) || n > hi {
			t.Errorf("%s: %d renewals in 30 days with lifetime %v, want %d..%d", s.Resource, n, l, lo, hi)
		}
		t.Logf("%s: lifetime %v, %d renewals (bounds %d..%d)", s.Resource, l, n, lo, hi)
	}
}

func TestLifecycleReactions(t *testing.T) {
	st := newStack(t, stackOpts{wallClock: true})
	gaps := subscribe[Gap](t, st.nc, "graph.gaps.>")
	events := subscribe[Event](t, st.nc, "graph.subscriptions.>")
	spec := st.spec("users/42/messages", "created")
	ctx := t.Context()
	m, first := st.managed(t, spec, Config{Now: time.Now})

	// reauthorizationRequired ten minutes after the last PATCH: one PATCH.
	m.mu.Lock()
	rec, rev, _ := m.record(spec.key())
	rec.LastAuth = rec.LastAuth.Add(-ReauthorizeQuiet)
	m.put(ctx, spec.key(), rec, rev)
	m.mu.Unlock()
	if err := st.g.sim.Lifecycle(ctx, first.ID, graphsim.EventReauthorizationRequired); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if v := testutil.ToFloat64(m.met.lifecycle.WithLabelValues(EventReauthorizationRequired, OutcomeOK)); v != 1 {
			return fmt.Errorf("reauthorizations = %v", v)
		}
		return nil
	})
	if r := recordFor(t, m, spec); !r.LastAuth.After(first.LastAuth) {
		t.Fatalf("no PATCH recorded: last auth %v, was %v", r.LastAuth, first.LastAuth)
	}
	// A second challenge right after that PATCH sends nothing (never a
	// reauthorize and a PATCH within 10 minutes).
	if err := st.g.sim.Lifecycle(ctx, first.ID, graphsim.EventReauthorizationRequired); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if v := testutil.ToFloat64(m.met.lifecycle.WithLabelValues(EventReauthorizationRequired, OutcomeSkipped)); v != 1 {
			return fmt.Errorf("skipped reauthorizations = %v", v)
		}
		return nil
	})

	// subscriptionRemoved: recreated within 5 s, with a gap.
	if err := st.g.sim.Lifecycle(ctx, first.ID, graphsim.EventSubscriptionRemoved); err != nil {
		t.Fatal(err)
	}
	removedAt := time.Now()
	var again Record
	testkit.CheckFor(t, 5*time.Second, func() error {
		again = recordFor(t, m, spec)
		if again.ID == "" || again.ID == first.ID {
			return fmt.Errorf("not recreated yet: %q", again.ID)
		}
		if _, err := st.g.sim.Subscription(again.ID); err != nil {
			return err
		}
		return nil
	})
	// missed: a resync event and a gap.
	if err := st.g.sim.Lifecycle(ctx, again.ID, graphsim.EventMissed); err != nil {
		t.Fatal(err)
	}
	var got []Gap
	testkit.CheckFor(t, 5*time.Second, func() error {
		if got = gaps(); len(got) != 2 {
			return fmt.Errorf("%d gap events", len(got))
		}
		return nil
	})
	rm, ms := got[0], got[1]
	if rm.Reason != GapRemoved || rm.PreviousSubscriptionID != first.ID || rm.SubscriptionID != again.ID ||
		rm.Start.After(removedAt) || rm.End.Before(rm.Start) || !rm.End.Equal(again.LastRenewal) {
		t.Fatalf("removed gap %+v; want from before %v to the recreate at %v", rm, removedAt, again.LastRenewal)
	}
	if ms.TenantID != graphsim.DefaultTenantID || rm.TenantID != graphsim.DefaultTenantID {
		t.Fatalf("gap tenants %q, %q; want %s (from the lifecycle item)", rm.TenantID, ms.TenantID, graphsim.DefaultTenantID)
	}
	if ms.Reason != GapMissed || ms.SubscriptionID != again.ID || ms.End.Sub(ms.Start) > MissedLookback || ms.Start.Before(again.Created) {
		t.Fatalf("missed gap %+v; want at most %v back, not before creation %v", ms, MissedLookback, again.Created)
	}
	resync := 0
	for _, e := range events() {
		if e.Action == ActionResync && e.SubscriptionID == again.ID {
			resync++
		}
	}
	if resync != 1 {
		t.Fatalf("%d resync events, want 1", resync)
	}
}

func TestTwoManagersOneLease(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/7/messages", "created")
	cfg := Config{Subscriptions: []Spec{spec}, LeaseTTL: time.Minute}
	a := st.manager(t, Config{Subscriptions: cfg.Subscriptions, LeaseTTL: cfg.LeaseTTL, Instance: "a"})
	b := st.manager(t, Config{Subscriptions: cfg.Subscriptions, LeaseTTL: cfg.LeaseTTL, Instance: "b"})
	ctx := t.Context()
	renewals := func(m *Manager) float64 {
		return testutil.ToFloat64(m.met.actions.WithLabelValues(ActionRenew, OutcomeOK)) + testutil.ToFloat64(m.met.actions.WithLabelValues(ActionCreate, OutcomeOK))
	}
	// Both run passes over three simulated days.
	for range 3 * 24 * 12 {
		reconcile(t, a)
		if err := b.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if a.Holder() == b.Holder() {
			t.Fatalf("holders a=%v b=%v", a.Holder(), b.Holder())
		}
		st.clk.Advance(5 * time.Minute)
	}
	if renewals(b) != 0 || renewals(a) == 0 {
		t.Fatalf("calls a=%v b=%v; want only the holder a", renewals(a), renewals(b))
	}
	if n := len(st.g.sim.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	// a stops without releasing (a crash): b takes over within the TTL.
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	st.clk.Advance(cfg.LeaseTTL)
	reconcile(t, b)
	if !b.Holder() {
		t.Fatal("b did not take over after the TTL")
	}
	if got := testutil.ToFloat64(b.met.leaseHeld); got != 1 {
		t.Fatalf("lease_held gauge of b = %v", got)
	}
	rec := recordFor(t, b, spec)
	st.clk.Advance(rec.RenewAt.Sub(st.clk.Now()) + time.Second)
	reconcile(t, b)
	if renewals(b) != 1 {
		t.Fatalf("b renewed %v times after taking over, want 1", renewals(b))
	}
}

func TestCloseReleasesLease(t *testing.T) {
	st := newStack(t, stackOpts{})
	a := st.manager(t, Config{Instance: "a"})
	b := st.manager(t, Config{Instance: "b"})
	ctx := t.Context()
	if err := a.Reconcile(ctx); err != nil || !a.Holder() {
		t.Fatalf("a holder %v, %v", a.Holder(), err)
	}
	if err := b.Reconcile(ctx); err != nil || b.Holder() {
		t.Fatalf("b holder %v, %v", b.Holder(), err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if err := b.Reconcile(ctx); err != nil || !b.Holder() {
		t.Fatalf("b did not take over at once after a's Close: %v, %v", b.Holder(), err)
	}
}

func TestConfigErrors(t *testing.T) {
	st := newStack(t, stackOpts{})
	ok := st.spec("users/1/messages", "created")
	tests := []struct {
		name      string
		cfg       Config
		wantField string
		wantErr   error
	}{
		{name: "no client", cfg: Config{JetStream: st.js}, wantField: "Client", wantErr: ErrRequired},
		{name: "bad change type", cfg: Config{Client: st.g.client, JetStream: st.js, Subscriptions: []Spec{{Resource: "r", ChangeType: "moved", NotificationURL: st.url}}}, wantField: "Subscriptions[0].ChangeType", wantErr: ErrBadValue},
		{name: "long clientState", cfg: Config{Client: st.g.client, JetStream: st.js, Subscriptions: []Spec{{Resource: "r", ChangeType: "created", NotificationURL: st.url, ClientState: strings.Repeat("x", 129)}}}, wantField: "Subscriptions[0].ClientState", wantErr: ErrOutOfRange},
		{name: "rich without key", cfg: Config{Client: st.g.client, JetStream: st.js, Subscriptions: []Spec{{Resource: "r", ChangeType: "created", NotificationURL: st.url, IncludeResourceData: true}}}, wantField: "Key", wantErr: ErrRequired},
		{name: "duplicate", cfg: Config{Client: st.g.client, JetStream: st.js, Subscriptions: []Spec{ok, ok}}, wantField: "Subscriptions[1].Resource", wantErr: ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), tt.cfg)
			ce, isCE := errors.AsType[*ConfigError](err)
			if !isCE || ce.Field != tt.wantField || !errors.Is(err, tt.wantErr) {
				t.Fatalf("New = %v; want field %s, %v", err, tt.wantField, tt.wantErr)
			}
		})
	}
}

func TestUnknownSubscriptionIsQuarantined(t *testing.T) {
	st := newStack(t, stackOpts{})
	m := st.manager(t, Config{LookupWait: 50 * time.Millisecond})
	reconcile(t, m)
	// A subscription the bucket does not know (made behind the Manager's back).
	sub, err := st.g.sim.CreateSubscription(t.Context(), graphsim.SubscriptionRequest{Resource: "users/9/messages", ChangeType: "created",
		NotificationURL: st.url, ClientState: "not-in-the-bucket", ExpirationDateTime: st.clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.g.sim.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: sub.ID}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		st.sink.mu.Lock()
		defer st.sink.mu.Unlock()
		if len(st.sink.items) != 0 {
			return fmt.Errorf("accepted %d items", len(st.sink.items))
		}
		if len(st.sink.rejected) != 1 || st.sink.rejected[0].Reason != receiver.ReasonClientState {
			return fmt.Errorf("rejected %d items", len(st.sink.rejected))
		}
		return nil
	})
}

// TestKeyRotationUnderRichDeliveries rotates the encryption key while
// Graph delivers rich notifications: every one is decrypted, none is
// lost, and the old key becomes retirable only after the window.
func TestKeyRotationUnderRichDeliveries(t *testing.T) {
	k1, err := decrypt.GenerateKey(2048, "graphhook", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := decrypt.GenerateKey(2048, "graphhook", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k1.ID, k2.ID = "key-1", "key-2"
	ring, err := decrypt.NewKeyRing(k1)
	if err != nil {
		t.Fatal(err)
	}
	st := newStack(t, stackOpts{keys: ring})
	spec := st.spec("teams/1/channels/2/messages", "created")
	spec.IncludeResourceData = true
	m := st.manager(t, Config{Subscriptions: []Spec{spec}, Key: &k1})
	ctx := t.Context()
	reconcile(t, m)
	id := recordFor(t, m, spec).ID
	if id == "" {
		t.Fatalf("not created: %+v", recordFor(t, m, spec))
	}
	change := func(n int) int {
		sent := 0
		for range n {
			rep, err := st.g.sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: id})
			if err != nil {
				t.Fatal(err)
			}
			sent += rep.Notifications
		}
		return sent
	}
	sent := change(20)
	if err := ring.Add(k2); err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { done <- change(20) }() // deliveries continue during the PATCH
	if err := m.RotateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	sent += <-done
	sent += change(20)
	if err := st.g.sim.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := st.g.sim.Subscription(id)
	if err != nil || sub.EncryptionCertificateID != "key-2" || recordFor(t, m, spec).CertificateID != "key-2" {
		t.Fatalf("after rotation Graph has %v (%v), record %s", sub, err, recordFor(t, m, spec).CertificateID)
	}
	used := map[string]int{}
	testkit.CheckFor(t, 5*time.Second, func() error {
		st.sink.mu.Lock()
		defer st.sink.mu.Unlock()
		if len(st.sink.rejected) != 0 {
			return fmt.Errorf("%d rejected: %v", len(st.sink.rejected), st.sink.rejected[0].Err)
		}
		if len(st.sink.items) != sent {
			return fmt.Errorf("accepted %d of %d", len(st.sink.items), sent)
		}
		clear(used)
		for _, n := range st.sink.items {
			if len(n.Content) == 0 {
				return fmt.Errorf("item %s not decrypted", n.ID)
			}
			used[n.EncryptedContent.EncryptionCertificateID]++
		}
		return nil
	})
	if used["key-1"] < 20 || used["key-2"] < 20 {
		t.Fatalf("items per key %v; want both keys used", used)
	}
	if r := m.Retirable(); len(r) != 0 {
		t.Fatalf("retirable right after rotation: %v", r)
	}
	st.clk.Advance(DefaultRetireAfter)
	if r := m.Retirable(); len(r) != 1 || r[0] != "key-1" {
		t.Fatalf("retirable after the window = %v, want [key-1]", r)
	}
}

func TestSpecChangeOnlyACreateCanMakeReplaces(t *testing.T) {
	st := newStack(t, stackOpts{})
	gaps := subscribe[Gap](t, st.nc, "graph.gaps.>")
	spec := st.spec("users/3/messages", "created")
	spec.ClientState = "first-secret"
	m := st.manager(t, Config{Subscriptions: []Spec{spec}})
	reconcile(t, m)
	old := recordFor(t, m, spec).ID
	spec.ClientState = "second-secret"
	if err := m.SetSubscriptions([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, m)
	rec := recordFor(t, m, spec)
	if rec.ID == "" || rec.ID == old || rec.ClientState != "second-secret" {
		t.Fatalf("record %s (old %s), outcome %s %s", rec.ID, old, rec.LastOutcome, rec.LastError)
	}
	if _, err := st.g.sim.Subscription(old); !errors.Is(err, graphsim.ErrNotFound) {
		t.Fatalf("old subscription still there: %v", err)
	}
	sub, err := st.g.sim.Subscription(rec.ID)
	if err != nil || sub.ClientState != "second-secret" {
		t.Fatalf("new subscription %v, %v", sub, err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		g := gaps()
		if len(g) != 1 || g[0].Reason != GapReplaced || g[0].PreviousSubscriptionID != old || g[0].SubscriptionID != rec.ID || g[0].End.Before(g[0].Start) {
			return fmt.Errorf("gaps %+v", g)
		}
		return nil
	})
}

func TestNotificationURLChangeMovesTheSubscription(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/4/messages", "created")
	m := st.manager(t, Config{Subscriptions: []Spec{spec}})
	reconcile(t, m)
	old := recordFor(t, m, spec).ID
	moved := spec
	moved.NotificationURL = st.url + "/?tunnel=2" // a new public URL, same receiver
	if err := m.SetSubscriptions([]Spec{moved}); err != nil {
		t.Fatal(err)
	}
	reconcile(t, m)
	subs := st.g.sim.Subscriptions()
	if len(subs) != 1 || subs[0].NotificationURL != moved.NotificationURL || subs[0].ID == old {
		t.Fatalf("Graph holds %+v; want one new subscription on the new URL", subs)
	}
	if r := recordFor(t, m, moved); r.ID != subs[0].ID || r.Owner != DefaultOwner {
		t.Fatalf("record %+v", r)
	}
}

// TestCrashedHolderTakenOverWithinTTL runs two Managers with their
// background loops on the wall clock; the holder dies without releasing the
// lease, and the other holds it within LeaseTTL.
func TestCrashedHolderTakenOverWithinTTL(t *testing.T) {
	st := newStack(t, stackOpts{wallClock: true})
	const ttl = 1500 * time.Millisecond
	spec := st.spec("users/8/messages", "created")
	a := st.manager(t, Config{Subscriptions: []Spec{spec}, Instance: "a", LeaseTTL: ttl, Interval: ttl / 3, Now: time.Now})
	testkit.CheckFor(t, 5*time.Second, func() error {
		if !a.Holder() {
			return errors.New("a does not hold the lease")
		}
		return nil
	})
	b := st.manager(t, Config{Subscriptions: []Spec{spec}, Instance: "b", LeaseTTL: ttl, Interval: ttl / 3, Now: time.Now})
	if b.Holder() {
		t.Fatal("b holds the lease while a is alive")
	}
	// a dies: its loops stop, the lease stays in the bucket.
	a.cancel()
	a.wg.Wait()
	died := time.Now()
	testkit.CheckFor(t, 3*ttl, func() error {
		if !b.Holder() {
			return errors.New("b does not hold the lease")
		}
		return nil
	})
	if took := time.Since(died); took > ttl+200*time.Millisecond {
		t.Fatalf("b took over after %v, want within the TTL %v", took, ttl)
	}
	if n := len(st.g.sim.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
}

func TestCommands(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/11/messages", "created")
	ctx := t.Context()
	m, rec := st.managed(t, spec, Config{GraphStream: "-"})
	st.clk.Advance(time.Hour)
	if err := m.RenewNow(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if r := recordFor(t, m, spec); !r.Expiration.After(rec.Expiration) || !r.LastRenewal.After(rec.LastRenewal) {
		t.Fatalf("not renewed: %v -> %v", rec.Expiration, r.Expiration)
	}
	if err := m.RenewNow(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("RenewNow(unknown) = %v", err)
	}
	if err := m.SetSubscriptions([]Spec{{Resource: "users/1/messages", ChangeType: "moved", NotificationURL: st.url}}); !errors.Is(err, ErrBadValue) {
		t.Fatalf("SetSubscriptions(bad) = %v, want ErrBadValue", err)
	}
	if r := rec.Redacted(); r.ClientState == rec.ClientState || r.ID != rec.ID {
		t.Fatal("Redacted kept the clientState")
	}
	if err := m.Delete(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.g.sim.Subscription(rec.ID); !errors.Is(err, graphsim.ErrNotFound) {
		t.Fatalf("still in Graph: %v", err)
	}
	if _, _, ok := m.record(spec.key()); ok {
		t.Fatal("record kept")
	}
}

// TestReceiverOutageIsAGap: while the receiver's sink fails (503), Graph
// retries; once a retry is stored, the outage is published as an
// unavailable gap with its bounds.
func TestReceiverOutageIsAGap(t *testing.T) {
	gate := &failing{}
	st := newStack(t, stackOpts{wallClock: true, gate: gate, sim: graphsim.Config{TimeScale: 0.0001}})
	gaps := subscribe[Gap](t, st.nc, "graph.gaps.>")
	spec := st.spec("users/12/messages", "created")
	m := st.manager(t, Config{Subscriptions: []Spec{spec}, Now: time.Now})
	ctx := t.Context()
	reconcile(t, m)
	id := recordFor(t, m, spec).ID
	gate.set(true)
	before := time.Now()
	if _, err := st.g.sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: id}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		for _, d := range st.g.sim.Deliveries() {
			for _, a := range d.Attempts {
				if a.Status == 503 {
					return nil
				}
			}
		}
		return errors.New("no 503 yet")
	})
	gate.set(false)
	if err := st.g.sim.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	reconcile(t, m)
	testkit.CheckFor(t, 5*time.Second, func() error {
		g := gaps()
		if len(g) != 1 {
			return fmt.Errorf("%d gaps", len(g))
		}
		if g[0].Reason != GapUnavailable || g[0].SubscriptionID != id || g[0].Resource != spec.Resource ||
			g[0].Start.Before(before.Add(-time.Second)) || g[0].End.After(after) || !g[0].End.After(g[0].Start) {
			return fmt.Errorf("gap %+v, want within %v..%v", g[0], before, after)
		}
		return nil
	})
}

// TestRetryAfterRespected: a renewal answered 429 with Retry-After is not
// tried again before it, and succeeds after it.
func TestRetryAfterRespected(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/20/messages", "created")
	m, rec := st.managed(t, spec, Config{GraphStream: "-"})
	if err := st.g.sim.InjectFault(graphsim.Fault{Op: graphsim.OpUpdate, SubscriptionID: rec.ID, Status: 429, RetryAfterSeconds: 120, Count: 1}); err != nil {
		t.Fatal(err)
	}
	st.clk.Advance(rec.RenewAt.Sub(st.clk.Now()) + time.Second)
	throttledAt := st.clk.Now()
	for range 12 { // passes every 10 s for 2 minutes
		reconcile(t, m)
		if st.clk.Now().Sub(throttledAt) < 120*time.Second {
			if n := st.g.sim.APICalls()[graphsim.OpUpdate]; n != 1 {
				t.Fatalf("%d PATCH calls %v after the 429, want 1", n, st.clk.Now().Sub(throttledAt))
			}
		}
		st.clk.Advance(10 * time.Second)
	}
	if r := recordFor(t, m, spec); r.LastOutcome != OutcomeThrottled || r.NextAttempt.Before(throttledAt.Add(120*time.Second)) {
		t.Fatalf("after the 429: outcome %s, next attempt %v (throttled at %v)", r.LastOutcome, r.NextAttempt, throttledAt)
	}
	st.clk.Advance(10 * time.Second)
	reconcile(t, m)
	r := recordFor(t, m, spec)
	if n := st.g.sim.APICalls()[graphsim.OpUpdate]; n != 2 || r.LastOutcome != OutcomeOK || !r.Expiration.After(rec.Expiration) {
		t.Fatalf("%d PATCH calls, outcome %s %s; want the second to renew", n, r.LastOutcome, r.LastError)
	}
}

// TestTransientErrorsBackOffAndRecover: 503s on renewal are retried with
// growing waits and the subscription is renewed before it expires.
func TestTransientErrorsBackOffAndRecover(t *testing.T) {
	st := newStack(t, stackOpts{})
	spec := st.spec("users/21/messages", "created")
	m, rec := st.managed(t, spec, Config{GraphStream: "-", Policy: Policy{MinBackoff: time.Minute, NoJitter: true}})
	if err := st.g.sim.InjectFault(graphsim.Fault{Op: graphsim.OpUpdate, Status: 503, Count: 4}); err != nil {
		t.Fatal(err)
	}
	st.clk.Advance(rec.RenewAt.Sub(st.clk.Now()) + time.Second)
	var waits []time.Duration
	for st.g.sim.APICalls()[graphsim.OpUpdate] < 5 {
		reconcile(t, m)
		r := recordFor(t, m, spec)
		if r.LastOutcome == OutcomeOK {
			break
		}
		waits = append(waits, r.NextAttempt.Sub(st.clk.Now()))
		st.clk.Advance(r.NextAttempt.Sub(st.clk.Now()))
	}
	r := recordFor(t, m, spec)
	if r.LastOutcome != OutcomeOK || !r.Expiration.After(rec.Expiration) || !st.clk.Now().Before(rec.Expiration) {
		t.Fatalf("outcome %s after %v; renewed before expiry %v: %v", r.LastOutcome, waits, rec.Expiration, r.Expiration)
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
}

func TestPermanentFailures(t *testing.T) {
	tests := []struct {
		name    string
		sim     graphsim.Config
		setup   func(*graphsim.Sim)
		specs   []string // resources; the last one fails
		wantErr error
	}{
		{name: "mailbox not enabled", setup: func(s *graphsim.Sim) { s.DisableMailbox("22", true) },
			specs: []string{"users/22/messages"}, wantErr: ErrMailboxNotEnabled},
		{name: "quota", sim: graphsim.Config{Quotas: graphsim.Quotas{DirectoryPerApp: 1}},
			specs: []string{"users", "groups"}, wantErr: ErrQuotaExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStack(t, stackOpts{sim: tt.sim})
			if tt.setup != nil {
				tt.setup(st.g.sim)
			}
			var specs []Spec
			for _, r := range tt.specs {
				specs = append(specs, st.spec(r, "updated"))
			}
			m := st.manager(t, Config{Subscriptions: specs, GraphStream: "-"})
			for range 3 {
				reconcile(t, m)
				st.clk.Advance(time.Hour)
			}
			bad := specs[len(specs)-1]
			rec := recordFor(t, m, bad)
			if !rec.Permanent || rec.ID != "" {
				t.Fatalf("record %v (%s), want permanent", rec, rec.LastError)
			}
			if n := st.g.sim.APICalls()[graphsim.OpCreate]; n != len(specs) {
				t.Fatalf("%d creates, want %d (one try each)", n, len(specs))
			}
			if g := testutil.ToFloat64(m.met.permanent.WithLabelValues(bad.Resource)); g != 1 {
				t.Fatalf("permanent gauge %v", g)
			}
			_, err := st.g.client.Create(t.Context(), Subscription{Resource: bad.Resource, ChangeType: "updated", NotificationURL: st.url, ExpirationDateTime: st.clk.Now().Add(time.Hour)})
			if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrPermanent) {
				t.Fatalf("create = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLifetimeLimitLearnedFromTimespanWording(t *testing.T) {
	st := newStack(t, stackOpts{sim: graphsim.Config{ExpirationWording: "timespan", MaxLifetimes: map[string]time.Duration{"message": 2 * 24 * time.Hour}}})
	spec := st.spec("users/23/messages", "created")
	_, rec := st.managed(t, spec, Config{GraphStream: "-"})
	if rec.ID == "" || rec.MaxLifetime != 48*time.Hour || rec.Expiration.Sub(st.clk.Now()) >= 48*time.Hour {
		t.Fatalf("record %v learned %v (%s)", rec, rec.MaxLifetime, rec.LastError)
	}
	if n := st.g.sim.APICalls()[graphsim.OpCreate]; n != 2 {
		t.Fatalf("%d creates, want 2 (refused, then under the learned cap)", n)
	}
}

// TestAuthorizationLapseGap: a reauthorizationRequired whose PATCH fails
// opens an authorization gap at the challenge; the next successful renewal
// closes it.
func TestAuthorizationLapseGap(t *testing.T) {
	st := newStack(t, stackOpts{})
	gaps := subscribe[Gap](t, st.nc, "graph.gaps.>")
	spec := st.spec("users/30/messages", "created")
	ctx := t.Context()
	m, rec := st.managed(t, spec, Config{GraphStream: "-"})
	st.clk.Advance(time.Hour)
	challenged := st.clk.Now()
	if err := st.g.sim.InjectFault(graphsim.Fault{Op: graphsim.OpUpdate, Status: 503, RetryAfterSeconds: 30, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.HandleLifecycle(ctx, Lifecycle{SubscriptionID: rec.ID, Event: EventReauthorizationRequired, Time: challenged}); err != nil {
		t.Fatal(err)
	}
	if r := recordFor(t, m, spec); r.GapReason != GapAuthorization || !r.GapStart.Equal(challenged) {
		t.Fatalf("gap %q from %v, want authorization from %v", r.GapReason, r.GapStart, challenged)
	}
	// A second challenge while Retry-After runs sends nothing.
	if err := m.HandleLifecycle(ctx, Lifecycle{SubscriptionID: rec.ID, Event: EventReauthorizationRequired}); err != nil {
		t.Fatal(err)
	}
	if n := st.g.sim.APICalls()[graphsim.OpUpdate]; n != 1 {
		t.Fatalf("%d PATCH calls, want 1", n)
	}
	st.clk.Advance(31 * time.Second)
	reconcile(t, m)
	r := recordFor(t, m, spec)
	if r.LastOutcome != OutcomeOK || !r.GapStart.IsZero() {
		t.Fatalf("after the retry: %s, gap open from %v", r.LastOutcome, r.GapStart)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		g := gaps()
		if len(g) != 1 || g[0].Reason != GapAuthorization || !g[0].Start.Equal(challenged) || !g[0].End.Equal(r.LastRenewal) || g[0].SubscriptionID != rec.ID {
			return fmt.Errorf("gaps %+v; want authorization %v..%v", g, challenged, r.LastRenewal)
		}
		return nil
	})
}

// TestRevokedConsent: an admin revokes the app's consent; Graph challenges,
// the PATCH answers 403 and the subscription is reported permanent (no
// loop); once consent is restored, Retry renews it and the authorization
// gap is published from the challenge to the renewal.
func TestRevokedConsent(t *testing.T) {
	st := newStack(t, stackOpts{})
	gaps := subscribe[Gap](t, st.nc, "graph.gaps.>")
	spec := st.spec("users/31/messages", "created")
	ctx := t.Context()
	m, rec := st.managed(t, spec, Config{})
	st.clk.Advance(ReauthorizeQuiet + time.Minute)
	if err := m.Reconcile(ctx); err != nil { // refresh the lease on the test clock
		t.Fatal(err)
	}
	revoked := st.clk.Now()
	if err := st.g.sim.RevokeConsent(ctx, graphsim.DefaultAppID); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if r := recordFor(t, m, spec); !r.Permanent {
			return fmt.Errorf("outcome %s", r.LastOutcome)
		}
		return nil
	})
	for range 3 {
		reconcile(t, m)
		st.clk.Advance(time.Minute)
	}
	if n := st.g.sim.APICalls()[graphsim.OpUpdate]; n != 1 {
		t.Fatalf("%d PATCH calls after the revocation, want 1", n)
	}
	if g := testutil.ToFloat64(m.met.permanent.WithLabelValues(spec.Resource)); g != 1 {
		t.Fatalf("permanent gauge %v", g)
	}
	if err := st.g.sim.RestoreConsent(graphsim.DefaultAppID); err != nil {
		t.Fatal(err)
	}
	if err := m.Retry(ctx); err != nil {
		t.Fatal(err)
	}
	r := recordFor(t, m, spec)
	if r.ID != rec.ID || r.LastOutcome != OutcomeOK || r.Permanent {
		t.Fatalf("after Retry: %v (%s)", r, r.LastError)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		g := gaps()
		if len(g) != 1 || g[0].Reason != GapAuthorization || g[0].Start.Before(revoked) || !g[0].End.Equal(r.LastRenewal) {
			return fmt.Errorf("gaps %+v; want authorization from %v to %v", g, revoked, r.LastRenewal)
		}
		return nil
	})
}
