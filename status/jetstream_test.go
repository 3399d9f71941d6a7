package status_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/status"
)

func TestJetStreamFillsStreamsConsumersAndQuarantine(t *testing.T) {
	_, nc := natstest.Start(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GRAPH", Subjects: []string{"graph.notifications.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "GRAPH_REJECTED", Subjects: []string{"graph.rejected.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "graph.notifications.t1.s1.created", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, subj := range []string{"graph.rejected.clientState.t1", "graph.rejected.clientState.t2", "graph.rejected.clientState._", "graph.rejected.token.t1"} {
		if _, err := js.Publish(ctx, subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateConsumer(ctx, "GRAPH", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m // delivered, not acknowledged
	}
	if _, err := js.CreateConsumer(ctx, "GRAPH", jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy}); err != nil {
		t.Fatal(err) // ephemeral: not listed
	}

	var snap status.Snapshot
	src := status.JetStream{JS: js, Streams: []string{"GRAPH", "MISSING"}, Quarantine: []string{"GRAPH_REJECTED"}}
	if err := src.Fill(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Streams) != 2 || snap.Streams[0].Name != "GRAPH" || snap.Streams[0].Messages != 5 {
		t.Fatalf("streams = %+v", snap.Streams)
	}
	if c := snap.Streams[0].Consumers; len(c) != 1 || c[0].Name != "billing" || c[0].Pending != 3 || c[0].AckPending != 2 {
		t.Fatalf("consumers = %+v", c)
	}
	if len(snap.Quarantine) != 2 {
		t.Fatalf("quarantine = %+v", snap.Quarantine)
	}
	if q := snap.Quarantine[0]; q.Reason != "clientState" || q.Messages != 3 || q.Latest.IsZero() {
		t.Fatalf("clientState quarantine = %+v", q)
	}
	if q := snap.Quarantine[1]; q.Reason != "token" || q.Messages != 1 {
		t.Fatalf("token quarantine = %+v", q)
	}
}
