package decrypt

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
)

func TestKeyRingSelection(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	bareB := Key{ID: "bare-b", Private: b.Private} // no certificate: id only
	thumbOnlyA := Key{Private: a.Private, Certificate: a.Certificate}
	pt := []byte(`{"id":"1"}`)
	encA := sealed(t, a, pt)
	encB, err := encrypt(b.Certificate, "bare-b", pt)
	if err != nil {
		t.Fatal(err)
	}
	content := func(c *EncryptedContent, id, thumb string) *EncryptedContent {
		cc := *c
		cc.EncryptionCertificateID, cc.EncryptionCertificateThumbprint = id, thumb
		return &cc
	}
	tests := []struct {
		name    string
		keys    []Key
		c       *EncryptedContent
		wantErr error
	}{
		{"id and thumbprint", []Key{a, b}, encA, nil},
		{"id only", []Key{a, b}, content(encA, a.ID, ""), nil},
		{"id with lower-case thumbprint", []Key{a, b}, content(encA, a.ID, strings.ToLower(a.Thumbprint())), nil},
		{"thumbprint only, upper", []Key{thumbOnlyA, b}, content(encA, "", a.Thumbprint()), nil},
		{"thumbprint only, lower", []Key{thumbOnlyA, b}, content(encA, "", strings.ToLower(a.Thumbprint())), nil},
		{"unknown id falls back to thumbprint", []Key{a, b}, content(encA, "nope", a.Thumbprint()), nil},
		{"id of a bare key ignores thumbprint", []Key{a, bareB}, content(encB, "bare-b", b.Thumbprint()), nil},
		{"thumbprint wins over id", []Key{a, b}, content(encA, a.ID, b.Thumbprint()), ErrKeyUnwrap},
		{"id matches, thumbprint unknown", []Key{a, b}, content(encA, a.ID, strings.Repeat("AB", 20)), ErrUnknownKey},
		{"id selects the wrong key", []Key{a, b}, content(encA, b.ID, ""), ErrKeyUnwrap},
		{"unknown id and thumbprint", []Key{a, b}, content(encA, "nope", strings.Repeat("00", 20)), ErrUnknownKey},
		{"no id and no thumbprint", []Key{a, b}, content(encA, "", ""), ErrUnknownKey},
		{"empty ring", nil, encA, ErrUnknownKey},
		{"nil content", []Key{a}, nil, ErrEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring := newRing(t, tt.keys...)
			got, err := ring.Decrypt(tt.c)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decrypt() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !bytes.Equal(got, pt) {
				t.Errorf("Decrypt() = %q, want %q", got, pt)
			}
		})
	}
}

func TestKeyRingUnknownKeyErrorIsBounded(t *testing.T) {
	ring := newRing(t, testKey(t, 0))
	c, err := encrypt(testKey(t, 1).Certificate, strings.Repeat("i", 10000), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ring.Decrypt(c)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("error = %v, want ErrUnknownKey", err)
	}
	if len(err.Error()) > 400 {
		t.Errorf("error string is %d bytes; untrusted ids must be clipped", len(err.Error()))
	}
}

