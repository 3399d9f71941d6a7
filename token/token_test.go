package token_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/token"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

var t0 = time.Date(2026, 4, 17, 12, 0, 0, 0, time.UTC)

func TestValidate(t *testing.T) {
	key := newSigner(t, "kid-1")
	stranger := newSigner(t, "kid-1") // same kid, key not published
	srv := newJWKSServer(t, key)
	var logs testkit.SyncBuffer
	v := startValidator(t, t.Context(), srv, token.Config{
		TenantIDs: []string{tenantA, tenantB},
		Now:       func() time.Time { return t0 },
		Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// One refresh for the whole table: the unknown-kid case must not
		// turn into a fetch per case.
		MinRefreshInterval: time.Hour,
	})

	v1 := v1Claims(tenantA, t0)
	v2 := v2Claims(tenantA, t0)
	pubDER, err := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	kidHeader := func() jws.Headers {
		h := jws.NewHeaders()
		if err := h.Set(jws.KeyIDKey, key.kid); err != nil {
			t.Fatal(err)
		}
		return h
	}

	tests := []struct {
		name    string
		tokens  []string
		tenants []string
		wantErr error
	}{
		{"valid v1", []string{key.mint(t, v1)}, []string{tenantA}, nil},
		{"valid v2", []string{key.mint(t, v2)}, []string{tenantA}, nil},
		{"valid with no tenants to cover", []string{key.mint(t, v2)}, nil, nil},
		{"upper-case tenant ids match", []string{key.mint(t, v2)}, []string{strings.ToUpper(tenantA)}, nil},
		{"aud in a list", []string{key.mint(t, with(v2, "aud", []string{otherApp, appID}))}, []string{tenantA}, nil},
		{"two tokens cover two tenants", []string{key.mint(t, v1), key.mint(t, v2Claims(tenantB, t0))}, []string{tenantA, tenantB}, nil},
		{"no ver, appid ok", []string{key.mint(t, with(v1, "ver", nil))}, []string{tenantA}, nil},
		{"exp within skew", []string{key.mint(t, with(v2, "exp", t0.Add(-4*time.Minute)))}, []string{tenantA}, nil},
		{"nbf within skew", []string{key.mint(t, with(v2, "nbf", t0.Add(4*time.Minute), "iat", t0))}, []string{tenantA}, nil},

		{"nil tokens", nil, []string{tenantA}, token.ErrNoTokens},
		{"empty tokens", []string{}, []string{tenantA}, token.ErrNoTokens},
		{"empty string", []string{""}, nil, token.ErrMalformed},
		{"garbage", []string{"not a token"}, nil, token.ErrMalformed},
		{"three dots of junk", []string{"a.b.c"}, nil, token.ErrMalformed},
		{"one bad among good", []string{key.mint(t, v1), key.mint(t, with(v2, "aud", otherApp))}, []string{tenantA}, token.ErrAudience},
		{"wrong aud", []string{key.mint(t, with(v1, "aud", otherApp))}, []string{tenantA}, token.ErrAudience},
		{"no aud", []string{key.mint(t, with(v1, "aud", nil))}, []string{tenantA}, token.ErrAudience},
		{"issuer of another tenant", []string{key.mint(t, with(v1, "iss", "https://sts.windows.net/"+tenantB+"/"))}, []string{tenantA}, token.ErrIssuer},
		{"foreign issuer host", []string{key.mint(t, with(v2, "iss", "https://login.example.com/"+tenantA+"/v2.0"))}, []string{tenantA}, token.ErrIssuer},
		{"v2 issuer without suffix", []string{key.mint(t, with(v2, "iss", "https://login.microsoftonline.com/"+tenantA+"/"))}, []string{tenantA}, token.ErrIssuer},
		{"tenant not allowed", []string{key.mint(t, v2Claims("cccccccc-0000-0000-0000-000000000003", t0))}, nil, token.ErrIssuer},
		{"no tid", []string{key.mint(t, with(v2, "tid", nil))}, nil, token.ErrIssuer},
		{"tenant not covered", []string{key.mint(t, v2)}, []string{tenantA, tenantB}, token.ErrTenantNotCovered},
		{"wrong appid", []string{key.mint(t, with(v1, "appid", otherApp))}, []string{tenantA}, token.ErrPublisher},
		{"v1 with azp only", []string{key.mint(t, with(v1, "appid", nil, "azp", token.GraphChangeTrackingAppID))}, []string{tenantA}, token.ErrPublisher},
		{"wrong azp", []string{key.mint(t, with(v2, "azp", otherApp))}, []string{tenantA}, token.ErrPublisher},
		{"no ver, wrong azp", []string{key.mint(t, with(v2, "ver", nil, "azp", otherApp))}, []string{tenantA}, token.ErrPublisher},
		{"no ver, no appid or azp", []string{key.mint(t, with(v2, "ver", nil, "azp", nil))}, []string{tenantA}, token.ErrPublisher},
		{"expired", []string{key.mint(t, with(v1, "exp", t0.Add(-6*time.Minute)))}, []string{tenantA}, token.ErrExpired},
		{"not yet valid", []string{key.mint(t, with(v1, "nbf", t0.Add(6*time.Minute), "iat", t0))}, []string{tenantA}, token.ErrExpired},
		{"issued in the future", []string{key.mint(t, with(v1, "iat", t0.Add(time.Hour)))}, []string{tenantA}, token.ErrExpired},
		{"no exp", []string{key.mint(t, with(v1, "exp", nil))}, []string{tenantA}, token.ErrMalformed},
		{"alg none", []string{algNone(t, key.kid, v1)}, []string{tenantA}, token.ErrSignature},
		{"HS256 keyed with public key PEM", []string{signWith(t, v1, jwt.WithKey(jwa.HS256(), pubPEM, jws.WithProtectedHeaders(kidHeader())))}, []string{tenantA}, token.ErrSignature},
		{"HS256 keyed with public key DER", []string{signWith(t, v1, jwt.WithKey(jwa.HS256(), pubDER, jws.WithProtectedHeaders(kidHeader())))}, []string{tenantA}, token.ErrSignature},
		{"RS512 by the right key", []string{signWith(t, v1, jwt.WithKey(jwa.RS512(), key.key))}, []string{tenantA}, token.ErrSignature},
		{"PS256 by the right key", []string{signWith(t, v1, jwt.WithKey(jwa.PS256(), key.key))}, []string{tenantA}, token.ErrSignature},
		{"signed by an unpublished key with a known kid", []string{stranger.mint(t, v1)}, []string{tenantA}, token.ErrSignature},
		{"unknown kid", []string{newSigner(t, "kid-unknown").mint(t, v1)}, []string{tenantA}, token.ErrSignature},
		{"no kid", []string{signWith(t, v1, jwt.WithKey(jwa.RS256(), key.priv))}, []string{tenantA}, token.ErrSignature},
		{"tampered payload", []string{tamper(t, key.mint(t, v1), "aud", otherApp)}, []string{tenantA}, token.ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(t.Context(), tc.tokens, tc.tenants)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				return
			}
			if errors.Is(err, token.ErrUnavailable) {
				t.Errorf("Validate() = %v: a forged batch must not look like our outage", err)
			}
			var te *token.Error
			if !errors.As(err, &te) {
				t.Fatalf("Validate() error %T is not *token.Error", err)
			}
			for _, tok := range tc.tokens {
				if len(tok) > 8 && containsTokenPart(err.Error(), tok) {
					t.Errorf("error text %q contains (part of) the token", err)
				}
			}
		})
	}
	for _, tc := range tests {
		for _, tok := range tc.tokens {
			if len(tok) > 8 && containsTokenPart(logs.String(), tok) {
				t.Errorf("log output contains (part of) token of case %q", tc.name)
			}
		}
	}
	// The unknown-kid and stranger cases refresh at most once.
	if got := srv.hits.Load(); got > 2 {
		t.Errorf("JWKS fetched %d times, want at most 2 (initial + one rate-limited refresh)", got)
	}
}

