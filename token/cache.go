package token

import (
	"crypto/sha256"
	"sync"
	"time"
)

// result is what the cache keeps about a valid token: enough to evaluate
// tenant coverage and expiry, nothing else. The token itself is not kept;
// entries are keyed by its SHA-256.
type result struct {
	tenant string
	exp    time.Time
	kid    string // the signing key: a result dies with its key
}

// resultCache maps SHA-256(token) to the result of a successful
// validation. It holds at most max entries; when full, expired entries go
// first, then the entry that expires soonest.
type resultCache struct {
	mu  sync.Mutex
	max int
	m   map[[sha256.Size]byte]result
}

func newResultCache(size int) *resultCache {
	return &resultCache{max: size, m: make(map[[sha256.Size]byte]result)}
}

func (c *resultCache) get(k [sha256.Size]byte) (result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[k]
	return r, ok
}

func (c *resultCache) remove(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// put stores r under k. Entries with exp before cutoff (now minus skew)
// are expired and evicted first when the cache is full.
func (c *resultCache) put(k [sha256.Size]byte, r result, cutoff time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for key, e := range c.m {
			if e.exp.Before(cutoff) {
				delete(c.m, key)
			}
		}
		for len(c.m) >= c.max {
			var oldest [sha256.Size]byte
			var first = true
			var oldestExp time.Time
			for key, e := range c.m {
				if first || e.exp.Before(oldestExp) {
					oldest, oldestExp, first = key, e.exp, false
				}
			}
			delete(c.m, oldest)
		}
	}
	c.m[k] = r
}

// dropUnless removes the entries whose kid keep rejects.
func (c *resultCache) dropUnless(keep func(kid string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if !keep(e.kid) {
			delete(c.m, k)
		}
	}
}

func (c *resultCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
