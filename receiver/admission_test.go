package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// TestBusyCPUAnswers503Quickly checks admission control: while other
// batches hold every decryption slot, a rich batch waits at most
// MaxDecryptWait and is then answered 503 (Graph retries) rather than
// drifting past Graph's 3 s limit; once the slots free up it is taken.
func TestBusyCPUAnswers503Quickly(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	r, delivered := countingReceiver(t, testkit.KeyRing(t, key), 50*time.Millisecond)
	body := richBody(t, key, 4, "", nil)

	// Other batches hold every core.
	if err := r.work.cpu.Acquire(t.Context(), r.work.slots); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := r.Receive(t.Context(), body, url.Values{})
	if statusOf(err) != http.StatusServiceUnavailable || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("busy: err = %v (status %d), want 503 ErrUnavailable", err, statusOf(err))
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("busy: answered after %v, want about MaxDecryptWait", waited)
	}
	if *delivered != 0 {
		t.Errorf("busy: %d delivered, want 0", *delivered)
	}

	r.work.cpu.Release(r.work.slots)
	if _, err := r.Receive(t.Context(), body, url.Values{}); err != nil {
		t.Fatalf("free: %v", err)
	}
	if *delivered != 4 {
		t.Errorf("free: %d delivered, want 4", *delivered)
	}
}

// TestBatchTakesAFreeCoreBesideABusyOne checks that a rich batch starts on
// the cores that are free instead of waiting for all of them: the tail of
// an earlier batch holding one core must not leave the other idle.
func TestBatchTakesAFreeCoreBesideABusyOne(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	r, delivered := countingReceiver(t, testkit.KeyRing(t, key), 50*time.Millisecond)
	body := richBody(t, key, 4, "", nil)
	if r.work.slots < 2 {
		t.Skipf("GOMAXPROCS is %d: no second core to leave busy", r.work.slots)
	}

	// Another batch holds every core but one, for longer than the budget.
	if err := r.work.cpu.Acquire(t.Context(), r.work.slots-1); err != nil {
		t.Fatal(err)
	}
	defer r.work.cpu.Release(r.work.slots - 1)
	if _, err := r.Receive(t.Context(), body, url.Values{}); err != nil {
		t.Fatalf("one core free: %v, want the batch decrypted on it", err)
	}
	if *delivered != 4 {
		t.Errorf("one core free: %d delivered, want 4", *delivered)
	}
}

// TestAdmissionByWork checks the admission rule itself: batches are taken
// while the estimated work queued plus their own fits in the budget on
// the cores, whatever the wait; then refused; an idle receiver takes any
// batch; finished work frees the budget.
func TestAdmissionByWork(t *testing.T) {
	a := newAdmission(2)
	const class = 2 // RSA-2048
	ec := &decrypt.EncryptedContent{DataKey: strings.Repeat("A", 344)}
	if c := costClass(ec); c != class {
		t.Fatalf("costClass of a 2048-bit dataKey = %d, want %d", c, class)
	}
	// The burst of graphsim change --count 1000 on a machine where an RSA
	// operation takes 2.5 ms a core: 10 batches of 100 are 1.25 s of work
	// on two cores, within the 2 s budget. A fixed 1 s wait refused the last
	// ones.
	a.observe(class, 2500*time.Microsecond)
	batch := 100 * a.estimate(class)
	for i := range 10 {
		if !a.admit(batch, DefaultMaxDecryptWait) {
			t.Fatalf("batch %d of the burst refused with %v queued", i, time.Duration(a.queued.Load()/2))
		}
	}
	for i := 10; ; i++ {
		if !a.admit(batch, DefaultMaxDecryptWait) {
			if want := 16; i != want {
				t.Errorf("batch %d refused first, want %d: 16 batches are exactly 2 s on two cores", i, want)
			}
			break
		}
		if i > 100 {
			t.Fatal("admission never refused")
		}
	}
	a.queued.Add(-a.queued.Load()) // the work is done
	if !a.admit(10000*a.estimate(class), DefaultMaxDecryptWait) {
		t.Errorf("an idle receiver refused a batch")
	}
	// Estimates follow measurements.
	before := a.estimate(class)
	for range 50 {
		a.observe(class, 700*time.Microsecond)
	}
	if got := a.estimate(class); got >= before || got > int64(800*time.Microsecond) {
		t.Errorf("estimate = %v after measuring 0.7 ms, was %v", time.Duration(got), time.Duration(before))
	}
	if p2, p4 := newAdmission(1).estimate(2), newAdmission(1).estimate(4); p4 <= p2 {
		t.Errorf("prior for RSA-4096 %v is not above RSA-2048's %v", time.Duration(p4), time.Duration(p2))
	}
}