// containsTokenPart reports whether s contains the token or any of its
// three segments.
func containsTokenPart(s, tok string) bool {
	if strings.Contains(s, tok) {
		return true
	}
	for _, part := range strings.Split(tok, ".") {
		if len(part) > 8 && strings.Contains(s, part) {
			return true
		}
	}
	return false
}

// algNone builds an unsecured JWT ("alg":"none") with a kid header.
func algNone(tb testing.TB, kid string, claims map[string]any) string {
	tb.Helper()
	payload, err := jwt.NewSerializer().Serialize(buildToken(tb, claims))
	if err != nil {
		tb.Fatal(err)
	}
	hdr := fmt.Sprintf(`{"alg":"none","typ":"JWT","kid":%q}`, kid)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(hdr)) + "." + enc.EncodeToString(payload) + "."
}

// tamper replaces one claim in a signed token's payload, keeping the
// original header and signature.
func tamper(tb testing.TB, tok, claim string, value any) string {
	tb.Helper()
	parts := strings.Split(tok, ".")
	enc := base64.RawURLEncoding
	raw, err := enc.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := jwt.Parse(raw, jwt.WithVerify(false), jwt.WithValidate(false))
	if err != nil {
		tb.Fatal(err)
	}
	if err := parsed.Set(claim, value); err != nil {
		tb.Fatal(err)
	}
	payload, err := jwt.NewSerializer().Serialize(parsed)
	if err != nil {
		tb.Fatal(err)
	}
	return parts[0] + "." + enc.EncodeToString(payload) + "." + parts[2]
}

