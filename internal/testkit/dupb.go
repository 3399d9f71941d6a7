package testkit

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

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

// VerifyJWS verifies the compact JWS tok against set, requiring a kid
// that names one of its keys, and returns its JSON claims. It fails the
// test when tok does not verify.
func VerifyJWS(tb testing.TB, set jwk.Set, tok string) map[string]any {
	tb.Helper()
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		tb.Fatalf("token does not verify against the key set: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}
