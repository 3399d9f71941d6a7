package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// Webhook is an http.Handler that stands for a receiver's notification
// endpoint: it counts the requests it serves, keeps every body that
// decodes as JSON into T and answers it 202 Accepted, and answers 400 to
// a body that does not decode. Its zero value is ready to serve.
type Webhook[T any] struct {
	mu      sync.Mutex
	bodies  []T
	posts   atomic.Int64
	respond func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool
}

// ServeHTTP counts r, offers it to the function given to SetRespond, and
// otherwise keeps its body.
func (h *Webhook[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.posts.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	respond := h.respond
	h.mu.Unlock()
	if respond != nil && respond(n, w, r, body) {
		return
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.bodies = append(h.bodies, v)
	h.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// SetRespond makes f see each later request first: n counts the requests
// from 1, and f returns true when it has answered the request itself. A
// nil f restores the default answers.
func (h *Webhook[T]) SetRespond(f func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.respond = f
}

// Bodies returns a copy of the bodies kept so far, in arrival order.
func (h *Webhook[T]) Bodies() []T {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]T(nil), h.bodies...)
}

// Posts returns how many requests h has served, kept or not.
func (h *Webhook[T]) Posts() int64 { return h.posts.Load() }

// Serve runs serve, a command's run function that serves until its ctx
// ends and sends its listening address on ready, on a goroutine, and
// returns that address. It fails the test at once if serve returns
// before it is ready. When the test ends, Serve cancels ctx and fails
// the test unless serve then returns nil within 10 s: the command must
// shut down cleanly.
func Serve(tb testing.TB, serve func(ctx context.Context, ready chan<- string) error) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		tb.Fatalf("run returned before serving: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Error("server did not shut down within 10 s of cancel")
		}
	})
	return addr
}
