package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/token"
)

// A cached result dies with its signing key: once Microsoft withdraws the
// key from its key set and the set is refreshed, a token it signed is
// rejected although it has not expired, without another fetch.
func TestCachedTokenIsRejectedOnceItsKeyIsWithdrawn(t *testing.T) {
	oldKey, newKey := newSigner(t, "kid-old"), newSigner(t, "kid-new")
	srv := newJWKSServer(t, oldKey)
	clk := newClock(t0)
	v := startValidator(t, t.Context(), srv, token.Config{Now: clk.Now, MinRefreshInterval: 10 * time.Minute})

	old := oldKey.mint(t, v1Claims(tenantA, t0))
	if err := v.Validate(t.Context(), []string{old}, []string{tenantA}); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	if v.CachedResults() != 1 {
		t.Fatalf("cached results = %d, want 1", v.CachedResults())
	}

	// Microsoft rotates: the old key leaves the set. A token of the new key
	// makes the validator refresh.
	srv.setKeys(t, newKey)
	clk.Advance(time.Minute)
	if err := v.Validate(t.Context(), []string{newKey.mint(t, v2Claims(tenantA, clk.Now()))}, []string{tenantA}); err != nil {
		t.Fatalf("new key: %v", err)
	}
	hits := srv.hits.Load()
	verifications := v.Verifications()

	err := v.Validate(t.Context(), []string{old}, []string{tenantA})
	if !errors.Is(err, token.ErrSignature) {
		t.Fatalf("token of the withdrawn key: %v, want ErrSignature", err)
	}
	if errors.Is(err, token.ErrUnavailable) {
		t.Fatalf("token of the withdrawn key: %v must not ask Graph to retry", err)
	}
	if got := v.Verifications(); got != verifications+1 {
		t.Fatalf("verifications %d -> %d: the cached result was used", verifications, got)
	}
	if got := srv.hits.Load(); got != hits {
		t.Fatalf("JWKS fetched %d more times for a withdrawn kid, want 0", got-hits)
	}
	if got := v.CachedResults(); got != 1 {
		t.Fatalf("cached results = %d, want 1 (the new key's token only)", got)
	}
	// And it stays rejected.
	if err := v.Validate(t.Context(), []string{old}, []string{tenantA}); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("again: %v, want ErrSignature", err)
	}
}

// A kid the validator has never looked for, arriving while key refreshes
// are rate-limited, may be a key Microsoft just published: the batch is
// refused as unavailable (503, Graph retries) instead of quarantined, and
// validates once the interval has passed. Kids known to be absent are
// still rejected, and nothing is fetched within the interval.
func TestNewKidWithinRefreshRateLimitIsUnavailable(t *testing.T) {
	key, rotated := newSigner(t, "kid-1"), newSigner(t, "kid-2")
	srv := newJWKSServer(t, key)
	clk := newClock(t0)
	v := startValidator(t, t.Context(), srv, token.Config{Now: clk.Now, MinRefreshInterval: 10 * time.Minute})
	base := srv.hits.Load()

	forged := newSigner(t, "kid-forged").mint(t, v2Claims(tenantA, t0))
	if err := v.Validate(t.Context(), []string{forged}, []string{tenantA}); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("forged kid: %v, want ErrSignature (after one refresh)", err)
	}
	if got := srv.hits.Load() - base; got != 1 {
		t.Fatalf("forged kid: %d fetches, want 1", got)
	}

	// Microsoft publishes kid-2 and Graph starts using it a minute later.
	srv.setKeys(t, key, rotated)
	clk.Advance(time.Minute)
	genuine := rotated.mint(t, v2Claims(tenantA, clk.Now()))
	other := newSigner(t, "kid-other").mint(t, v2Claims(tenantA, clk.Now()))
	tests := []struct {
		name    string
		tok     string
		wantErr error
	}{
		{"new kid", genuine, token.ErrUnavailable},
		{"kid the last refresh was for", forged, token.ErrSignature},
		{"another never-seen kid", other, token.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(t.Context(), []string{tc.tok}, []string{tenantA})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tc.wantErr)
			}
			var te *token.Error
			if !errors.As(err, &te) || te.Kind != tc.wantErr {
				t.Fatalf("Validate() = %#v, want a *token.Error of kind %v", err, tc.wantErr)
			}
		})
	}
	if got := srv.hits.Load() - base; got != 1 {
		t.Fatalf("%d fetches within the rate limit, want still 1", got)
	}

	// Graph retries after the interval: one refresh, and the genuine token
	// validates; a never-seen forged kid now gets its answer without a fetch.
	clk.Advance(10 * time.Minute)
	if err := v.Validate(t.Context(), []string{genuine}, []string{tenantA}); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if err := v.Validate(t.Context(), []string{other}, []string{tenantA}); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("forged kid after a refresh: %v, want ErrSignature", err)
	}
	if got := srv.hits.Load() - base; got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}
}

// While no key set has ever loaded, the validator retries quickly, so it
// is ready within about a second of the key endpoint answering again,
// however long it was down (the back-off is capped at MaxRetryInterval).
func TestKeysLoadWithinTwoSecondsOfTheEndpointReturning(t *testing.T) {
	key := newSigner(t, "kid-1")
	srv := newJWKSServer(t, key)
	srv.down.Store(true)
	v := newValidator(t, t.Context(), srv, token.Config{}) // default RetryInterval
	// Long enough down for the back-off to reach its cap.
	srv.waitFetches(t, 15*time.Second, 5)
	if v.Ready() {
		t.Fatal("ready while the endpoint is down")
	}
	srv.down.Store(false)
	up := time.Now()
	testkit.CheckFor(t, 2*time.Second, readiness(v))
	t.Logf("ready %v after the endpoint returned", time.Since(up).Round(time.Millisecond))
	if err := v.Validate(t.Context(), []string{key.mint(t, v2Claims(tenantA, time.Now()))}, []string{tenantA}); err != nil {
		t.Fatalf("after the keys loaded: %v", err)
	}
}
