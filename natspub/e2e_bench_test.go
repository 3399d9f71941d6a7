package natspub_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
)

// idDigits is the width of the counter stamped into every id of a
// benchmark body, so that no iteration's events are deduplicated.
const idDigits = 12

// stampedBody is a notification body whose ids end in a fixed-width
// counter that stamp overwrites in place, without allocating.
type stampedBody struct {
	b    []byte
	offs []int // where each id's counter starts
}

func newStampedBody(tb testing.TB, run string, n int) *stampedBody {
	tb.Helper()
	items := make([]item, n)
	placeholder := bytes.Repeat([]byte("0"), idDigits)
	for i := range items {
		items[i] = basicItem(fmt.Sprintf("%s-%d-%s", run, i, placeholder), "updated", "users/u1/messages/m"+strconv.Itoa(i), `W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"`)
	}
	s := &stampedBody{b: body(tb, nil, items...)}
	for i := range n {
		key := []byte(fmt.Sprintf(`"%s-%d-%s"`, run, i, placeholder))
		at := bytes.Index(s.b, key)
		if at < 0 {
			tb.Fatalf("id %d not found in the body", i)
		}
		s.offs = append(s.offs, at+len(key)-1-idDigits)
	}
	return s
}

// stamp writes iter into every id's counter.
func (s *stampedBody) stamp(iter int) {
	for _, off := range s.offs {
		v := iter
		for j := off + idDigits - 1; j >= off; j-- {
			s.b[j] = byte('0' + v%10)
			v /= 10
		}
	}
}

// BenchmarkHandlerPubAck is the daemon's basic path without the network:
// Receiver.ServeHTTP over a Publisher on an in-process, file-backed
// JetStream, from the request to the 202 that follows the last PubAck, for
// batches of 1 and 100 notifications with ids new in every iteration;
// "inprocess/basic/N" is the same over a connection made with
// nats.InProcessServer instead of TCP on loopback.
// "unmarshal/N" is the floor a bare server pays for the same body
// (encoding/json into a typed struct, nothing else), in the same run:
// compare their ns/notification and allocs/notification.
func BenchmarkHandlerPubAck(b *testing.B) {
	ns, nc := natstest.Start(b)
	// The same server through nats.InProcessServer: no TCP between the
	// publisher and an embedded server, as a daemon embedding its server
	// can connect.
	inproc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(inproc.Close)
	pub := newPublisher(b, nc, natspub.Config{PublishTimeout: 10 * time.Second})
	inprocPub := newPublisher(b, inproc, natspub.Config{PublishTimeout: 10 * time.Second})
	for _, size := range []int{1, 100} {
		iter := 0 // across the runs of b.Run and the connections, so no id repeats
		benchBasic := func(b *testing.B, pub *natspub.Publisher) {
			rcv, err := receiver.New(receiver.Config{Sink: pub, ClientStates: []string{secret}})
			if err != nil {
				b.Fatal(err)
			}
			body := newStampedBody(b, "basic"+strconv.Itoa(size), size)
			rd := bytes.NewReader(body.b)
			req := httptest.NewRequest(http.MethodPost, "/notifications?tenant=contoso", rd)
			req.Header.Set("Content-Type", "application/json")
			w := &testkit.DiscardWriter{}
			before := pub.Stats().Stored
			b.ReportAllocs()
			start, cpuStart := mallocs(), cpuTime(b)
			first := iter
			for b.Loop() {
				body.stamp(iter)
				rd.Reset(body.b)
				req.Body = io.NopCloser(rd)
				w.Reset()
				rcv.ServeHTTP(w, req)
				if w.Status != http.StatusAccepted {
					b.Fatalf("status %d, want 202", w.Status)
				}
				iter++
			}
			reportPerNotification(b, size, start, cpuStart)
			if got, want := pub.Stats().Stored-before, uint64((iter-first)*size); got != want {
				b.Fatalf("stream stored %d new events, want %d", got, want)
			}
		}
		b.Run(fmt.Sprintf("basic/%d", size), func(b *testing.B) { benchBasic(b, pub) })
		b.Run(fmt.Sprintf("inprocess/basic/%d", size), func(b *testing.B) { benchBasic(b, inprocPub) })
		b.Run(fmt.Sprintf("unmarshal/%d", size), func(b *testing.B) {
			body := newStampedBody(b, "unmarshal"+strconv.Itoa(size), size)
			b.ReportAllocs()
			start, cpuStart := mallocs(), cpuTime(b)
			for b.Loop() {
				var p testkit.PlainCollection
				if err := json.Unmarshal(body.b, &p); err != nil || len(p.Value) != size {
					b.Fatalf("Unmarshal: %v (%d items)", err, len(p.Value))
				}
			}
			reportPerNotification(b, size, start, cpuStart)
		})
	}
}

// cpuTime returns the CPU time the process (client, receiver and the
// in-process server alike) has used so far, user and system. On a shared
// machine it is steadier than the wall clock.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mallocs returns the heap allocations of the process so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// reportPerNotification reports ns, CPU-ns and allocations per
// notification, the CPU time and allocations being those since cpuStart
// and start (taken before the loop), background goroutines' (the
// client's and the server's) included.
func reportPerNotification(b *testing.B, size int, start uint64, cpuStart time.Duration) {
	b.Helper()
	b.ReportMetric(float64(cpuTime(b)-cpuStart)/float64(b.N*size), "cpu-ns/notification")
	allocs := mallocs() - start
	n := float64(b.N * size)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/notification")
	b.ReportMetric(float64(allocs)/n, "allocs/notification")
}
