package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/graphhook/graphhook/token"
)

func TestResultCacheOneSignatureCheckPerDistinctToken(t *testing.T) {
	clk := newClock(t0)
	key, v := readyValidator(t, token.Config{Now: clk.Now})

	tok := key.mint(t, with(v2Claims(tenantA, t0), "exp", t0.Add(10*time.Minute)))
	items := make([]string, 1000) // a batch of 1,000 notifications of one tenant
	for i := range items {
		items[i] = tenantA
	}
	for range 3 {
		if err := v.Validate(t.Context(), []string{tok}, items); err != nil {
			t.Fatal(err)
		}
	}
	// Graph may also repeat the token in one batch.
	if err := v.Validate(t.Context(), []string{tok, tok, tok}, items); err != nil {
		t.Fatal(err)
	}
	wantCacheCounts(t, v, 1, 1, "")

	// Coverage is evaluated per call, also for a cached token.
	if err := v.Validate(t.Context(), []string{tok}, []string{tenantA, tenantB}); !errors.Is(err, token.ErrTenantNotCovered) {
		t.Fatalf("cached token, uncovered tenant: %v, want ErrTenantNotCovered", err)
	}

	// Within skew after exp: still valid from cache.
	clk.Advance(14 * time.Minute)
	if err := v.Validate(t.Context(), []string{tok}, items); err != nil {
		t.Fatalf("exp+4m: %v", err)
	}
	// Past exp+skew: expired, and dropped from the cache.
	clk.Advance(2 * time.Minute)
	if err := v.Validate(t.Context(), []string{tok}, items); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("exp+6m: %v, want ErrExpired", err)
	}
	wantCacheCounts(t, v, 0, 1, "after expiry")
}

func TestResultCacheHoldsOnlyValidTokens(t *testing.T) {
	key, v := readyValidator(t, token.Config{Now: func() time.Time { return t0 }})

	bad := key.mint(t, with(v1Claims(tenantA, t0), "aud", otherApp))
	for range 3 {
		if err := v.Validate(t.Context(), []string{bad}, nil); !errors.Is(err, token.ErrAudience) {
			t.Fatalf("Validate() = %v, want ErrAudience", err)
		}
	}
	wantCacheCounts(t, v, 0, 3, "failures are not cached")
}

func TestResultCacheIsBounded(t *testing.T) {
	clk := newClock(t0)
	key, v := readyValidator(t, token.Config{Now: clk.Now, CacheSize: 2})

	soon := key.mint(t, with(v1Claims(tenantA, t0), "exp", t0.Add(time.Hour)))
	later := key.mint(t, with(v1Claims(tenantA, t0), "exp", t0.Add(2*time.Hour)))
	latest := key.mint(t, with(v1Claims(tenantA, t0), "exp", t0.Add(3*time.Hour)))
	for _, tok := range []string{soon, later, latest} {
		if err := v.Validate(t.Context(), []string{tok}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.CachedResults(); got != 2 {
		t.Fatalf("cached results = %d, want 2", got)
	}
	// The entry expiring first was evicted: it costs a new check.
	before := v.Verifications()
	for _, tok := range []string{later, latest} {
		if err := v.Validate(t.Context(), []string{tok}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Verifications(); got != before {
		t.Fatalf("later/latest re-verified: %d -> %d", before, got)
	}
	if err := v.Validate(t.Context(), []string{soon}, nil); err != nil {
		t.Fatal(err)
	}
	if got := v.Verifications(); got != before+1 {
		t.Fatalf("evicted token: checks %d -> %d, want one more", before, got)
	}

}

func TestResultCacheSweepsExpiredEntriesWhenFull(t *testing.T) {
	clk := newClock(t0)
	key, v := readyValidator(t, token.Config{Now: clk.Now, CacheSize: 3})
	for _, exp := range []time.Duration{10 * time.Minute, 20 * time.Minute, 3 * time.Hour} {
		tok := key.mint(t, with(v1Claims(tenantA, t0), "exp", t0.Add(exp)))
		if err := v.Validate(t.Context(), []string{tok}, nil); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	if err := v.Validate(t.Context(), []string{key.mint(t, v1Claims(tenantA, clk.Now()))}, nil); err != nil {
		t.Fatal(err)
	}
	// Both expired entries were swept, not just one evicted.
	if got := v.CachedResults(); got != 2 {
		t.Fatalf("cached results = %d, want 2", got)
	}
}

func TestResultCacheDisabled(t *testing.T) {
	key, v := readyValidator(t, token.Config{Now: func() time.Time { return t0 }, CacheSize: -1})
	tok := key.mint(t, v2Claims(tenantA, t0))
	for range 3 {
		if err := v.Validate(t.Context(), []string{tok}, []string{tenantA}); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Verifications(); got != 3 {
		t.Fatalf("signature checks = %d, want 3", got)
	}
}

// wantCacheCounts fails the test unless v holds cached results and has
// made checks signature checks; why, when not empty, says why.
func wantCacheCounts(t *testing.T, v *token.Validator, cached int, checks int64, why string) {
	t.Helper()
	if why != "" {
		why = " (" + why + ")"
	}
	if got := v.CachedResults(); got != cached {
		t.Fatalf("cached results = %d, want %d%s", got, cached, why)
	}
	if got := v.Verifications(); got != checks {
		t.Fatalf("signature checks = %d, want %d%s", got, checks, why)
	}
}
