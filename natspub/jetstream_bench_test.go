package natspub_test

// Benchmarks of what JetStream itself costs graphhook's events: the floor
// of the publish path and the memory of the duplicate window.

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
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
// cpu-ns/notification with BenchmarkHandlerPubAck/inprocess/basic/N: the
// difference is graphhook (parsing, checks, encoding, the ack
// bookkeeping). Run each in a process of its own with the same fixed
// count, alternating, e.g.
//
//	go test -c -o natspub.test ./natspub
//	./natspub.test -test.run '^$' -test.bench 'JetStreamFloor/inprocess/100$' -test.benchtime 2000x
//	./natspub.test -test.run '^$' -test.bench 'HandlerPubAck/inprocess/basic/100$' -test.benchtime 2000x
//
// because the cost per message grows with the messages a stream's
// duplicate window already holds (the collector scans them), so two
// benchmarks sharing a server, or run for different counts, are not
// comparable.
func BenchmarkJetStreamFloor(b *testing.B) {
	nc, js := inProcessJetStream(b)
	pub := newPublisher(b, nc, natspub.Config{PublishTimeout: 10 * time.Second})
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

// BenchmarkDuplicateWindowMemory measures what a stream's duplicate window
// costs the NATS server per message: heap still in use, after a GC, per
// message published with a Nats-Msg-Id of 73 characters (the length of a
// "<subscriptionId>:<id>" ce-id with Graph's GUIDs), of 22 (the form
// graphhook sends) and without one (the baseline: the store alone), each
// on its own stream with the default 1 h window, in the same process.
// Run it with a fixed count, e.g. -benchtime 200000x: its B/msg metric is
// the heap growth divided by the messages, which the window keeps.
func BenchmarkDuplicateWindowMemory(b *testing.B) {
	_, js := inProcessJetStream(b)
	body := []byte(strings.Repeat("x", 600))
	for _, idLen := range []int{73, 22, 0} {
		b.Run(fmt.Sprintf("id=%d", idLen), func(b *testing.B) {
			name := fmt.Sprintf("DEDUP%d", idLen)
			if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Duplicates: time.Hour}); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = js.DeleteStream(b.Context(), name) }()
			before := heapInUse()
			i := 0
			for b.Loop() {
				m := nats.NewMsg(name + ".m")
				m.Data = body
				if idLen > 0 {
					m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%0*d", idLen, i))
				}
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
				if i++; i%1000 == 0 {
					<-js.PublishAsyncComplete()
				}
			}
			<-js.PublishAsyncComplete()
			b.StopTimer()
			b.ReportMetric(float64(heapInUse()-before)/float64(b.N), "B/msg")
		})
	}
}

// heapInUse returns the bytes of heap in use after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// inProcessJetStream starts a file-backed JetStream server and connects
// to it with nats.InProcessServer, as the daemon connects to its embedded
// server.
func inProcessJetStream(b *testing.B) (*nats.Conn, jetstream.JetStream) {
	ns, _ := natstest.Start(b)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return nc, js
}
