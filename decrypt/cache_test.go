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
	ring, err := NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte(`{"id":"redelivered"}`)
	c, err := Encrypt(k.Certificate, k.ID, pt)
	if err != nil {
		t.Fatal(err)
	}
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
	ring, err := NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte(`{"id":"genuine"}`)
	c, err := Encrypt(k.Certificate, k.ID, pt)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Encrypt(k.Certificate, k.ID, []byte(`{"id":"other item"}`))
	if err != nil {
		t.Fatal(err)
	}
	tampered := *c // the genuine dataKey over someone else's data
	tampered.Data, tampered.DataSignature = other.Data, other.DataSignature

	if _, err := ring.Decrypt(&tampered); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered: %v, want ErrSignature", err)
	}
	if n := ring.cache.len(); n != 0 {
		t.Fatalf("a key whose HMAC check failed was cached (%d entries)", n)
	}
	if got, err := ring.Decrypt(c); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("genuine: %q, %v", got, err)
	}
	if ops := ring.rsaOps.Load(); ops != 2 {
		t.Fatalf("%d RSA operations, want 2 (nothing cached from the failure)", ops)
	}
	// The cached key still has to pass the HMAC of every later item.
	if _, err := ring.Decrypt(&tampered); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered after caching: %v, want ErrSignature", err)
	}
	if got, err := ring.Decrypt(c); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("genuine again: %q, %v", got, err)
	}
	if ops := ring.rsaOps.Load(); ops != 2 {
		t.Fatalf("%d RSA operations, want 2", ops)
	}
}

// A cached unwrap belongs to the key that did it: the same dataKey sent
// for another key of the ring is unwrapped by that key (and fails).
func TestKeyRingCacheDoesNotAliasKeys(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	ring, err := NewKeyRing(a, b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Encrypt(a.Certificate, a.ID, []byte("for a"))
	if err != nil {
		t.Fatal(err)
	}
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
	ring, err := NewKeyRing(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := Encrypt(a.Certificate, a.ID, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Encrypt(b.Certificate, b.ID, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
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
