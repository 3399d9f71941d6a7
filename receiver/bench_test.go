package receiver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

// BenchmarkReceiveBatch measures the core path for a 100-notification basic
// batch: parse, clientState checks, delivery to a no-op Sink.
func BenchmarkReceiveBatch(b *testing.B) {
	benchReceiveBatch(b, nil)
}

// BenchmarkReceiveBatchTraced is BenchmarkReceiveBatch with every batch
// traced (sampled and recorded, not exported): the cost of tracing over
// BenchmarkReceiveBatch in the same run.
func BenchmarkReceiveBatchTraced(b *testing.B) {
	benchReceiveBatch(b, sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())))
}

// benchReceiveBatch measures Receive of a 100-notification basic batch,
// traced by tp unless it is nil.
func benchReceiveBatch(b *testing.B, tp trace.TracerProvider) {
	body := basicBatch(b, 100)
	r, err := receiver.New(receiver.Config{
		ClientStates:   []string{secret},
		Sink:           receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil }),
		TracerProvider: tp,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		bt, err := r.Receive(context.Background(), body, url.Values{})
		if err != nil || len(bt.Notifications) != 100 {
			b.Fatalf("Receive: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/notification")
}

// basicBatch is a body of n basic "created" notifications.
func basicBatch(tb testing.TB, n int) []byte {
	tb.Helper()
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = item(i, secret, "created")
	}
	return collection(tb, items...)
}

// BenchmarkParse is the parser alone, the floor of BenchmarkReceiveBatch.
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			body := basicBatch(b, size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := receiver.Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBaselineUnmarshal is what a hand-written receiver does at the
// least: encoding/json into a typed struct with no unknown-field keeping,
// no checks and no delivery. BenchmarkReceiveBatch is reported as a ratio
// to it.
func BenchmarkBaselineUnmarshal(b *testing.B) {
	body := basicBatch(b, 100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var p testkit.PlainCollection
		if err := json.Unmarshal(body, &p); err != nil || len(p.Value) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTP measures the receiver's whole HTTP path, from a
// request to its answer, without a network or a Sink: the validation
// handshake and basic batches of 1 and 100 notifications. It reports
// allocations per notification (per request for the handshake).
func BenchmarkServeHTTP(b *testing.B) {
	r, err := receiver.New(receiver.Config{
		ClientStates: []string{secret},
		Sink:         receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil }),
	})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, method, target, contentType string, body []byte, want, items int) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		rd := bytes.NewReader(body)
		req := httptest.NewRequest(method, target, rd)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := &testkit.DiscardWriter{}
		for b.Loop() {
			rd.Reset(body)
			req.Body = io.NopCloser(rd)
			w.Reset()
			r.ServeHTTP(w, req)
			if w.Status != want {
				b.Fatalf("status %d, want %d", w.Status, want)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(items), "ns/notification")
	}
	b.Run("handshake", func(b *testing.B) {
		run(b, http.MethodPost, "/notifications?validationToken=Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+336960d6", "text/plain; charset=utf-8", nil, http.StatusOK, 1)
	})
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("basic/%d", size), func(b *testing.B) {
			run(b, http.MethodPost, "/notifications?tenant=contoso", "application/json", basicBatch(b, size), http.StatusAccepted, size)
		})
	}
}

// BenchmarkReceiveRich measures a batch of 100 rich RSA-2048 items through
// Receive (parse, admission, decryption on every core, delivery to a no-op
// Sink) against BenchmarkRawRSA, the raw 2-core rate of the same private-key
// operation in the same run: report the ratio of their ns/notification.
// The bodies are generated before the timer starts and cycled; the key is
// removed and added again between iterations, untimed, so that the ring's
// cache of unwrapped keys never spares an RSA operation
// (BenchmarkReceiveRichRedelivered measures that).
func BenchmarkReceiveRich(b *testing.B) {
	benchReceiveRich(b, false)
}

// BenchmarkReceiveRichRedelivered is BenchmarkReceiveRich for a batch
// Graph delivers again: its keys come from the ring's cache, so it costs
// no RSA; compare their ns/notification in the same run.
func BenchmarkReceiveRichRedelivered(b *testing.B) {
	benchReceiveRich(b, true)
}

func benchReceiveRich(b *testing.B, redelivered bool) {
	key := testkit.DecryptKey(b, "cert-1")
	ring := testkit.KeyRing(b, key)
	bodies := make([][]byte, 8)
	for j := range bodies {
		items := make([]map[string]any, 100)
		for i := range items {
			items[i] = richItem(b, j*100+i, key, `{"id":"AAMkAGI2","subject":"hello","body":{"content":"Hello World"}}`)
		}
		bodies[j] = collectionWithToken(b, "x", items...)
	}
	r, err := receiver.New(receiver.Config{
		ClientStates: []string{secret}, Keys: ring, InsecureSkipTokenValidation: true,
		Sink: receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil }),
	})
	if err != nil {
		b.Fatal(err)
	}
	if redelivered {
		for _, body := range bodies {
			if _, err := r.Receive(context.Background(), body, url.Values{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	j := 0
	for b.Loop() {
		if !redelivered {
			b.StopTimer()
			ring.Remove(key.ID) // drops what the key unwrapped
			if err := ring.Add(key); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		bt, err := r.Receive(context.Background(), bodies[j%len(bodies)], url.Values{})
		if err != nil || len(bt.Notifications) != 100 {
			b.Fatalf("Receive: %v", err)
		}
		j++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/notification")
}

// BenchmarkRawRSA is the floor of BenchmarkReceiveRich: 100 RSA-OAEP
// (SHA-1) unwraps of a 32-byte key per iteration, spread over every core.
func BenchmarkRawRSA(b *testing.B) {
	key := testkit.DecryptKey(b, "cert-1")
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &key.Private.PublicKey, make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	workers := runtime.GOMAXPROCS(0)
	for b.Loop() {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < 100; i += workers {
					if _, err := rsa.DecryptOAEP(sha1.New(), nil, key.Private, ct, nil); err != nil {
						panic(err)
					}
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/notification")
}