func TestUnknownKidThenRotationIsValidAfterRefresh(t *testing.T) {
	oldKey, newKey := newSigner(t, "kid-old"), newSigner(t, "kid-new")
	srv := newJWKSServer(t, oldKey)
	clk := newClock(t0)
	v := startValidator(t, t.Context(), srv, token.Config{
		Now:                clk.Now,
		MinRefreshInterval: 10 * time.Minute,
	})
	base := srv.hits.Load()

	old := oldKey.mint(t, v1Claims(tenantA, t0))
	if err := v.Validate(t.Context(), []string{old}, []string{tenantA}); err != nil {
		t.Fatalf("old key: %v", err)
	}
	if got := srv.hits.Load(); got != base {
		t.Fatalf("cached keys were refetched on the request path: hits %d -> %d", base, got)
	}

	// A token from a key that is not published yet: one refresh, then no.
	rotated := newKey.mint(t, v2Claims(tenantA, t0))
	if err := v.Validate(t.Context(), []string{rotated}, []string{tenantA}); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("before rotation: Validate() = %v, want ErrSignature", err)
	}
	if got := srv.hits.Load(); got != base+1 {
		t.Fatalf("unknown kid: hits = %d, want %d (one refresh)", got, base+1)
	}

	// Microsoft publishes the new key; within MinRefreshInterval of the
	// last refresh we still refuse to refetch.
	srv.setKeys(t, oldKey, newKey)
	clk.Advance(time.Minute)
	if err := v.Validate(t.Context(), []string{rotated}, []string{tenantA}); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("rate-limited: Validate() = %v, want ErrSignature", err)
	}
	if got := srv.hits.Load(); got != base+1 {
		t.Fatalf("rate-limited: hits = %d, want %d", got, base+1)
	}

	// After the interval, the unknown kid triggers a refresh and the
	// token is valid.
	clk.Advance(10 * time.Minute)
	if err := v.Validate(t.Context(), []string{rotated}, []string{tenantA}); err != nil {
		t.Fatalf("after rotation: Validate() = %v, want nil", err)
	}
	if got := srv.hits.Load(); got != base+2 {
		t.Fatalf("after rotation: hits = %d, want %d", got, base+2)
	}
	// Old key is still published, so old tokens still validate, now that
	// the new key set is loaded, without another fetch.
	old2 := oldKey.mint(t, v1Claims(tenantB, clk.Now()))
	if err := v.Validate(t.Context(), []string{old2}, []string{tenantB}); err != nil {
		t.Fatalf("old key after rotation: %v", err)
	}
	if got := srv.hits.Load(); got != base+2 {
		t.Fatalf("hits = %d, want %d", got, base+2)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	key := newSigner(t, "kid-1")
	srv := newJWKSServer(t, key)
	v := startValidator(t, t.Context(), srv, token.Config{
		Now:                func() time.Time { return t0 },
		MinRefreshInterval: time.Hour,
	})
	base := srv.hits.Load()

	// 200 forged tokens with distinct kids, sent concurrently. Signing is
	// cheap to fake: the header names the kid, the key does not matter.
	forger := newSigner(t, "forger")
	const n = 200
	tokens := make([]string, n)
	for i := range tokens {
		h := jws.NewHeaders()
		if err := h.Set(jws.KeyIDKey, fmt.Sprintf("forged-%d", i)); err != nil {
			t.Fatal(err)
		}
		tokens[i] = signWith(t, v1Claims(tenantA, t0), jwt.WithKey(jwa.RS256(), forger.priv, jws.WithProtectedHeaders(h)))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range tokens {
		wg.Go(func() { errs[i] = v.Validate(t.Context(), tokens[i:i+1], []string{tenantA}) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, token.ErrSignature) {
			t.Fatalf("token %d: Validate() = %v, want ErrSignature", i, err)
		}
	}
	if got := srv.hits.Load() - base; got > 1 {
		t.Fatalf("flood of %d unknown kids caused %d JWKS fetches, want at most 1", n, got)
	}
}

func TestEndpointDownAtStartIsUnavailableUntilKeysArrive(t *testing.T) {
	key := newSigner(t, "kid-1")
	srv := newJWKSServer(t, key)
	srv.down.Store(true)
	var logs testkit.SyncBuffer
	v := newValidator(t, t.Context(), srv, token.Config{
		Now:           func() time.Time { return t0 },
		RetryInterval: 10 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
	})
	tok := key.mint(t, v2Claims(tenantA, t0))

	if v.Ready() {
		t.Fatal("Ready() = true with the key endpoint down")
	}
	err := v.Validate(t.Context(), []string{tok}, []string{tenantA})
	if !errors.Is(err, token.ErrUnavailable) {
		t.Fatalf("Validate() = %v, want ErrUnavailable", err)
	}
	// Background retries keep hitting the endpoint while it is down.
	srv.waitFetches(t, 5*time.Second, 3)
	if v.Ready() {
		t.Fatal("Ready() = true while the endpoint still answers 503")
	}

	if !strings.Contains(logs.String(), "JWKS fetch failed") {
		t.Errorf("no operator log line about the failed fetch; logs:\n%s", logs.String())
	}

	srv.down.Store(false)
	testkit.CheckFor(t, 10*time.Second, readiness(v))
	testkit.CheckFor(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "JWKS loaded") {
			return errors.New(`no "JWKS loaded" log line`)
		}
		return nil
	})
	if err := v.Validate(t.Context(), []string{tok}, []string{tenantA}); err != nil {
		t.Fatalf("after keys arrived: Validate() = %v", err)
	}
	// Once loaded, retries stop: no further fetches on the request path.
	hits := srv.hits.Load()
	for range 10 {
		if err := v.Validate(t.Context(), []string{tok}, []string{tenantA}); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.hits.Load(); got != hits {
		t.Fatalf("hits %d -> %d after keys were loaded", hits, got)
	}
}

func TestUnknownKidWhileEndpointDownIsUnavailable(t *testing.T) {
	key, rotated := newSigner(t, "kid-1"), newSigner(t, "kid-2")
	srv := newJWKSServer(t, key)
	v := startValidator(t, t.Context(), srv, token.Config{Now: func() time.Time { return t0 }})
	srv.down.Store(true)
	err := v.Validate(t.Context(), []string{rotated.mint(t, v2Claims(tenantA, t0))}, []string{tenantA})
	if !errors.Is(err, token.ErrUnavailable) {
		t.Fatalf("Validate() = %v, want ErrUnavailable (we cannot see a possible rotation)", err)
	}
	// Cached keys keep working while the endpoint is down.
	if err := v.Validate(t.Context(), []string{key.mint(t, v2Claims(tenantA, t0))}, []string{tenantA}); err != nil {
		t.Fatalf("known kid while endpoint down: %v", err)
	}
}

// TestFailedRefreshDoesNotMakeRotationLookForged covers a rotation that
// happens while the key endpoint is briefly down: once it is back, the
// genuine token with the new kid must validate, not be refused as
// rate-limited (which would quarantine genuine notifications).
func TestFailedRefreshDoesNotMakeRotationLookForged(t *testing.T) {
	key, rotated := newSigner(t, "kid-1"), newSigner(t, "kid-2")
	srv := newJWKSServer(t, key)
	clk := newClock(t0)
	v := startValidator(t, t.Context(), srv, token.Config{Now: clk.Now, MinRefreshInterval: time.Hour, RetryInterval: time.Second})
	tok := rotated.mint(t, v2Claims(tenantA, t0))

	srv.down.Store(true)
	srv.setKeys(t, key, rotated)
	if err := v.Validate(t.Context(), []string{tok}, []string{tenantA}); !errors.Is(err, token.ErrUnavailable) {
		t.Fatalf("endpoint down: %v, want ErrUnavailable", err)
	}
	hits := srv.hits.Load()
	if err := v.Validate(t.Context(), []string{tok}, []string{tenantA}); !errors.Is(err, token.ErrUnavailable) {
		t.Fatalf("right after a failed refresh: %v, want ErrUnavailable", err)
	}
	if srv.hits.Load() != hits {
		t.Errorf("a failed refresh is retried at once: %d fetches, want %d", srv.hits.Load(), hits)
	}

	srv.down.Store(false)
	clk.Advance(2 * time.Second) // past RetryInterval, well within MinRefreshInterval
	if err := v.Validate(t.Context(), []string{tok}, []string{tenantA}); err != nil {
		t.Fatalf("endpoint back: %v, want the rotated key to validate", err)
	}
	// A forged kid right after a successful refresh is still refused
	// without another fetch.
	hits = srv.hits.Load()
	forged := newSigner(t, "kid-forged").mint(t, v2Claims(tenantA, t0))
	if err := v.Validate(t.Context(), []string{forged}, []string{tenantA}); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("forged kid: %v, want ErrSignature", err)
	}
	if got := srv.hits.Load() - hits; got != 0 {
		t.Errorf("a forged kid right after a refresh fetched the keys %d times, want 0", got)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	key, v := readyValidator(t, token.Config{Now: func() time.Time { return t0 }})
	if err := v.Close(); err != nil {
		t.Fatalf("first Close() = %v", err)
	}
	if err := v.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close() = %v, want net.ErrClosed", err)
	}
	err := v.Validate(t.Context(), []string{key.mint(t, v1Claims(tenantA, t0))}, nil)
	if !errors.Is(err, token.ErrUnavailable) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Validate() after Close = %v, want ErrUnavailable and net.ErrClosed", err)
	}
	if err := v.WaitReady(t.Context()); err == nil {
		// keys were loaded before Close, so nil is fine; it must not block.
		t.Log("WaitReady after Close returned nil (keys were loaded)")
	}
	var nilV *token.Validator
	if err := nilV.Close(); err != nil {
		t.Fatalf("nil Close() = %v", err)
	}
}

