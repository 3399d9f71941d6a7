package standing_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/standing"
)

// The budgets of the simulated Graph, and of the Monitor watching the
// receiver. Shorter than Graph's 3 s and 10 s so that the test is quick,
// long enough that a stalled test process (the race detector on a busy
// machine) does not move a request across the 1.25 s midpoint the Monitor
// uses to tell a first attempt from a retry; the rule and the ratios are
// Graph's.
const (
	simTimeout      = 500 * time.Millisecond
	simRetryTimeout = 2000 * time.Millisecond
	simMinSamples   = 20
	simClientState  = "standing-test-client-state"
)

// behaviour decides how the receiver's sink treats a batch: attempt is 0 for
// the first delivery of a notification, 1 for its first retry, and so on.
type behaviour func(seq, attempt int) (delay time.Duration, hang bool)

func fast(int, int) (time.Duration, bool) { return 0, false }

// slowReceiver is a real receiver whose sink is slow for some batches: it
// sleeps, or waits until Graph gives up, as a receiver whose NATS publish
// stalls does.
type slowReceiver struct {
	mu       sync.Mutex
	attempts map[string]int // notification id -> deliveries seen
	seen     int
	behave   behaviour
}

func (s *slowReceiver) Deliver(ctx context.Context, b *receiver.Batch) error {
	if len(b.Notifications) == 0 {
		return fmt.Errorf("batch without accepted notifications (%d rejected)", len(b.Rejected))
	}
	id := b.Notifications[0].ID
	s.mu.Lock()
	attempt, ok := s.attempts[id]
	if !ok {
		s.seen++
	}
	seq := s.seen
	s.attempts[id]++
	s.mu.Unlock()
	delay, hang := s.behave(seq, attempt)
	if hang {
		<-ctx.Done() // Graph gave up; the receiver answers 503 to nobody
		return ctx.Err()
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TestReproducesGraphsimThrottlingDecisions sends the same traffic from
// graphsim to a receiver behind the middleware, and checks that the Monitor
// counts what graphsim counts and reaches graphsim's slow/drop decision.
func TestReproducesGraphsimThrottlingDecisions(t *testing.T) {
	tests := []struct {
		name   string
		count  int
		behave behaviour
		want   standing.State
	}{
		{"fast receiver", 30, fast, standing.StateNormal},
		{
			"rare stalls stay under 10 %", 40,
			func(seq, attempt int) (time.Duration, bool) { return 0, seq%25 == 0 && attempt == 0 },
			standing.StateNormal,
		},
		{
			"every fourth first attempt stalls", 40,
			func(seq, attempt int) (time.Duration, bool) { return 0, seq%4 == 0 && attempt == 0 },
			standing.StateSlow,
		},
		{
			"retries answered late but in budget", 40,
			func(seq, attempt int) (time.Duration, bool) {
				if seq%5 != 0 {
					return 0, false
				}
				if attempt == 0 {
					return 0, true
				}
				return 2 * simTimeout, false // over 500 ms, under 2 s
			},
			standing.StateSlow,
		},
		{
			"every third notification never answered", 30,
			func(seq, attempt int) (time.Duration, bool) { return 0, seq%3 == 0 },
			standing.StateDrop,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mon := newMonitor(t, standing.Config{SlowAfter: simTimeout, TimeoutAfter: simRetryTimeout, MinSamples: simMinSamples})
			sink := &slowReceiver{attempts: map[string]int{}, behave: tt.behave}
			rcv, err := receiver.New(receiver.Config{ClientStates: []string{simClientState}, Sink: sink, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/notifications", mon.Middleware("notifications")(rcv))
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)

			sim, err := graphsim.New(graphsim.Config{
				TimeScale: 0.0001, SweepInterval: -1, MaxBatch: 1,
				Timeout: simTimeout, RetryTimeout: simRetryTimeout,
				ThrottleMinSamples: simMinSamples,
				RetryFor:           4 * time.Hour, // scaled: 1.44 s, one retry
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			if _, err := sim.CreateSubscription(t.Context(), graphsim.SubscriptionRequest{
				ChangeType: "created", NotificationURL: srv.URL + "/notifications", Resource: "me/messages",
				ExpirationDateTime: time.Now().Add(time.Hour), ClientState: simClientState,
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := sim.Change(t.Context(), graphsim.ChangeRequest{Count: tt.count}); err != nil {
				t.Fatal(err)
			}
			if err := sim.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			eps := sim.Endpoints()
			if len(eps) != 1 {
				t.Fatalf("graphsim endpoints %+v", eps)
			}
			g := eps[0]
			// graphsim's record of an attempt is written when the response
			// arrives; the middleware's when the handler returns, which for a
			// request Graph gave up on can be a moment later.
			var e standing.Endpoint
			deadline := time.Now().Add(5 * time.Second)
			for {
				e = endpointOf(t, mon, "notifications")
				if e.Responses >= g.Window || time.Now().After(deadline) {
					break
				}
				<-time.After(10 * time.Millisecond)
			}
			t.Logf("graphsim: %s, %d responses, %d slow, %d timed out; standing: %s, %d, %d, %d",
				g.State, g.Window, g.Slow, g.TimedOut, e.State, e.Responses, e.Slow, e.TimedOut)
			if string(e.State) != g.State {
				t.Errorf("standing says %s, graphsim says %s", e.State, g.State)
			}
			if e.State != tt.want {
				t.Errorf("state %s, want %s", e.State, tt.want)
			}
			if e.Responses != g.Window || e.Slow != g.Slow || e.TimedOut != g.TimedOut {
				t.Errorf("standing counted %d/%d/%d (responses/slow/timed out), graphsim %d/%d/%d",
					e.Responses, e.Slow, e.TimedOut, g.Window, g.Slow, g.TimedOut)
			}
		})
	}
}
