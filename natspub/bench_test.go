package natspub_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

const batchSize = 100

// newBatch returns batchSize distinct basic notifications; run makes the ids
// unique across iterations so that nothing is deduplicated.
func newBatch(run string, iter int) *receiver.Batch {
	b := &receiver.Batch{ReceivedAt: time.Now(), Notifications: make([]*receiver.Notification, batchSize)}
	for i := range b.Notifications {
		b.Notifications[i] = &receiver.Notification{
			ID:             run + "-" + strconv.Itoa(iter) + "-" + strconv.Itoa(i),
			SubscriptionID: subID,
			TenantID:       tenant,
			ChangeType:     "updated",
			Resource:       "users/u1/messages/m" + strconv.Itoa(i),
			ResourceData:   json.RawMessage(`{"@odata.type":"#Microsoft.Graph.Message","@odata.etag":"W/\"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf\"","id":"m"}`),
		}
	}
	return b
}

// BenchmarkPublish100 publishes a 100-notification batch and waits for
// every PubAck: "deliver" is Publisher.Deliver (async publish, then wait
// for all acks), "sync" the baseline of 100 sequential js.PublishMsg calls,
// each waiting for its ack. Both encode the same events and store them in
// the same file-backed stream.
func BenchmarkPublish100(b *testing.B) {
	nc := startNATS(b)
	pub := newPublisher(b, nc, natspub.Config{PublishTimeout: 10 * time.Second})
	js := newJS(b, nc)
	b.Run("deliver", func(b *testing.B) {
		iter := 0
		for b.Loop() {
			if err := pub.Deliver(b.Context(), newBatch("deliver"+strconv.Itoa(b.N), iter)); err != nil {
				b.Fatal(err)
			}
			iter++
		}
		b.ReportMetric(float64(iter*batchSize)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("sync", func(b *testing.B) {
		iter := 0
		for b.Loop() {
			msgs, err := pub.Messages(newBatch("sync"+strconv.Itoa(b.N), iter))
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range msgs {
				if _, err := js.PublishMsg(b.Context(), m); err != nil {
					b.Fatal(err)
				}
			}
			iter++
		}
		b.ReportMetric(float64(iter*batchSize)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkMessages encodes the event of a typical basic notification.
func BenchmarkMessages(b *testing.B) {
	pub := encoder(b)
	c, err := receiver.Parse(body(b, nil, basicItem("", "updated", "users/u1/messages/m1", `W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"`)))
	if err != nil {
		b.Fatal(err)
	}
	batch := &receiver.Batch{Notifications: c.Value}
	for b.Loop() {
		if _, err := pub.Messages(batch); err != nil {
			b.Fatal(err)
		}
	}
}