func TestKeyRingRotation(t *testing.T) {
	oldKey, newKey := testKey(t, 0), testKey(t, 1)
	ring := newRing(t, oldKey)
	oldContent := sealed(t, oldKey, []byte(`{"v":"old"}`))
	newContent := sealed(t, newKey, []byte(`{"v":"new"}`))
	decrypts := func(c *EncryptedContent, want string) {
		t.Helper()
		got, err := ring.Decrypt(c)
		if err != nil || string(got) != want {
			t.Fatalf("Decrypt = %q, %v; want %q", got, err, want)
		}
	}

	decrypts(oldContent, `{"v":"old"}`)
	if _, err := ring.Decrypt(newContent); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new content before Add: error = %v, want ErrUnknownKey", err)
	}

	// Overlap: both keys decrypt.
	if err := ring.Add(newKey); err != nil {
		t.Fatal(err)
	}
	if ring.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", ring.Len())
	}
	decrypts(oldContent, `{"v":"old"}`)
	decrypts(newContent, `{"v":"new"}`)

	// Old key retired: its content is now unknown, the new one still works.
	if !ring.Remove(oldKey.ID) {
		t.Fatal("Remove(old id) = false")
	}
	if ring.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", ring.Len())
	}
	if _, err := ring.Decrypt(oldContent); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old content after Remove: error = %v, want ErrUnknownKey", err)
	}
	decrypts(newContent, `{"v":"new"}`)
	if ring.Remove(oldKey.ID) {
		t.Error("second Remove(old id) = true")
	}

	// Removing by thumbprint, any case, works too.
	if !ring.Remove(strings.ToLower(newKey.Thumbprint())) {
		t.Fatal("Remove(lower-case thumbprint) = false")
	}
	if ring.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", ring.Len())
	}
	if _, err := ring.Decrypt(newContent); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new content after Remove: error = %v, want ErrUnknownKey", err)
	}
	// A removed key can be added again.
	if err := ring.Add(newKey); err != nil {
		t.Fatal(err)
	}
	decrypts(newContent, `{"v":"new"}`)
}

func TestKeyRingRemoveKeyWhoseIDIsItsThumbprint(t *testing.T) {
	k := testKey(t, 0)
	k.ID = k.Thumbprint()
	ring := newRing(t, k, testKey(t, 1))
	if !ring.Remove(k.ID) || ring.Len() != 1 {
		t.Fatalf("after Remove, Len() = %d, want 1", ring.Len())
	}
}

func TestKeyRingAddRejects(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	mismatched := Key{ID: "mismatch", Private: a.Private, Certificate: b.Certificate}
	sameThumb := Key{ID: "another-id", Private: a.Private, Certificate: a.Certificate}
	sameID := Key{ID: a.ID, Private: b.Private, Certificate: b.Certificate}
	broken := *b.Private
	broken.D = new(big.Int).Add(broken.D, big.NewInt(2)) // no longer the inverse of E
	broken.Precomputed = rsa.PrecomputedValues{}
	tests := []struct {
		name    string
		key     Key
		wantErr error
	}{
		{"no private key", Key{ID: "x", Certificate: a.Certificate}, ErrKeyFile},
		{"neither id nor certificate", Key{Private: a.Private}, ErrKeyFile},
		{"certificate of another key", mismatched, ErrKeyFile},
		{"invalid private key", Key{ID: "broken", Private: &broken}, ErrKeyFile},
		{"same id, another certificate (rotation)", sameID, nil},
		{"same id, no certificate to tell them apart", Key{ID: a.ID, Private: b.Private}, ErrDuplicateKey},
		{"duplicate thumbprint", sameThumb, ErrDuplicateKey},
		{"new key", testKey(t, 2), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring := newRing(t, a)
			err := ring.Add(tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Add() error = %v, want %v", err, tt.wantErr)
			}
			wantLen := 1
			if tt.wantErr == nil {
				wantLen = 2
			}
			if ring.Len() != wantLen {
				t.Errorf("Len() = %d, want %d", ring.Len(), wantLen)
			}
		})
	}
}

