package receiver_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

// TestForgedBodyCannotAmplifyTheLog: a forged body of 4 MB whose ids are
// invalid UTF-8 or control characters (each byte of which a log handler
// would escape into 4 to 6) leaves a log line of bounded size, at Info
// and, per request, at Debug.
func TestForgedBodyCannotAmplifyTheLog(t *testing.T) {
	// n bytes of the body: invalid UTF-8 and escaped control characters.
	huge := func(n int) string { return strings.Repeat("\xff\xfe"+`\u0001`, n/8) }
	oneItem := func() []byte {
		return []byte(`{"value":[{"subscriptionId":"` + huge(1<<20) + `","tenantId":"` + huge(1<<20) +
			`","changeType":"` + huge(1<<20) + `","clientState":"forged"}]}`)
	}
	manyItems := func() []byte {
		var b strings.Builder
		b.WriteString(`{"value":[`)
		for i := range 6000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"subscriptionId":"%s","tenantId":"%s","changeType":"%s","clientState":"forged"}`,
				strings.Repeat(`\u0001`, 40), huge(120), huge(120))
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	malformed := func() []byte {
		return []byte(`{"value":[{"subscriptionId":"` + huge(3<<20) + `","changeType":7}]}`)
	}
	tests := []struct {
		name    string
		body    func() []byte
		json    bool
		level   slog.Level
		maxLog  int
		wantLog string
	}{
		{"one item text", oneItem, false, slog.LevelInfo, 4 << 10, "notifications rejected"},
		{"one item json", oneItem, true, slog.LevelInfo, 4 << 10, "notifications rejected"},
		{"many items json", manyItems, true, slog.LevelInfo, 4 << 10, "notifications rejected"},
		{"malformed text", malformed, false, slog.LevelInfo, 4 << 10, "notifications rejected"},
		{"many items debug", manyItems, true, slog.LevelDebug, 16 << 10, "notification rejected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body()
			if len(body) < 3<<20 || len(body) > receiver.DefaultMaxBodyBytes {
				t.Fatalf("test body is %d bytes, want 3 MiB to 4 MiB", len(body))
			}
			var logs testkit.SyncBuffer
			opts := &slog.HandlerOptions{Level: tc.level}
			var h slog.Handler = slog.NewTextHandler(&logs, opts)
			if tc.json {
				h = slog.NewJSONHandler(&logs, opts)
			}
			sink := &recorder{}
			srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Logger: slog.New(h)})
			accept(t, srv.URL+"/notifications", body)
			if len(sink.rejected()) == 0 {
				t.Fatalf("nothing was rejected")
			}
			got := logs.String()
			if len(got) > tc.maxLog {
				t.Errorf("a %d-byte forged body wrote %d bytes of log, want at most %d:\n%.2000s", len(body), len(got), tc.maxLog, got)
			}
			if !strings.Contains(got, tc.wantLog) {
				t.Errorf("the rejection was not logged:\n%s", got)
			}
			if strings.Contains(got, `\xff`) || strings.Contains(got, `\ufffd`) || strings.Contains(got, `\u0001`) {
				t.Errorf("the log carries escaped hostile bytes:\n%.2000s", got)
			}
		})
	}
}

// garbageRich returns n rich items for key whose dataKey is garbage that
// still costs an RSA private-key operation (it is below the modulus).
func garbageRich(t testing.TB, key decrypt.Key, n int) []map[string]any {
	t.Helper()
	ec, err := graphsim.Encrypt(key.Certificate, key.ID, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]map[string]any, n)
	for i := range items {
		dk := make([]byte, 256)
		_, _ = rand.Read(dk[1:])
		c := *ec
		c.DataKey = base64.StdEncoding.EncodeToString(dk)
		it := item(i, secret, "created")
		it["encryptedContent"] = &c
		items[i] = it
	}
	return items
}

// TestGarbageDataKeysStopAtTheCap: one request cannot cost more than
// MaxDecryptsPerRequest RSA operations; the rich items beyond the cap are
// quarantined without being tried.
func TestGarbageDataKeysStopAtTheCap(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	ring := testkit.KeyRing(t, key)
	sink := &recorder{}
	r, err := receiver.New(receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, InsecureSkipTokenValidation: true,
		Timeout: time.Minute, MaxDecryptWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const extra = 50
	body := collectionWithToken(t, "x", garbageRich(t, key, receiver.MaxDecryptsPerRequest+extra)...)
	b, err := r.Receive(t.Context(), body, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Rejected) != receiver.MaxDecryptsPerRequest+extra {
		t.Fatalf("rejected %d, want %d", len(b.Rejected), receiver.MaxDecryptsPerRequest+extra)
	}
	tried := 0
	for i, rj := range b.Rejected {
		if rj.Reason != receiver.ReasonDecrypt {
			t.Fatalf("item %d: reason %q", i, rj.Reason)
		}
		if !errors.Is(rj.Err, receiver.ErrTooManyItems) {
			tried++
			if i >= receiver.MaxDecryptsPerRequest {
				t.Fatalf("item %d past the cap was tried: %v", i, rj.Err)
			}
		}
	}
	if tried != receiver.MaxDecryptsPerRequest {
		t.Errorf("%d items tried, want the cap, %d", tried, receiver.MaxDecryptsPerRequest)
	}
}

// TestGarbageDataKeysStopAtTheDeadline: decryption stops between items
// once the batch's time is up; the batch is answered 503 and nothing is
// delivered.
func TestGarbageDataKeysStopAtTheDeadline(t *testing.T) {
	key := testkit.DecryptKey(t, "k")
	ring := testkit.KeyRing(t, key)
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, InsecureSkipTokenValidation: true,
		Timeout: 100 * time.Millisecond})
	// 1,000 RSA-2048 operations take at least 0.35 s on two cores.
	body := collectionWithToken(t, "x", garbageRich(t, key, receiver.MaxDecryptsPerRequest)...)
	start := time.Now()
	resp, _ := post(t, srv.URL+"/notifications", "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status = %d, want 503 with Retry-After", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v", d)
	}
	if len(sink.All()) != 0 {
		t.Errorf("a batch was delivered")
	}
	if r.Stats().Unavailable != 1 {
		t.Errorf("Stats.Unavailable = %d, want 1", r.Stats().Unavailable)
	}
}
