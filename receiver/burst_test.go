package receiver_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

// richBatches returns n bodies of size rich items each, encrypted for key.
func richBatches(t *testing.T, key decrypt.Key, n, size int) [][]byte {
	t.Helper()
	bodies := make([][]byte, n)
	for b := range bodies {
		items := make([]map[string]any, size)
		for i := range items {
			items[i] = richItem(t, b*size+i, key, `{"id":"m","subject":"hello"}`)
		}
		bodies[b] = collectionWithToken(t, "x", items...)
	}
	return bodies
}

type answer struct {
	status     int
	retryAfter string
	took       time.Duration
}

// postAll posts every body at once and returns the answers.
func postAll(t *testing.T, u string, bodies [][]byte) []answer {
	t.Helper()
	answers := make([]answer, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			start := time.Now()
			resp, _ := post(t, u, "application/json", body)
			answers[i] = answer{resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)}
		})
	}
	wg.Wait()
	return answers
}

// TestRichBurstThatFitsIsNeverRefused is what `graphsim change --count
// 1000` does: 10 batches of 100 rich changes at once against an idle
// receiver, about 0.4 s of RSA-2048 on two cores. With the default
// settings every batch is taken.
func TestRichBurstThatFitsIsNeverRefused(t *testing.T) {
	key := testkit.DecryptKey(t, "cert-1")
	ring := testkit.KeyRing(t, key)
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, InsecureSkipTokenValidation: true})
	for i, a := range postAll(t, srv.URL+"/notifications", richBatches(t, key, 10, 100)) {
		if a.status != http.StatusAccepted {
			t.Errorf("batch %d: status %d after %v, want 202", i, a.status, a.took)
		}
	}
	if n := len(sink.accepted()); n != 1000 {
		t.Errorf("accepted %d, want 1000", n)
	}
	if st := r.Stats(); st.Unavailable != 0 {
		t.Errorf("Stats.Unavailable = %d, want 0", st.Unavailable)
	}
}

// TestRichOverloadIsRefusedAtOnce: when more rich work arrives than fits
// in the decryption budget, the batches that do not fit are answered 503
// with Retry-After at once, not after waiting for the budget, and no
// answer comes later than the batch timeout.
func TestRichOverloadIsRefusedAtOnce(t *testing.T) {
	key := testkit.DecryptKey(t, "cert-1")
	ring := testkit.KeyRing(t, key)
	sink := &recorder{}
	const budget = 300 * time.Millisecond
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, InsecureSkipTokenValidation: true,
		MaxDecryptWait: budget, Timeout: receiver.DefaultTimeout})
	// 2,400 RSA-2048 operations: at least 0.9 s on two cores with the
	// pure-Go backend, three times the budget. OpenSSL's are about three
	// times faster, so that backend gets three times as many.
	batches := 24
	if decrypt.Backend == "openssl" {
		batches *= 3
	}
	bodies := richBatches(t, key, batches, 100)
	// A first batch teaches the receiver what an item costs.
	if a := postAll(t, srv.URL+"/notifications", bodies[:1]); a[0].status != http.StatusAccepted {
		t.Fatalf("warm-up batch: status %d", a[0].status)
	}
	answers := postAll(t, srv.URL+"/notifications", bodies[1:])
	var taken, refused int
	fastest := time.Hour
	for i, a := range answers {
		if a.took > receiver.DefaultTimeout+time.Second {
			t.Errorf("batch %d: answered after %v, over the %v timeout", i, a.took, receiver.DefaultTimeout)
		}
		switch a.status {
		case http.StatusAccepted:
			taken++
		case http.StatusServiceUnavailable:
			refused++
			fastest = min(fastest, a.took)
			if a.retryAfter == "" {
				t.Errorf("batch %d: 503 without Retry-After", i)
			}
		default:
			t.Errorf("batch %d: status %d", i, a.status)
		}
	}
	t.Logf("taken %d, refused %d, fastest refusal %v", taken, refused, fastest)
	if refused == 0 {
		t.Fatalf("no batch was refused: %d items arrived at once for a %v budget", 100*len(answers), budget)
	}
	// A refusal that waited for the budget takes at least the budget; one
	// made at once takes the time to read and parse its body, which a busy
	// machine (two cores decrypting, other processes) can stretch to a
	// good part of it, so the bound is the budget itself.
	if fastest >= budget {
		t.Errorf("the fastest 503 came after %v, want under the %v budget (at once, not after waiting for it)", fastest, budget)
	}
	if got := len(sink.accepted()); got != 100*(taken+1) {
		t.Errorf("accepted %d items, want %d", got, 100*(taken+1))
	}
	if r.Stats().Unavailable != uint64(refused) {
		t.Errorf("Stats.Unavailable = %d, want %d", r.Stats().Unavailable, refused)
	}
}