// TestKeyRingSameIDRotation covers a subscription whose certificate is
// replaced (PATCH) while its encryptionCertificateId is kept: Graph's
// retries still carry content for the old certificate, new deliveries for
// the new one, both under the same id. Both must decrypt until the old key
// is removed.
func TestKeyRingSameIDRotation(t *testing.T) {
	oldKey, newKey := testKey(t, 0), testKey(t, 1)
	oldKey.ID, newKey.ID = "key-1", "key-1"
	ring := newRing(t, oldKey, newKey)
	encOld := sealed(t, oldKey, []byte("old"))
	encNew := sealed(t, newKey, []byte("new"))
	for _, c := range []*EncryptedContent{encOld, encNew} {
		if _, err := ring.Decrypt(c); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}
	// Without a thumbprint, both keys of the id are tried.
	noThumb := *encOld
	noThumb.EncryptionCertificateThumbprint = ""
	if got, err := ring.Decrypt(&noThumb); err != nil || string(got) != "old" {
		t.Fatalf("id only: %q, %v", got, err)
	}
	if !ring.Remove(oldKey.Thumbprint()) || ring.Len() != 1 {
		t.Fatalf("Remove(old thumbprint): Len = %d, want 1", ring.Len())
	}
	if _, err := ring.Decrypt(encOld); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old content after removal: %v, want ErrUnknownKey", err)
	}
	if got, err := ring.Decrypt(encNew); err != nil || string(got) != "new" {
		t.Errorf("new content after removal: %q, %v", got, err)
	}
}

func TestKeyRingZeroValueIsUsable(t *testing.T) {
	var ring KeyRing
	k := testKey(t, 0)
	c := sealed(t, k, []byte("zero"))
	if _, err := ring.Decrypt(c); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("empty ring: error = %v, want ErrUnknownKey", err)
	}
	if ring.Remove(k.ID) || ring.Len() != 0 {
		t.Fatal("empty ring removed something")
	}
	if err := ring.Add(k); err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Decrypt(c); err != nil || string(got) != "zero" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
}

// A key assembled from its numbers has no CRT values; the ring precomputes
// its own copy once instead of on every decrypt, and leaves the caller's
// key alone.
func TestKeyRingPrecomputesItsOwnCopy(t *testing.T) {
	k := testKey(t, 0)
	handBuilt := &rsa.PrivateKey{PublicKey: k.Private.PublicKey, D: k.Private.D, Primes: k.Private.Primes}
	ring := newRing(t, Key{ID: "hand", Private: handBuilt, Certificate: k.Certificate})
	if handBuilt.Precomputed.Dp != nil {
		t.Error("Add modified the caller's private key")
	}
	c, err := encrypt(k.Certificate, "hand", []byte("crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Decrypt(c); err != nil || string(got) != "crt" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
}

// Rotation under load: decrypts of content for a key that stays in the ring
// never fail while other goroutines add and remove keys. Run with -race.
func TestKeyRingConcurrentRotation(t *testing.T) {
	stable, rotating := testKey(t, 0), testKey(t, 1)
	ring := newRing(t, stable)
	c := sealed(t, stable, []byte("steady"))
	rc := sealed(t, rotating, []byte("rotating"))
	const readers, rounds = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, readers*rounds*2)
	for range readers {
		wg.Go(func() {
			for range rounds {
				if got, err := ring.Decrypt(c); err != nil || string(got) != "steady" {
					errs <- fmt.Errorf("stable key: %q, %v", got, err)
				}
				// The rotating key may or may not be present, but nothing else may happen.
				if got, err := ring.Decrypt(rc); err != nil && !errors.Is(err, ErrUnknownKey) || err == nil && string(got) != "rotating" {
					errs <- fmt.Errorf("rotating key: %q, %v", got, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range rounds {
			if err := ring.Add(rotating); err != nil {
				errs <- err
			}
			_ = ring.Len()
			if !ring.Remove(rotating.Thumbprint()) {
				errs <- errors.New("Remove(rotating) = false")
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ring.Len() != 1 {
		t.Errorf("Len() = %d, want 1", ring.Len())
	}
}

func TestNilKeyRingIsEmpty(t *testing.T) {
	var ring *KeyRing
	k := testKey(t, 0)
	c := sealed(t, k, []byte("x"))
	if _, err := ring.Decrypt(c); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Decrypt on nil ring: error = %v, want ErrUnknownKey", err)
	}
	if ring.Len() != 0 || ring.Remove(k.ID) {
		t.Error("nil ring is not empty")
	}
	if err := ring.Add(k); err == nil {
		t.Error("Add on nil ring succeeded")
	}
}
