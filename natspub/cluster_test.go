package natspub_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterLeaderLossKeepsTheLedger runs the scale-out deployment: a
// three-node JetStream cluster on loopback with R3 streams, several
// publishers delivering batches like receivers do (a failed batch is
// delivered again, as Graph redelivers after a 503), and the stream leader
// killed under load. The ledger check: every event of every Deliver that
// returned nil is in the stream exactly once.
func TestClusterLeaderLossKeepsTheLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	cl := natstest.StartCluster(t, 3)
	nc := natstest.Connect(t, cl.URLs())
	pub := newPublisher(t, nc, natspub.Config{Replicas: 3, PublishTimeout: 2 * time.Second})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{natspub.DefaultStream, natspub.DefaultQuarantineStream, natspub.DefaultUnverifiedStream} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", name, r)
		}
	}
	testkit.CheckFor(t, 20*time.Second, func() error { return pub.Ready(t.Context()) })

	const (
		workers   = 4
		perBatch  = 10
		minBefore = 20 // batches delivered before the leader is killed
		minAfter  = 20 // and after
	)
	var (
		mu        sync.Mutex
		ledger    = map[string]int{} // event id -> successful Delivers that held it
		delivered atomic.Int64
		failures  atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				b := &receiver.Batch{ReceivedAt: time.Now()}
				for j := range perBatch {
					b.Notifications = append(b.Notifications, &receiver.Notification{
						ID: fmt.Sprintf("w%d-b%d-n%d", w, i, j), SubscriptionID: subID, TenantID: tenant,
						ChangeType: "created", Resource: "users/u1/messages/m" + strconv.Itoa(j),
					})
				}
				// Deliver until it succeeds, as Graph redelivers.
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					err := pub.Deliver(ctx, b)
					cancel()
					if err == nil {
						break
					}
					failures.Add(1)
					if stop.Load() && time.Since(b.ReceivedAt) > 30*time.Second {
						t.Errorf("batch w%d-b%d never delivered: %v", w, i, err)
						return
					}
				}
				mu.Lock()
				for _, n := range b.Notifications {
					ledger[natspub.EventID(n)]++
				}
				mu.Unlock()
				delivered.Add(1)
			}
		})
	}
	testkit.CheckFor(t, 20*time.Second, func() error {
		if n := delivered.Load(); n < minBefore {
			return fmt.Errorf("%d batches delivered before the leader loss", n)
		}
		return nil
	})

	s, err := js.Stream(t.Context(), natspub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v %+v", err, info)
	}
	leader := cl.Server(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("no server named %q", info.Cluster.Leader)
	}
	leader.Shutdown()
	leader.WaitForShutdown()
	atLoss := delivered.Load()
	t.Logf("killed stream leader %s after %d batches", info.Cluster.Leader, atLoss)

	testkit.CheckFor(t, 30*time.Second, func() error {
		if n := delivered.Load(); n < atLoss+minAfter {
			return fmt.Errorf("%d batches delivered after the leader loss, want %d", n-atLoss, minAfter)
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()

	testkit.CheckFor(t, 20*time.Second, func() error { return pub.Ready(t.Context()) })
	stored := map[string]int{}
	for _, m := range streamMsgs(t, js, natspub.DefaultStream) {
		stored[m.Header.Get(natspub.HeaderID)]++
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range ledger {
		if n != 1 {
			t.Errorf("event %s delivered %d times by the test itself", id, n)
		}
		if stored[id] != 1 {
			t.Errorf("event %s acknowledged, stored %d times, want exactly once", id, stored[id])
		}
	}
	for id := range stored {
		if ledger[id] == 0 {
			t.Errorf("event %s stored but never acknowledged to a caller", id)
		}
	}
	st := pub.Stats()
	// A Deliver that failed may have stored some messages before its
	// retry found them duplicates: Stored counts the acks it saw.
	if st.Stored+st.Duplicates < uint64(len(ledger)) || st.Stored > uint64(len(stored)) {
		t.Errorf("Stats = %+v for %d acknowledged events, %d stored", st, len(ledger), len(stored))
	}
	t.Logf("ledger: %d events acknowledged, %d stored, %d failed Delivers retried, %d duplicates", len(ledger), len(stored), failures.Load(), st.Duplicates)

	// A restart with the default Replicas never lowers the operator's R3.
	newPublisher(t, nc, natspub.Config{})
	if r := streamConfig(t, js, natspub.DefaultStream).Replicas; r != 3 {
		t.Errorf("after New with Replicas 1 the stream has %d replicas, want 3 kept", r)
	}

	// Two of three nodes gone: no quorum, no leader, not ready.
	for _, ns := range cl.Servers {
		if ns.Running() && ns.ClientURL() != nc.ConnectedUrl() {
			ns.Shutdown()
			ns.WaitForShutdown()
			break
		}
	}
	testkit.CheckFor(t, 20*time.Second, func() error {
		if err := pub.Ready(t.Context()); !errors.Is(err, natspub.ErrStreamUnavailable) {
			return fmt.Errorf("Ready = %v, want ErrStreamUnavailable", err)
		}
		return nil
	})
}
