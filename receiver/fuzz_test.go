package receiver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

// FuzzParseNotifications feeds arbitrary bodies to the parser and to the
// whole Receive path: they must never panic, a parse error must be
// ErrMalformed, and every item must come out exactly once, accepted or
// rejected.
func FuzzParseNotifications(f *testing.F) {
	testkit.AddSeeds(f, "testdata/*.json")
	for _, s := range []string{`{"value":null}`, `{"value":[null]}`, `{"value":[{}],"validationTokens":null}`, `[]`, `{"value":[{"subscriptionId":"NA","changeType":"Validation: x"}]}`} {
		f.Add([]byte(s))
	}
	// A key of our own, so that the decrypt path (admission, fan-out,
	// cap) runs on mutations of a genuine rich item.
	key := testkit.DecryptKey(f, "fuzz-cert")
	ring := testkit.KeyRing(f, key)
	ec, err := graphsim.Encrypt(key.Certificate, key.ID, []byte(`{"id":"m1","subject":"hello"}`))
	if err != nil {
		f.Fatal(err)
	}
	rich, _ := json.Marshal(map[string]any{"value": []map[string]any{
		{"subscriptionId": "s", "changeType": "created", "clientState": "secretClientValue", "tenantId": "t", "encryptedContent": ec},
		{"subscriptionId": "s", "changeType": "updated", "clientState": "secretClientValue", "tenantId": "t"},
	}, "validationTokens": []string{"x.y.z"}})
	f.Add(rich)
	var delivered int
	r, err := receiver.New(receiver.Config{
		ClientStates:                []string{"secretClientValue"},
		Keys:                        ring,
		InsecureSkipTokenValidation: true,
		Sink: receiver.SinkFunc(func(ctx context.Context, b *receiver.Batch) error {
			delivered = len(b.Notifications) + len(b.Rejected)
			return nil
		}),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := receiver.Parse(body)
		if err != nil {
			if !errors.Is(err, receiver.ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
			return
		}
		// What we parsed marshals and parses again to the same items.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := receiver.Parse(out)
		if err != nil {
			t.Fatalf("re-Parse of %s: %v", out, err)
		}
		if len(c2.Value) != len(c.Value) {
			t.Fatalf("re-Parse: %d items, want %d", len(c2.Value), len(c.Value))
		}
		for i := range c.Value {
			if (c.Value[i].Validate() == nil) && c2.Value[i].Validate() != nil {
				t.Fatalf("item %d valid before a round trip, invalid after: %s", i, out)
			}
		}
		delivered = 0
		b, err := r.Receive(context.Background(), body, url.Values{})
		if errors.Is(err, receiver.ErrMalformed) || errors.Is(err, receiver.ErrTooManyItems) {
			return // batch limits (token count and size, items)
		}
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		ignored := 0 // Event Hubs' validation placeholder items
		for _, n := range c.Value {
			if n.Validate() == nil && n.SubscriptionID == "NA" && strings.HasPrefix(n.ChangeType, "Validation:") {
				ignored++
			}
		}
		got := len(b.Notifications) + len(b.Rejected)
		if got+ignored != len(c.Value) {
			t.Fatalf("items in %d, out %d accepted/rejected + %d ignored", len(c.Value), got, ignored)
		}
		if got > 0 && delivered != got {
			t.Fatalf("the sink saw %d items, want %d", delivered, got)
		}
		seen := map[*receiver.Notification]bool{}
		for _, n := range b.Notifications {
			seen[n] = true
			if n.IsRich() && n.Content == nil {
				t.Fatalf("a rich item was accepted without its content")
			}
		}
		for _, rj := range b.Rejected {
			if rj.Notification.Content != nil {
				t.Fatalf("a rejected item carries decrypted content")
			}
			if seen[rj.Notification] {
				t.Fatalf("an item is both accepted and rejected")
			}
			seen[rj.Notification] = true
		}
		if len(seen) != got {
			t.Fatalf("an item was delivered twice")
		}
	})
}
