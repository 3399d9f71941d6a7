package token_test

import (
	"testing"
	"time"

	"github.com/graphhook/graphhook/token"
)

// BenchmarkValidate validates a batch of 100 notifications of one tenant
// that share one validation token (Graph sends one token per app and
// tenant), with and without the result cache.
//
// Fairness: both Validators are identical except for CacheSize (default
// vs. -1), share the same key endpoint and token, and have their keys
// loaded and RS256-pinned before timing. Neither touches the network in
// the loop (asserted). "uncached" therefore measures the full check per
// token (JWS parse, RSA-2048 verify, claims) and "cached" a SHA-256 of
// the token, a map hit and the tenant-coverage check.
//
// "batch" is one Validate call per batch (how the receiver calls it);
// "per-item" is one call per notification, as a receiver that checked
// each item separately would do.
func BenchmarkValidate(b *testing.B) {
	key := newSigner(b, "kid-1")
	srv := newJWKSServer(b, key)
	now := func() time.Time { return t0 }
	cached := startValidator(b, b.Context(), srv, token.Config{Now: now})
	uncached := startValidator(b, b.Context(), srv, token.Config{Now: now, CacheSize: -1})
	tok := key.mint(b, v2Claims(tenantA, t0))
	tokens := []string{tok}
	items := make([]string, 100)
	for i := range items {
		items[i] = tenantA
	}

	for _, vc := range []struct {
		name string
		v    *token.Validator
	}{{"cached", cached}, {"uncached", uncached}} {
		if err := vc.v.Validate(b.Context(), tokens, items); err != nil { // warm: keys pinned, cache filled
			b.Fatal(err)
		}
		b.Run("batch100/"+vc.name, func(b *testing.B) {
			hits := srv.hits.Load()
			for b.Loop() {
				if err := vc.v.Validate(b.Context(), tokens, items); err != nil {
					b.Fatal(err)
				}
			}
			if srv.hits.Load() != hits {
				b.Fatal("key endpoint fetched during the benchmark")
			}
		})
		b.Run("per-item100/"+vc.name, func(b *testing.B) {
			hits := srv.hits.Load()
			for b.Loop() {
				for i := range items {
					if err := vc.v.Validate(b.Context(), tokens, items[i:i+1]); err != nil {
						b.Fatal(err)
					}
				}
			}
			if srv.hits.Load() != hits {
				b.Fatal("key endpoint fetched during the benchmark")
			}
		})
	}
}
