package natspub_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkDuplicateWindowMemory measures what a stream's duplicate window
// costs the NATS server per message: heap still in use, after a GC, per
// message published with a Nats-Msg-Id of 73 characters (the length of a
// "<subscriptionId>:<id>" ce-id with Graph's GUIDs), of 22 (the form
// graphhook sends) and without one (the baseline: the store alone), each
// on its own stream with the default 1 h window, in the same process.
// Run it with a fixed count, e.g. -benchtime 200000x: its B/msg metric is
// the heap growth divided by the messages, which the window keeps.
func BenchmarkDuplicateWindowMemory(b *testing.B) {
	_, nc := natstest.Start(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
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
