package subscriptions

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
)

// On a cluster, the bucket and event stream are created with Replicas, and
// an operator's existing bucket and stream are used as they are: a manager
// never sets an R3 bucket back to R1 (issue 15's bug, for the manager's
// state).
func TestBucketAndStreamKeepTheirReplicas(t *testing.T) {
	cl := natstest.StartCluster(t, 3)
	nc := natstest.Connect(t, cl.URLs())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	g := startGraph(t, graphsim.Config{SweepInterval: -1})
	ctx := t.Context()

	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ops-bucket", History: 10, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPS_EVENTS", Subjects: []string{"graph.subscriptions.>"}, Replicas: 3, MaxMsgs: 1000}); err != nil {
		t.Fatal(err)
	}
	m, err := New(ctx, Config{Client: g.client, JetStream: js, Bucket: "ops-bucket", EventStream: "OPS_EVENTS", GraphStream: "-", Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	kv, err := js.KeyValue(ctx, "ops-bucket")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info := st.(*jetstream.KeyValueBucketStatus).StreamInfo(); info.Config.Replicas != 3 || st.History() != 10 {
		t.Fatalf("operator's bucket changed: replicas %d, history %d", info.Config.Replicas, st.History())
	}
	s, err := js.Stream(ctx, "OPS_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.Replicas != 3 || c.MaxMsgs != 1000 || len(c.Subjects) != 2 {
		t.Fatalf("operator's event stream = replicas %d, max_msgs %d, subjects %v; want 3, 1000 and the gaps subject added", c.Replicas, c.MaxMsgs, c.Subjects)
	}

	m, err = New(ctx, Config{Client: g.client, JetStream: js, Bucket: "new-bucket", EventStream: "NEW_EVENTS", SubjectPrefix: "other", GraphStream: "-", Interval: -1, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	for _, name := range []string{"KV_new-bucket", "NEW_EVENTS"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s created with %d replicas, want 3", name, r)
		}
	}
}
