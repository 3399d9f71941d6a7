package decrypt

import (
	"crypto/sha256"
	"sync"
)

// UnwrapCacheSize is the number of unwrapped symmetric keys a [KeyRing]
// remembers, so that content Graph delivers again (a batch it retries
// after a timeout or a 503) costs no RSA operation the second time. An
// entry is about 100 bytes, so a full cache holds about 1.6 MiB. When it
// is full, the oldest entry is dropped. Entries of a removed key are
// dropped with it.
const UnwrapCacheSize = 16384

// cacheKey names one unwrap: the ring key that did it (its serial, unique
// within the ring, so a different key can never alias) and the SHA-256 of
// the decoded dataKey.
type cacheKey struct {
	serial uint64
	sum    [sha256.Size]byte
}

// unwrapCache maps cacheKey to the 32-byte symmetric key, with first-in
// first-out eviction. The zero value is an empty cache; disabled (tests
// and benchmarks only) makes every lookup miss.
type unwrapCache struct {
	mu       sync.Mutex
	m        map[cacheKey]int // -> index in slots
	slots    []cacheSlot      // ring buffer of at most UnwrapCacheSize entries
	next     int              // slot to fill next once slots is full
	hits     int64
	disabled bool
}

type cacheSlot struct {
	key cacheKey
	sym [symKeySize]byte
}

// get copies the cached symmetric key for k into sym and reports whether
// there was one.
func (c *unwrapCache) get(k cacheKey, sym *[symKeySize]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.m[k]
	if !ok {
		return false
	}
	*sym = c.slots[i].sym
	c.hits++
	return true
}

// has reports whether k has an entry, without counting a hit.
func (c *unwrapCache) has(k cacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	return ok
}

// put stores sym under k, evicting the oldest entry when full.
func (c *unwrapCache) put(k cacheKey, sym *[symKeySize]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled {
		return
	}
	if _, ok := c.m[k]; ok {
		return // a concurrent Decrypt of the same item stored it first
	}
	if c.m == nil {
		c.m = make(map[cacheKey]int)
	}
	if len(c.slots) < UnwrapCacheSize {
		c.slots = append(c.slots, cacheSlot{key: k, sym: *sym})
		c.m[k] = len(c.slots) - 1
		return
	}
	old := &c.slots[c.next]
	delete(c.m, old.key)
	old.key, old.sym = k, *sym
	c.m[k] = c.next
	c.next = (c.next + 1) % UnwrapCacheSize
}

// forget drops (and wipes) every entry made with the ring key serial.
func (c *unwrapCache) forget(serial uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, i := range c.m {
		if k.serial == serial {
			delete(c.m, k)
			clear(c.slots[i].sym[:])
			c.slots[i].key = cacheKey{} // serial 0 is never handed out
		}
	}
}

func (c *unwrapCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