// TestDecryptionReleasesItsWork: whatever the outcome, a batch's estimated
// work leaves the queue when the batch is done.
func TestDecryptionReleasesItsWork(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	ring := testkit.KeyRing(t, key)
	body := richBody(t, key, 20, "", func(i int, ec *decrypt.EncryptedContent) {
		if i%2 == 1 {
			ec.DataKey = "AAAA" + ec.DataKey[4:] // fails
		}
	})
	for _, timeout := range []time.Duration{time.Minute, time.Microsecond} {
		r, err := New(Config{ClientStates: []string{"cs"}, Keys: ring, InsecureSkipTokenValidation: true, Timeout: timeout,
			Sink: SinkFunc(func(ctx context.Context, b *Batch) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Receive(t.Context(), body, url.Values{})
		if timeout == time.Minute && (err != nil || len(b.Notifications) != 10 || len(b.Rejected) != 10) {
			t.Fatalf("Receive: %v", err)
		}
		if timeout == time.Microsecond && statusOf(err) != http.StatusServiceUnavailable {
			t.Fatalf("Receive with no time left: %v, want 503", err)
		}
		if q := r.work.queued.Load(); q != 0 {
			t.Errorf("timeout %v: %v of work still queued after the batch", timeout, time.Duration(q))
		}
	}
}

// TestRedeliveredBatchIsNearlyFree: the KeyRing caches the symmetric keys
// it unwrapped, so a batch Graph delivers again costs no RSA. Admission
// counts only the items that will need RSA: a redelivered batch is taken
// when an identical fresh batch is refused, and the estimate of an RSA
// operation learns nothing from cache hits.
func TestRedeliveredBatchIsNearlyFree(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	r, delivered := countingReceiver(t, testkit.KeyRing(t, key), 100*time.Millisecond)
	first, fresh := richBody(t, key, 8, "first-", nil), richBody(t, key, 8, "fresh-", nil)
	if _, err := r.Receive(t.Context(), first, url.Values{}); err != nil || *delivered != 8 {
		t.Fatalf("first delivery: %v, %d delivered", err, *delivered)
	}
	const class = 2 // RSA-2048
	learned := r.work.estimate(class)

	// Other batches hold every core and more queued work than the budget.
	if err := r.work.cpu.Acquire(t.Context(), r.work.slots); err != nil {
		t.Fatal(err)
	}
	r.work.queued.Add(r.work.slots * int64(time.Second))
	t.Cleanup(func() { r.work.cpu.Release(r.work.slots) })

	if _, err := r.Receive(t.Context(), fresh, url.Values{}); statusOf(err) != http.StatusServiceUnavailable || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fresh batch while busy: err = %v (status %d), want 503 ErrUnavailable", err, statusOf(err))
	}
	for i := range 5 {
		b, err := r.Receive(t.Context(), first, url.Values{})
		if err != nil {
			t.Fatalf("redelivery %d while busy: %v, want it taken", i, err)
		}
		if len(b.Notifications) != 8 || len(b.Rejected) != 0 || string(b.Notifications[0].Content) != `{"i":1}` {
			t.Fatalf("redelivery %d: %d accepted, %d rejected", i, len(b.Notifications), len(b.Rejected))
		}
	}
	if got := r.work.estimate(class); got != learned {
		t.Errorf("estimate of an RSA-2048 item moved from %v to %v after cache hits alone", time.Duration(learned), time.Duration(got))
	}
	if q := r.work.queued.Load(); q != r.work.slots*int64(time.Second) {
		t.Errorf("queued work changed by %v: the redeliveries were counted as work", time.Duration(q-r.work.slots*int64(time.Second)))
	}
}

// countingReceiver returns a Receiver of rich items for ring, with no token
// validation, that waits at most wait for a decryption slot, and the
// number of notifications it has delivered.
func countingReceiver(t *testing.T, ring *decrypt.KeyRing, wait time.Duration) (*Receiver, *int) {
	t.Helper()
	delivered := new(int)
	r, err := New(Config{
		ClientStates: []string{"cs"}, Keys: ring, InsecureSkipTokenValidation: true,
		MaxDecryptWait: wait,
		Sink: SinkFunc(func(ctx context.Context, b *Batch) error {
			*delivered += len(b.Notifications)
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, delivered
}

// richBody returns a batch of n rich items encrypted for key, with the ids
// prefix+"a", prefix+"b", ... and a placeholder token; change, when not
// nil, alters item i's encryptedContent.
func richBody(t *testing.T, key decrypt.Key, n int, prefix string, change func(i int, ec *decrypt.EncryptedContent)) []byte {
	t.Helper()
	items := make([]map[string]any, n)
	for i := range items {
		ec, err := graphsim.Encrypt(key.Certificate, key.ID, []byte(`{"i":1}`))
		if err != nil {
			t.Fatal(err)
		}
		if change != nil {
			change(i, ec)
		}
		items[i] = map[string]any{"subscriptionId": "s", "clientState": "cs", "changeType": "created", "tenantId": "t", "resource": "r", "encryptedContent": ec, "id": prefix + string(rune('a'+i))}
	}
	body, err := json.Marshal(map[string]any{"value": items, "validationTokens": []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}
