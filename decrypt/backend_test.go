package decrypt

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The backend (crypto/rsa, or OpenSSL with -tags openssl) must unwrap
// exactly what crypto/rsa unwraps, and refuse what it refuses.
func TestBackendUnwrapAgreesWithCryptoRSA(t *testing.T) {
	keys := map[string]Key{"1024": testKey(t, 0)}
	k2048, err := generated2048()
	if err != nil {
		t.Fatal(err)
	}
	keys["2048"] = k2048
	for bits, k := range keys {
		native, err := newNativeKey(k.Private)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(native.release)
		size := k.Private.Size()
		sym := make([]byte, symKeySize)
		rand.Read(sym)
		wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &k.Private.PublicKey, sym, nil)
		if err != nil {
			t.Fatal(err)
		}
		short, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &k.Private.PublicKey, sym[:16], nil)
		if err != nil {
			t.Fatal(err)
		}
		labelled, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &k.Private.PublicKey, sym, []byte("label"))
		if err != nil {
			t.Fatal(err)
		}
		flipped := bytes.Clone(wrapped)
		flipped[len(flipped)/2] ^= 1
		tests := []struct {
			name    string
			in      []byte
			want    []byte
			wantErr error
		}{
			{"wrapped key", wrapped, sym, nil},
			{"16-byte key", short, nil, ErrKeyUnwrap},
			{"non-empty OAEP label", labelled, nil, ErrKeyUnwrap},
			{"one bit flipped", flipped, nil, ErrKeyUnwrap},
			{"empty", nil, nil, ErrKeyUnwrap},
			{"one byte short", withLeadingByte(t, &k.Private.PublicKey, sym, false)[1:], nil, ErrKeyUnwrap},
			// A ciphertext whose first byte is zero, sent without it, is
			// the same number: crypto/rsa opens it, and so must every
			// backend.
			{"leading zero left out", withLeadingByte(t, &k.Private.PublicKey, sym, true)[1:], sym, nil},
			{"one byte long", append(bytes.Clone(wrapped), 0), nil, ErrKeyUnwrap},
			{"zeros", make([]byte, size), nil, ErrKeyUnwrap},
			{"above the modulus", bytes.Repeat([]byte{0xff}, size), nil, ErrKeyUnwrap},
		}
		for _, tc := range tests {
			t.Run(bits+"/"+tc.name, func(t *testing.T) {
				got, err := native.unwrap(k.Private, tc.in)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s unwrap error = %v, want %v", Backend, err, tc.wantErr)
				}
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("%s unwrap = %x, want %x", Backend, got, tc.want)
				}
				goGot, goErr := unwrapKey(k.Private, tc.in)
				if (goErr == nil) != (err == nil) || !bytes.Equal(goGot, got) {
					t.Fatalf("backends disagree: %s gives %x, %v; crypto/rsa gives %x, %v", Backend, got, err, goGot, goErr)
				}
				if err != nil && strings.Contains(err.Error(), hex.EncodeToString(k.Private.D.Bytes()[:8])) {
					t.Fatal("error text contains key material")
				}
			})
		}
	}
}

// The backend unwraps Microsoft's 4096-bit vector to the documented key.
func TestBackendMicrosoftVectorUnwrap(t *testing.T) {
	content, _ := vectorContent(t)
	k := vectorKeys(t)["ParsePEM"]
	wantSym := vectorSymKey(t)
	native, err := newNativeKey(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	defer native.release()
	sym, err := native.unwrap(k.Private, mustB64(t, content.DataKey))
	if err != nil {
		t.Fatalf("%s unwrap: %v", Backend, err)
	}
	if !bytes.Equal(sym, wantSym) {
		t.Fatalf("%s unwrapped %x, want %x", Backend, sym, wantSym)
	}
}

// Many goroutines unwrapping with one key at once (OpenSSL shares one
// EVP_PKEY between threads) all get their own item's plaintext.
func TestBackendConcurrentDecrypts(t *testing.T) {
	k := testKey(t, 0)
	ring := newRing(t, k)
	ring.cache.disabled = true // every decrypt is an RSA operation
	const workers, each = 8, 25
	items := make([]*EncryptedContent, workers*each)
	for i := range items {
		items[i] = sealed(t, k, []byte(fmt.Sprintf("item %d", i)))
	}
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * each; i < (w+1)*each; i++ {
				got, err := ring.Decrypt(items[i])
				if err != nil || string(got) != fmt.Sprintf("item %d", i) {
					errs <- fmt.Errorf("item %d: %q, %v", i, got, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := ring.rsaOps.Load(); got != int64(len(items)) {
		t.Errorf("%d RSA operations, want %d", got, len(items))
	}
}

// withLeadingByte returns an RSA-OAEP encryption of sym whose first byte
// is zero (one in 256 are) when zero is true, and not zero otherwise.
func withLeadingByte(t *testing.T, pub *rsa.PublicKey, sym []byte, zero bool) []byte {
	t.Helper()
	for range 100000 {
		c, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, sym, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (c[0] == 0) == zero {
			return c
		}
	}
	t.Fatalf("no ciphertext with a leading zero byte = %v in 100,000 encryptions", zero)
	return nil
}
