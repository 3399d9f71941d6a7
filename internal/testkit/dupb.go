package testkit

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// Clock is a clock a test moves by hand, safe for concurrent use: its Now
// method is what a Config.Now field takes.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads start until it is moved.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ClientCert returns a self-signed RSA-2048 certificate for common name
// cn and its key, as "az ad app credential reset --create-cert" makes an
// app's client certificate: valid from an hour ago for a day, for
// digital signatures.
func ClientCert(tb testing.TB, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}
