package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
// --log-level error, the load harness's setting (Echo, the edge
// middleware, metrics, the receiver), and through a bare net/http server
// that only echoes the token, as the harness's baseline does. Client and
// server share the process: the daemon's overhead is the difference
// between the two, in ns/op and allocs/op.
func BenchmarkHandshake(b *testing.B) {
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, r.URL.Query().Get("validationToken"))
	}))
	b.Cleanup(bare.Close)
	p := startInProcess(b, baseArgs(b.TempDir(), "--client-state", "a-long-enough-client-state-value", "--log-level", "error"), nil)
	for _, s := range []struct{ name, base string }{{"bare", bare.URL}, {"daemon", p.base}} {
		b.Run(s.name, func(b *testing.B) {
			client := &http.Client{}
			url := s.base + "/notifications?validationToken=bench-token"
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Post(url, "text/plain", nil)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "bench-token" {
					b.Fatalf("status %d, body %q", resp.StatusCode, body)
				}
			}
		})
	}
}
