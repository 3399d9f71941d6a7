package graphsim_test

import (
	"testing"

	"github.com/graphhook/graphhook/graphsim"
)

func BenchmarkBasicBatch100(b *testing.B) {
	items := make([]graphsim.Notification, 100)
	for b.Loop() {
		for i := range items {
			items[i] = graphsim.BasicNotification(graphsim.Item{SubscriptionID: "s", ClientState: "cs"})
		}
		if _, err := graphsim.Marshal(items...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRichNotification(b *testing.B) {
	key := testKey(b)
	for b.Loop() {
		if _, _, err := graphsim.RichNotification(graphsim.Item{SubscriptionID: "s", ClientState: "cs"}, key.Certificate, key.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRichBatch100(b *testing.B) {
	key := testKey(b)
	sim, err := graphsim.New(graphsim.Config{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	items := make([]graphsim.Notification, 100)
	for b.Loop() {
		for i := range items {
			if items[i], _, err = graphsim.RichNotification(graphsim.Item{SubscriptionID: "s"}, key.Certificate, key.ID); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := sim.Batch("", items...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChangeDelivered measures the simulator's own cost per basic
// notification: generate, batch by 100, POST to a loopback endpoint.
func BenchmarkChangeDelivered(b *testing.B) {
	sim := newSim(b, fastConfig())
	e := newEndpoint(b)
	if _, err := sim.CreateSubscription(b.Context(), subRequest(e, "me/messages")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := sim.Change(b.Context(), graphsim.ChangeRequest{Count: 100}); err != nil {
			b.Fatal(err)
		}
		if err := sim.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "notifications/s")
}
