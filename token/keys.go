package token

import (
	"context"
	"log/slog"
	"math/big"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// minRSABits is the smallest RSA modulus accepted from the key set.
// Microsoft identity keys are 2048-bit. jwx enforces the same minimum when
// parsing by default; this check keeps it if that process-wide jwx setting
// (jwk.WithMinRSAModulusBits) is lowered elsewhere.
const minRSABits = 2048

// keyRing pairs a key set fetched by the jwk.Cache with its RS256-pinned
// copy, so the copy is built once per fetch, not once per token.
type keyRing struct {
	src    jwk.Set
	pinned jwk.Set
}

// keys returns the RS256-pinned view of the current key set. It never
// fetches: it reads what the background cache holds (an empty set when
// nothing is loaded). When the set has changed since the last call, kids
// that left it are remembered as withdrawn, and cached results of tokens
// signed by them are dropped.
func (v *Validator) keys() jwk.Set {
	src := v.res.Resource()
	if src == nil {
		return jwk.NewSet()
	}
	if kr := v.ring.Load(); kr != nil && kr.src == src {
		return kr.pinned
	}
	v.ringMu.Lock()
	defer v.ringMu.Unlock()
	old := v.ring.Load()
	if old != nil && old.src == src {
		return old.pinned
	}
	pinned := pinRS256(src)
	if old != nil {
		for i := range old.pinned.Len() {
			k, _ := old.pinned.Key(i)
			if kid, _ := k.KeyID(); !hasKid(pinned, kid) {
				v.withdrawn.add(kid)
			}
		}
		for i := range pinned.Len() {
			k, _ := pinned.Key(i)
			kid, _ := k.KeyID()
			v.withdrawn.remove(kid) // published again
		}
		if v.results != nil {
			v.results.dropUnless(func(kid string) bool { return hasKid(pinned, kid) })
		}
	}
	v.ring.Store(&keyRing{src: src, pinned: pinned})
	return pinned
}

// maxWithdrawnKids bounds how many withdrawn kids are remembered. Only kids
// that were in a fetched key set get here (Microsoft publishes a handful),
// never kids taken from tokens.
const maxWithdrawnKids = 64

// kidSet is a bounded set of kids, oldest dropped first. Guarded by
// Validator.ringMu for writes and reads alike (see withdrawnKid).
type kidSet struct {
	order []string
}

func (s *kidSet) has(kid string) bool {
	for _, k := range s.order {
		if k == kid {
			return true
		}
	}
	return false
}

func (s *kidSet) add(kid string) {
	if kid == "" || s.has(kid) {
		return
	}
	if len(s.order) >= maxWithdrawnKids {
		s.order = s.order[1:]
	}
	s.order = append(s.order, kid)
}

func (s *kidSet) remove(kid string) {
	for i, k := range s.order {
		if k == kid {
			s.order = append(s.order[:i:i], s.order[i+1:]...)
			return
		}
	}
}

// withdrawnKid reports whether kid was in an earlier key set and is not in
// the current one.
func (v *Validator) withdrawnKid(kid string) bool {
	v.keys() // notice a changed set first
	v.ringMu.Lock()
	defer v.ringMu.Unlock()
	return v.withdrawn.has(kid)
}

// pinRS256 returns a copy of src holding only RSA public signing keys of at
// least 2048 bits that have a kid, each with alg set to RS256. jws key set
// verification then uses RS256 and nothing else: the token header cannot
// choose the algorithm (no "none", no HS256 keyed with the public key, no
// RS512). Keys that declare another alg are dropped.
func pinRS256(src jwk.Set) jwk.Set {
	out := jwk.NewSet()
	for i := range src.Len() {
		k, ok := src.Key(i)
		if !ok {
			continue
		}
		rk, ok := k.(jwk.RSAPublicKey)
		if !ok {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "" && use != jwk.ForSignature.String() {
			continue
		}
		if alg, ok := k.Algorithm(); ok && alg.String() != jwa.RS256().String() {
			continue
		}
		if kid, ok := k.KeyID(); !ok || kid == "" {
			continue
		}
		n, ok := rk.N()
		if !ok || new(big.Int).SetBytes(n).BitLen() < minRSABits {
			continue
		}
		c, err := k.Clone()
		if err != nil {
			continue
		}
		if err := c.Set(jwk.AlgorithmKey, jwa.RS256()); err != nil {
			continue
		}
		_ = out.AddKey(c) // a duplicate is already present; nothing lost
	}
	return out
}

// refreshForKid handles a token whose kid is not in the cached key set;
// arrived is when its batch arrived. It refreshes the key set at most once
// per MinRefreshInterval (concurrent callers wait for an in-flight refresh
// instead of starting their own) and returns the new set if it now holds
// kid.
//
// Within the rate limit no fetch is made, and the answer depends on what
// we know about kid: a kid that was withdrawn from the key set, that the
// last refresh was made for, or whose batch arrived before the last
// refresh started, is known to be absent ([ErrSignature]: the batch is
// quarantined). Any other kid may be a genuinely new key that Microsoft
// published since the last refresh, so the answer is [ErrUnavailable]:
// Graph retries, and a later delivery after the interval triggers the
// refresh that settles it. Forged kids therefore cost at most one fetch
// per interval, and a real key rotation is never quarantined for being
// early.
func (v *Validator) refreshForKid(ctx context.Context, kid string, arrived time.Time) (jwk.Set, *Error) {
	select {
	case v.refreshSem <- struct{}{}:
	case <-ctx.Done():
		return nil, &Error{Kind: ErrUnavailable, Detail: "waiting for key refresh", cause: ctx.Err()}
	}
	defer func() { <-v.refreshSem }()

	// Someone else may have refreshed while we waited.
	if set := v.keys(); hasKid(set, kid) {
		return set, nil
	}
	now := v.now()
	if !v.lastRefresh.IsZero() {
		since := now.Sub(v.lastRefresh)
		if v.lastRefreshFailed && since < v.retry {
			// The endpoint was unreachable a moment ago: this may be a real
			// rotation we cannot see yet, so Graph should retry rather than
			// have the batch quarantined.
			return nil, &Error{Kind: ErrUnavailable, Detail: "unknown kid and the last key refresh failed"}
		}
		if !v.lastRefreshFailed && since < v.minRefresh {
			switch {
			case v.withdrawnKid(kid):
				return nil, &Error{Kind: ErrSignature, Detail: "kid withdrawn from the key set"}
			case kid == v.lastRefreshKid || !arrived.After(v.lastRefresh):
				return nil, &Error{Kind: ErrSignature, Detail: "unknown kid (not in the key set fetched since it arrived)"}
			default:
				return nil, &Error{Kind: ErrUnavailable, Detail: "new kid; key refresh rate-limited, retry later"}
			}
		}
	}
	v.lastRefresh, v.lastRefreshFailed, v.lastRefreshKid = now, true, kid

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(v.life, cancel)
	defer stop()
	v.log.LogAttrs(ctx, slog.LevelInfo, "refreshing JWKS for an unknown key id", slog.String("jwks_url", v.jwksURL))
	if _, err := v.jwks.Refresh(rctx, v.jwksURL); err != nil {
		v.log.LogAttrs(ctx, slog.LevelWarn, "JWKS fetch failed", slog.String("jwks_url", v.jwksURL), slog.String("error", err.Error()))
		// We hold keys, but not this one, and cannot reach the endpoint:
		// a real rotation we cannot see yet. Let Graph retry.
		return nil, &Error{Kind: ErrUnavailable, Detail: "unknown kid and key refresh failed", cause: err}
	}
	v.lastRefreshFailed = false
	set := v.keys()
	if !hasKid(set, kid) {
		if v.withdrawnKid(kid) {
			return nil, &Error{Kind: ErrSignature, Detail: "kid withdrawn from the key set"}
		}
		return nil, &Error{Kind: ErrSignature, Detail: "unknown kid"}
	}
	return set, nil
}

// hasKid reports whether set holds a key with kid.
func hasKid(set jwk.Set, kid string) bool {
	_, ok := set.LookupKeyID(kid)
	return ok
}

// awaitKeys runs until the first key set is loaded or ctx is done. The
// jwk.Cache fetches once right after registration; when that fails (its
// own retry may be an hour away), this loop forces refreshes with
// exponential back-off from RetryInterval up to MaxRetryInterval (or
// RetryInterval when that is longer), so that the keys load within about
// a second of the endpoint answering again.
func (v *Validator) awaitKeys(ctx context.Context) {
	defer close(v.loopDone)
	wait := v.retry
	for {
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := v.res.Ready(wctx)
		cancel()
		if err == nil {
			v.log.LogAttrs(ctx, slog.LevelInfo, "JWKS loaded",
				slog.String("jwks_url", v.jwksURL), slog.Int("keys", v.keys().Len()))
			return
		}
		if ctx.Err() != nil {
			return
		}
		if _, err := v.jwks.Refresh(ctx, v.jwksURL); err != nil && ctx.Err() == nil {
			v.log.LogAttrs(ctx, slog.LevelWarn, "JWKS fetch failed; validation answers unavailable until keys load",
				slog.String("jwks_url", v.jwksURL), slog.String("error", err.Error()), slog.Duration("retry_in", min(2*wait, v.maxRetry)))
		}
		wait = min(2*wait, v.maxRetry)
	}
}
