package natspub_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/natspub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkJetStreamFloor is what storing graphhook's events costs with
// nothing of graphhook in the loop: the messages of a batch of N basic
// notifications, encoded once, published asynchronously to the same kind
// of file-backed stream on an in-process connection (as the daemon
// publishes to its embedded server), every PubAck awaited, with a new
// Nats-Msg-Id for each message of each iteration. Compare its
// cpu-ns/notification with BenchmarkHandlerPubAck/inprocess/basic/N run in
// the same process: the difference is graphhook (parsing, checks,
// encoding, the ack bookkeeping).
func BenchmarkJetStreamFloor(b *testing.B) {
	ns, _ := natstest.Start(b)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	pub := newPublisher(b, nc, natspub.Config{PublishTimeout: 10 * time.Second})
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("inprocess/%d", size), func(b *testing.B) {
			msgs, err := pub.Messages(newBatch("floor"+strconv.Itoa(size), 0))
			if err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:size]
			ids := make([]string, size)
			iter := 0
			b.ReportAllocs()
			start, cpuStart := mallocs(), cpuTime(b)
			for b.Loop() {
				for i := range ids { // outside the store's work, but inside the loop: no dedup
					ids[i] = fmt.Sprintf("floor-%d-%d-%d", size, iter, i)
				}
				futures := make([]jetstream.PubAckFuture, size)
				for i, m := range msgs {
					m.Header[nats.MsgIdHdr] = ids[i : i+1 : i+1]
					if futures[i], err = js.PublishMsgAsync(m, jetstream.WithExpectStream(natspub.DefaultStream)); err != nil {
						b.Fatal(err)
					}
				}
				for _, f := range futures {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						b.Fatal(err)
					}
				}
				iter++
			}
			reportPerNotification(b, size, start, cpuStart)
		})
	}
}
