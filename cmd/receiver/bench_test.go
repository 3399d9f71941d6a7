package main

import (
	"fmt"
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
