package main

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkBatchToPubAck measures one notification POST of 10 items through
// the whole daemon: HTTP, clientState check, publish to the embedded
// JetStream and every PubAck, then the 202.
func BenchmarkBatchToPubAck(b *testing.B) {
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(b, baseArgs(b.TempDir(), "--client-state", clientState, "--log-level", "error"), nil)
	client := &http.Client{}
	url := p.base + "/notifications"
	i := 0
	for b.Loop() {
		ids := make([]string, 10)
		for j := range ids {
			ids[j] = fmt.Sprintf("bench-%d-%d", i, j)
		}
		i++
		body := batchBody(b, clientState, ids...)
		if status, err := post(b.Context(), client, url, body); err != nil || status != http.StatusAccepted {
			b.Fatalf("%d %v", status, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10), "ns/notification")
}

// BenchmarkHandshake measures Graph's validation handshake (a POST with
// ?validationToken=, echoed as text/plain) through the whole daemon at
// --log-level error, the load harness's setting: Echo, the edge
// middleware, metrics and the receiver. The client shares the process,
// so allocs/op include its own (a constant between builds).
func BenchmarkHandshake(b *testing.B) {
	p := startInProcess(b, baseArgs(b.TempDir(), "--client-state", "a-long-enough-client-state-value", "--log-level", "error"), nil)
	client := &http.Client{}
	url := p.base + "/notifications?validationToken=bench-token"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(url, "text/plain", nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