func TestCloseWhileEndpointDownDoesNotHang(t *testing.T) {
	srv := newJWKSServer(t)
	srv.down.Store(true)
	v := newValidator(t, t.Context(), srv, token.Config{RetryInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := v.WaitReady(ctx); !errors.Is(err, token.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady() = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     token.Config
		wantErr error
	}{
		{"no app ids", token.Config{}, token.ErrConfig},
		{"empty app id", token.Config{AppIDs: []string{""}}, token.ErrConfig},
		{"empty tenant", token.Config{AppIDs: []string{appID}, TenantIDs: []string{""}}, token.ErrConfig},
		{"unknown cloud", token.Config{AppIDs: []string{appID}, Cloud: "mars"}, token.ErrConfig},
		{"relative JWKS URL", token.Config{AppIDs: []string{appID}, JWKSURL: "/keys"}, token.ErrConfig},
		{"ftp JWKS URL", token.Config{AppIDs: []string{appID}, JWKSURL: "ftp://127.0.0.1/keys"}, token.ErrConfig},
		{"issuer without placeholder", token.Config{AppIDs: []string{appID}, Issuers: []string{"https://sts.windows.net/"}}, token.ErrConfig},
		{"negative skew", token.Config{AppIDs: []string{appID}, ClockSkew: -time.Second}, token.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := token.New(t.Context(), tc.cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New() = %v, want %v", err, tc.wantErr)
			}
			if v != nil {
				t.Fatalf("New() returned a Validator with an error")
			}
			if err := v.Close(); err != nil {
				t.Fatalf("Close() after failed New = %v", err)
			}
		})
	}
}

func TestIssuersOverride(t *testing.T) {
	key, v := readyValidator(t, token.Config{
		Now:     func() time.Time { return t0 },
		Issuers: []string{"https://login.microsoftonline.us/{tenantid}/v2.0"},
	})
	gov := with(v2Claims(tenantA, t0), "iss", "https://login.microsoftonline.us/"+tenantA+"/v2.0")
	if err := v.Validate(t.Context(), []string{key.mint(t, gov)}, []string{tenantA}); err != nil {
		t.Fatalf("gov issuer: %v", err)
	}
	global := v2Claims(tenantA, t0)
	if err := v.Validate(t.Context(), []string{key.mint(t, global)}, []string{tenantA}); !errors.Is(err, token.ErrIssuer) {
		t.Fatalf("global issuer with gov-only Issuers: %v, want ErrIssuer", err)
	}
}
