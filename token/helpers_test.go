package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/token"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	appID    = "11111111-2222-3333-4444-555555555555"
	tenantA  = "aaaaaaaa-0000-0000-0000-000000000001"
	tenantB  = "bbbbbbbb-0000-0000-0000-000000000002"
	otherApp = "99999999-9999-9999-9999-999999999999"
)

// signer is an RSA key pair generated in the test, with its kid.
type signer struct {
	kid  string
	priv *rsa.PrivateKey
	key  jwk.Key // private JWK with kid, for jwt.Sign
}

func newSigner(tb testing.TB, kid string) *signer {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := jwk.Import(priv)
	if err != nil {
		tb.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		tb.Fatal(err)
	}
	return &signer{kid: kid, priv: priv, key: k}
}

// public returns the public JWK as Microsoft publishes it: kty, use, kid,
// n, e, and no alg.
func (s *signer) public(tb testing.TB) jwk.Key {
	tb.Helper()
	pub, err := jwk.Import(&s.priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: s.kid, jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	return pub
}

// mint signs claims with RS256 and the signer's kid.
func (s *signer) mint(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return signWith(tb, claims, jwt.WithKey(jwa.RS256(), s.key))
}

func buildToken(tb testing.TB, claims map[string]any) jwt.Token {
	tb.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			tb.Fatalf("set %s: %v", k, err)
		}
	}
	return tok
}

func signWith(tb testing.TB, claims map[string]any, opt jwt.SignOption) string {
	tb.Helper()
	b, err := jwt.Sign(buildToken(tb, claims), opt)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// v1Claims are the claims of a v1.0 validation token (protocol doc §6).
func v1Claims(tid string, now time.Time) map[string]any {
	return map[string]any{
		"aud":      appID,
		"iss":      "https://sts.windows.net/" + tid + "/",
		"iat":      now.Add(-time.Minute),
		"nbf":      now.Add(-time.Minute),
		"exp":      now.Add(8 * time.Hour),
		"aio":      "E2ZgYDj",
		"appid":    token.GraphChangeTrackingAppID,
		"appidacr": "2",
		"idp":      "https://sts.windows.net/" + tid + "/",
		"tid":      tid,
		"uti":      "uti-v1",
		"ver":      "1.0",
	}
}

// v2Claims are the claims of a v2.0 validation token (protocol doc §6).
func v2Claims(tid string, now time.Time) map[string]any {
	return map[string]any{
		"aud":    appID,
		"iss":    "https://login.microsoftonline.com/" + tid + "/v2.0",
		"iat":    now.Add(-time.Minute),
		"nbf":    now.Add(-time.Minute),
		"exp":    now.Add(24 * time.Hour),
		"aio":    "E2ZgYDj",
		"azp":    token.GraphChangeTrackingAppID,
		"azpacr": "2",
		"oid":    "0bf30f3b-0000-0000-0000-oid",
		"rh":     "0.AAAA.",
		"sub":    "0bf30f3b-0000-0000-0000-sub",
		"tid":    tid,
		"uti":    "uti-v2",
		"ver":    "2.0",
	}
}

// with returns a copy of m with the given changes; a nil value deletes.
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

// jwksServer is a real JWKS endpoint on 127.0.0.1 that counts fetches.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	down atomic.Bool // answer 503 while true
	hits atomic.Int64
}

func newJWKSServer(tb testing.TB, keys ...*signer) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.setKeys(tb, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

// waitFetches waits up to timeout until the key set has been fetched at
// least n times.
func (s *jwksServer) waitFetches(tb testing.TB, timeout time.Duration, n int64) {
	tb.Helper()
	testkit.CheckFor(tb, timeout, func() error {
		if got := s.hits.Load(); got < n {
			return fmt.Errorf("%d fetches of the key set, want %d", got, n)
		}
		return nil
	})
}

func (s *jwksServer) setKeys(tb testing.TB, keys ...*signer) {
	tb.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.public(tb)); err != nil {
			tb.Fatal(err)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func (s *jwksServer) keysURL() string { return s.URL + "/common/discovery/v2.0/keys" }

// clock is a settable clock for Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// startValidator creates a Validator for srv with cfg (JWKSURL, AppIDs and
// Now filled in when empty), closes it at cleanup, and waits for its keys.
func startValidator(tb testing.TB, ctx context.Context, srv *jwksServer, cfg token.Config) *token.Validator {
	tb.Helper()
	v := newValidator(tb, ctx, srv, cfg)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := v.WaitReady(wctx); err != nil {
		tb.Fatalf("WaitReady: %v", err)
	}
	return v
}

// readyValidator returns a signer of kid "kid-1" and a Validator
// configured by cfg whose key endpoint publishes that signer's key, with
// its keys loaded.
func readyValidator(tb testing.TB, cfg token.Config) (*signer, *token.Validator) {
	tb.Helper()
	key := newSigner(tb, "kid-1")
	return key, startValidator(tb, tb.Context(), newJWKSServer(tb, key), cfg)
}

func newValidator(tb testing.TB, ctx context.Context, srv *jwksServer, cfg token.Config) *token.Validator {
	tb.Helper()
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = srv.keysURL()
	}
	if cfg.AppIDs == nil {
		cfg.AppIDs = []string{appID}
	}
	v, err := token.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = v.Close() })
	return v
}

// readiness is a testkit.CheckFor condition: v has loaded its keys.
func readiness(v *token.Validator) func() error {
	return func() error {
		if !v.Ready() {
			return errors.New("key set not loaded")
		}
		return nil
	}
}
