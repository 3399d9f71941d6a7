package graphsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/token"
	"github.com/nats-io/nats.go/jetstream"
)

// receiver outage modes of the end-to-end test.
const (
	up      = iota
	down    // 503 without processing: nothing reaches JetStream
	lostAck // processed and published, but the answer is lost (503)
)

// TestEndToEndRichNotificationsReachJetStreamExactlyOnce runs graphsim
// against the real receiver (token validation against graphsim's JWKS,
// decryption with a generated key) publishing to an in-process JetStream.
func TestEndToEndRichNotificationsReachJetStreamExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	ctx := t.Context()
	_, nc := natstest.Start(t)
	pub, err := natspub.New(ctx, natspub.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })

	cfg := fastConfig()
	cfg.TimeScale = 0.001 // retry window 14.4 s
	// Two POSTs in flight: ten concurrent 100-item rich batches would take
	// longer than Graph's 3 s budget to decrypt on a 2-core machine.
	cfg.Concurrency = 2
	sim := newSim(t, cfg)
	key := testKey(t)
	ring, err := decrypt.NewKeyRing(key)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(ctx, token.Config{AppIDs: []string{graphsim.DefaultAppID}, JWKSURL: sim.JWKSURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokens.Close() })
	const clientState = "e2e-client-state"
	rcv, err := receiver.New(receiver.Config{Sink: pub, ClientStates: []string{clientState}, Tokens: tokens, Keys: ring})
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Int32
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("validationToken") {
			rcv.ServeHTTP(w, r)
			return
		}
		switch mode.Load() {
		case down:
			refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		case lostAck:
			rec := httptest.NewRecorder()
			rcv.ServeHTTP(rec, r)
			if rec.Code != http.StatusAccepted {
				t.Errorf("receiver answered %d during the lost-ack phase", rec.Code)
			}
			refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			rcv.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	sub, err := sim.CreateSubscription(ctx, graphsim.SubscriptionRequest{
		ChangeType:              "created,updated",
		NotificationURL:         srv.URL + "/notifications",
		Resource:                "me/mailFolders('Inbox')/messages",
		ExpirationDateTime:      time.Now().Add(12 * time.Hour),
		ClientState:             clientState,
		IncludeResourceData:     true,
		EncryptionCertificate:   key.EncryptionCertificate(),
		EncryptionCertificateID: key.ID,
	})
	if err != nil {
		t.Fatalf("create rich subscription (handshake through the receiver): %v", err)
	}

	want := map[string][]byte{} // resource id -> generated plaintext
	change := func(n int, changeType string) {
		t.Helper()
		rep, err := sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: sub.ID, Count: n, ChangeType: changeType})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range rep.Items {
			want[it.ID] = it.Content
		}
	}

	// 1. A thousand changes, receiver up.
	change(1000, "created")
	if err := sim.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// outage sends 150 updates while the receiver answers in mode m, until
	// it has refused atLeast POSTs (what names them), then brings the
	// receiver back and waits for Graph's redeliveries.
	outage := func(m int32, atLeast int64, what string) {
		t.Helper()
		refused.Store(0)
		mode.Store(m)
		change(150, "updated")
		testkit.CheckFor(t, 10*time.Second, func() error {
			if refused.Load() < atLeast {
				return fmt.Errorf("%d %s", refused.Load(), what)
			}
			return nil
		})
		mode.Store(up)
		if err := sim.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 2. Receiver down: 503 until it comes back; Graph retries.
	outage(down, 3, "refused POSTs")
	// 3. Answers lost after publishing: Graph redelivers what is stored.
	outage(lostAck, 2, "lost answers")
	retried := 0
	for _, d := range sim.Deliveries() {
		retried += d.Retries()
		if d.State != graphsim.StateDelivered {
			t.Fatalf("delivery %d: %s after %d attempts", d.ID, d.State, len(d.Attempts))
		}
	}
	t.Logf("%d deliveries, %d retries", len(sim.Deliveries()), retried)
	if st := pub.Stats(); st.Duplicates == 0 {
		t.Errorf("publisher stats %+v: the lost-ack redeliveries should have been duplicates", st)
	}

	// Every generated change is in the stream exactly once, with its content.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, natspub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(want)) {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, len(want))
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"graph.notifications.>"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for len(seen) < len(want) {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var ev struct {
				SubscriptionID string              `json:"subscriptionId"`
				ResourceData   struct{ ID string } `json:"resourceData"`
				Content        json.RawMessage     `json:"content"`
				ClientState    string              `json:"clientState"`
			}
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			id := ev.ResourceData.ID
			seen[id]++
			plain, ok := want[id]
			if !ok || ev.SubscriptionID != sub.ID || ev.ClientState != "" {
				t.Fatalf("unexpected event %s", msg.Data())
			}
			var compact bytes.Buffer
			json.Compact(&compact, plain)
			if !bytes.Equal(ev.Content, compact.Bytes()) {
				t.Fatalf("event %s: content differs from the generated plaintext", id)
			}
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if n == 0 {
			break
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("%d distinct events, want %d", len(seen), len(want))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
}
