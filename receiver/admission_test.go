package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
)

// TestBusyCPUAnswers503Quickly checks admission control: while other
// batches hold every decryption slot, a rich batch waits at most
// MaxDecryptWait and is then answered 503 (Graph retries) rather than
// drifting past Graph's 3 s limit; once the slots free up it is taken.
func TestBusyCPUAnswers503Quickly(t *testing.T) {
	key, err := decrypt.GenerateKey(2048, "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key.ID = "k"
	ring, _ := decrypt.NewKeyRing(key)
	delivered := 0
	r, err := New(Config{
		ClientStates: []string{"cs"}, Keys: ring, InsecureSkipTokenValidation: true,
		MaxDecryptWait: 50 * time.Millisecond,
		Sink: SinkFunc(func(ctx context.Context, b *Batch) error {
			delivered += len(b.Notifications)
			return nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	for i := range 4 {
		ec, err := decrypt.Encrypt(key.Certificate, "k", []byte(`{"i":1}`))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, map[string]any{"subscriptionId": "s", "clientState": "cs", "changeType": "created", "tenantId": "t", "resource": "r", "encryptedContent": ec, "id": string(rune('a' + i))})
	}
	body, _ := json.Marshal(map[string]any{"value": items, "validationTokens": []string{"x"}})

	// Other batches hold every core.
	if err := r.work.cpu.Acquire(t.Context(), r.work.slots); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Receive(t.Context(), body, url.Values{})
	if statusOf(err) != http.StatusServiceUnavailable || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("busy: err = %v (status %d), want 503 ErrUnavailable", err, statusOf(err))
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("busy: answered after %v, want about MaxDecryptWait", waited)
	}
	if delivered != 0 {
		t.Errorf("busy: %d delivered, want 0", delivered)
	}

	r.work.cpu.Release(r.work.slots)
	if _, err := r.Receive(t.Context(), body, url.Values{}); err != nil {
		t.Fatalf("free: %v", err)
	}
	if delivered != 4 {
		t.Errorf("free: %d delivered, want 4", delivered)
	}
}
