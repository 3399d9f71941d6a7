package decrypt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

// Graph redelivering a batch must cost no RSA operation the second time.
func TestKeyRingRedeliveryCostsNoRSA(t *testing.T) {
	k := testKey(t, 0)
	ring := newRing(t, k)
	pt := []byte(`{"id":"redelivered"}`)
	c := sealed(t, k, pt)
	for i := range 3 {
		got, err := ring.Decrypt(c)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("delivery %d: %q, %v", i+1, got, err)
		}
		if ops := ring.rsaOps.Load(); ops != 1 {
			t.Fatalf("after delivery %d: %d RSA operations, want 1", i+1, ops)
		}
	}
}

func TestKeyRingCachesOnlyKeysThatOpenedTheirContent(t *testing.T) {
	k := testKey(t, 0)
	ring := newRing(t, k)
	pt := []byte(`{"id":"genuine"}`)
	c := sealed(t, k, pt)
	other := sealed(t, k, []byte(`{"id":"other item"}`))
	tampered := *c // the genuine dataKey over someone else's data
	tampered.Data, tampered.DataSignature = other.Data, other.DataSignature

	// Twice: first nothing is cached from the failure; then the genuine
	// item's cached key still has to pass the HMAC of every later item.
	for _, round := range []string{"first", "after caching"} {
		if _, err := ring.Decrypt(&tampered); !errors.Is(err, ErrSignature) {
			t.Fatalf("%s: tampered: %v, want ErrSignature", round, err)
		}
		if n := ring.cache.len(); round == "first" && n != 0 {
			t.Fatalf("a key whose HMAC check failed was cached (%d entries)", n)
		}
		if got, err := ring.Decrypt(c); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: genuine: %q, %v", round, got, err)
		}
		if ops := ring.rsaOps.Load(); ops != 2 {
			t.Fatalf("%s: %d RSA operations, want 2 (nothing cached from the failure)", round, ops)
		}
	}
}

// A cached unwrap belongs to the key that did it: the same dataKey sent
// for another key of the ring is unwrapped by that key (and fails).
func TestKeyRingCacheDoesNotAliasKeys(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	ring := newRing(t, a, b)
	c := sealed(t, a, []byte("for a"))
	if _, err := ring.Decrypt(c); err != nil {
		t.Fatal(err)
	}
	forB := *c
	forB.EncryptionCertificateID, forB.EncryptionCertificateThumbprint = b.ID, b.Thumbprint()
	if _, err := ring.Decrypt(&forB); !errors.Is(err, ErrKeyUnwrap) {
		t.Fatalf("a's dataKey presented for b: %v, want ErrKeyUnwrap", err)
	}
	if ops := ring.rsaOps.Load(); ops != 2 {
		t.Fatalf("%d RSA operations, want 2 (b unwraps for itself)", ops)
	}
}

// Removing a key drops what it unwrapped: its content is unknown at once,
// and the secrets do not outlive the key.
func TestKeyRingCacheForgetsRemovedKey(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	ring := newRing(t, a, b)
	ca := sealed(t, a, []byte("a"))
	cb := sealed(t, b, []byte("b"))
	for _, c := range []*EncryptedContent{ca, cb} {
		if _, err := ring.Decrypt(c); err != nil {
			t.Fatal(err)
		}
	}
	if n := ring.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
	ring.Remove(a.ID)
	if n := ring.cache.len(); n != 1 {
		t.Fatalf("after Remove: cache holds %d entries, want 1", n)
	}
	if _, err := ring.Decrypt(ca); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key's content: %v, want ErrUnknownKey", err)
	}
	if err := ring.Add(a); err != nil {
		t.Fatal(err)
	}
	before := ring.rsaOps.Load()
	if got, err := ring.Decrypt(ca); err != nil || string(got) != "a" {
		t.Fatalf("re-added key: %q, %v", got, err)
	}
	if ring.rsaOps.Load() != before+1 {
		t.Fatal("a re-added key used an unwrap cached before its removal")
	}
}

