package testkit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
)

// Do sends a request with body to u over the default client, with the
// Content-Type header set unless contentType is empty, and returns the
// response with its body read and closed. It fails the test when the
// request cannot be sent.
func Do(tb testing.TB, method, u, contentType string, body []byte) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, u, err)
	}
	return resp, b
}

// DiscardWriter is an http.ResponseWriter that keeps nothing but the
// status and the headers, so that a benchmark measures the handler rather
// than a recorder. The zero value is ready.
type DiscardWriter struct {
	// Status is the status last written with WriteHeader.
	Status int
	h      http.Header
}

// Header returns the headers set so far.
func (w *DiscardWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

// Write discards p.
func (w *DiscardWriter) Write(p []byte) (int, error) { return len(p), nil }

// WriteString discards s. net/http's writer has it too, so io.WriteString
// does not copy.
func (w *DiscardWriter) WriteString(s string) (int, error) { return len(s), nil }

// WriteHeader keeps status.
func (w *DiscardWriter) WriteHeader(status int) { w.Status = status }

// Reset forgets the headers and the status, for the next request.
func (w *DiscardWriter) Reset() {
	clear(w.h)
	w.Status = 0
}

// PlainCollection is what a hand-written receiver decodes at the least: a
// notification collection read by encoding/json into a typed struct, no
// unknown field kept. Benchmarks decode into it as their baseline.
type PlainCollection struct {
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

// Recorder keeps, in order, the values a test's callback (a Sink, a
// handler) is handed. It is safe for concurrent use; the zero value is
// ready and keeps every value.
type Recorder[T any] struct {
	mu   sync.Mutex
	vals []T
	err  error
}

// Fail makes Record keep nothing and return err from now on (a failing
// callback); Fail(nil) makes it keep values again.
func (r *Recorder[T]) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Record keeps v, or returns the error given to Fail.
func (r *Recorder[T]) Record(v T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.vals = append(r.vals, v)
	return nil
}

// All returns a copy of the values kept so far, oldest first.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.vals)
}

// DecryptKey returns a new RSA-2048 key with a self-signed certificate
// valid for an hour, named id (its encryptionCertificateId): the key a
// test's subscription would be created with.
func DecryptKey(tb testing.TB, id string) decrypt.Key {
	tb.Helper()
	k, err := decrypt.GenerateKey(2048, id, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	k.ID = id
	return k
}

// KeyRing returns a decrypt.KeyRing holding keys.
func KeyRing(tb testing.TB, keys ...decrypt.Key) *decrypt.KeyRing {
	tb.Helper()
	ring, err := decrypt.NewKeyRing(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

// AddSeeds adds the contents of every file matching pattern (a
// filepath.Glob pattern such as "testdata/*.json") to f's seed corpus.
func AddSeeds(f *testing.F, pattern string) {
	f.Helper()
	names, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
