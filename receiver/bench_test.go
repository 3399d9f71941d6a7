package receiver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/graphhook/graphhook/receiver"
)

// BenchmarkReceiveBatch measures the core path for a 100-notification basic
// batch: parse, clientState checks, delivery to a no-op Sink.
func BenchmarkReceiveBatch(b *testing.B) {
	var items []map[string]any
	for i := range 100 {
		items = append(items, item(i, secret, "created"))
	}
	body := collection(b, items...)
	r, err := receiver.New(receiver.Config{
		ClientStates: []string{secret},
		Sink:         receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil }),
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

// BenchmarkParse is the parser alone, the floor of BenchmarkReceiveBatch.
func BenchmarkParse(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			var items []map[string]any
			for i := range size {
				items = append(items, item(i, secret, "created"))
			}
			body := collection(b, items...)
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
	var items []map[string]any
	for i := range 100 {
		items = append(items, item(i, secret, "created"))
	}
	body := collection(b, items...)
	type plain struct {
		Value []struct {
			ID                             string          `json:"id"`
			SubscriptionID                 string          `json:"subscriptionId"`
			SubscriptionExpirationDateTime string          `json:"subscriptionExpirationDateTime"`
			ClientState                    string          `json:"clientState"`
			ChangeType                     string          `json:"changeType"`
			Resource                       string          `json:"resource"`
			TenantID                       string          `json:"tenantId"`
			ResourceData                   json.RawMessage `json:"resourceData"`
		} `json:"value"`
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var p plain
		if err := json.Unmarshal(body, &p); err != nil || len(p.Value) != 100 {
			b.Fatal(err)
		}
	}
}