func TestUnwrapCacheIsBounded(t *testing.T) {
	var c unwrapCache
	key := func(i int) cacheKey {
		var k cacheKey
		k.serial = 1
		binary.BigEndian.PutUint64(k.sum[:], uint64(i))
		k.sum = sha256.Sum256(k.sum[:8])
		return k
	}
	var sym [symKeySize]byte
	const extra = 10
	for i := range UnwrapCacheSize + extra {
		sym[0] = byte(i)
		c.put(key(i), &sym)
	}
	if n := c.len(); n != UnwrapCacheSize {
		t.Fatalf("cache holds %d entries, want %d", n, UnwrapCacheSize)
	}
	var got [symKeySize]byte
	for i := range extra {
		if c.get(key(i), &got) {
			t.Fatalf("entry %d survived: the oldest entries go first", i)
		}
	}
	last := UnwrapCacheSize + extra - 1
	if !c.get(key(last), &got) || got[0] != byte(last) {
		t.Fatalf("newest entry missing or wrong: %x", got[0])
	}
	if !c.get(key(extra), &got) || got[0] != byte(extra) {
		t.Fatal("oldest surviving entry missing")
	}
}

// Cached predicts whether Decrypt will perform an RSA operation, and
// DecryptCounted reports how many it did: what a receiver needs to admit a
// redelivered batch as nearly free and to learn RSA's cost from RSA alone.
func TestKeyRingCachedPredictsRSAOperations(t *testing.T) {
	k := testKey(t, 0)
	ring := newRing(t, k)
	c := sealed(t, k, []byte("item"))
	if ring.Cached(c) {
		t.Fatal("Cached before the first Decrypt")
	}
	if _, n, err := ring.DecryptCounted(c); err != nil || n != 1 {
		t.Fatalf("first delivery: n = %d, %v; want 1 RSA operation", n, err)
	}
	if !ring.Cached(c) {
		t.Fatal("not Cached after a Decrypt")
	}
	hits := ring.cache.hits
	if got, n, err := ring.DecryptCounted(c); err != nil || n != 0 || string(got) != "item" {
		t.Fatalf("redelivery: %q, n = %d, %v; want 0 RSA operations", got, n, err)
	}
	if ring.cache.hits != hits+1 {
		t.Errorf("cache hits %d -> %d: Cached must not count, Decrypt must", hits, ring.cache.hits)
	}

	other := sealed(t, k, []byte("other"))
	tampered := *c // a cached dataKey says nothing about the data
	tampered.Data, tampered.DataSignature = other.Data, other.DataSignature
	unknown := *c
	unknown.EncryptionCertificateID, unknown.EncryptionCertificateThumbprint = "nobody", ""
	garbage := *c
	garbage.DataKey = "not base64!"
	for _, tt := range []struct {
		name    string
		c       *EncryptedContent
		cached  bool
		wantErr error
	}{
		{"tampered data", &tampered, true, ErrSignature},
		{"unknown key", &unknown, false, ErrUnknownKey},
		{"bad dataKey", &garbage, false, ErrEncoding},
		{"nil", nil, false, ErrEncoding},
		{"fresh", other, false, nil},
	} {
		if got := ring.Cached(tt.c); got != tt.cached {
			t.Errorf("%s: Cached = %v, want %v", tt.name, got, tt.cached)
		}
		if _, _, err := ring.DecryptCounted(tt.c); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: DecryptCounted = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	ring.Remove(k.ID)
	if ring.Cached(c) {
		t.Error("Cached after the key was removed")
	}
}

// During a same-id rotation an item without thumbprint may need the second
// key of the id; once that key has unwrapped it, a redelivery tries it
// first and costs no RSA operation at all.
func TestKeyRingCachedKeyIsTriedFirst(t *testing.T) {
	oldKey, newKey := testKey(t, 0), testKey(t, 1)
	oldKey.ID, newKey.ID = "key-1", "key-1"
	ring := newRing(t, oldKey, newKey)
	c := sealed(t, newKey, []byte("new"))
	c.EncryptionCertificateThumbprint = ""
	if got, n, err := ring.DecryptCounted(c); err != nil || string(got) != "new" || n != 2 {
		t.Fatalf("first delivery: %q, n = %d, %v; want 2 RSA operations (old key first)", got, n, err)
	}
	if !ring.Cached(c) {
		t.Fatal("not Cached after a Decrypt by the second key")
	}
	if got, n, err := ring.DecryptCounted(c); err != nil || string(got) != "new" || n != 0 {
		t.Fatalf("redelivery: %q, n = %d, %v; want 0 RSA operations", got, n, err)
	}
}
