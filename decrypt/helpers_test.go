package decrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallKeyBits keeps unit tests and fuzzing fast; GenerateKey refuses it,
// which is why tests build these keys themselves.
const smallKeyBits = 1024

// testKeys are generated once per test binary: three 1024-bit keys with
// self-signed certificates and the ids "test-0", "test-1", "test-2".
var testKeys = sync.OnceValues(func() ([]Key, error) {
	keys := make([]Key, 3)
	for i := range keys {
		k, err := newTestKey(smallKeyBits, fmt.Sprintf("test-%d", i))
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
})

func newTestKey(bits int, id string) (Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return Key{}, err
	}
	cert, err := selfSigned(priv, id, time.Now(), time.Hour)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: id, Private: priv, Certificate: cert}, nil
}

// testKey returns the i-th cached test key (0..2).
func testKey(tb testing.TB, i int) Key {
	tb.Helper()
	keys, err := testKeys()
	if err != nil {
		tb.Fatalf("generate test keys: %v", err)
	}
	return keys[i]
}

// allErrors is every sentinel Content and KeyRing.Decrypt may return.
var allErrors = []error{ErrUnknownKey, ErrEncoding, ErrKeyUnwrap, ErrSignature, ErrCiphertext, ErrPadding}

// classify returns the single sentinel err wraps, or an error explaining
// why there is not exactly one.
func classify(err error) (error, error) {
	var found []error
	for _, s := range allErrors {
		if errors.Is(err, s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("error %q wraps %d sentinels, want exactly 1", err, len(found))
	}
	return found[0], nil
}

// sealRaw encrypts already padded plaintext with the given symmetric key the
// way Graph does, so tests can build content Encrypt would never produce
// (bad padding, wrong key sizes).
func sealRaw(tb testing.TB, k Key, sym, padded []byte) *EncryptedContent {
	tb.Helper()
	ec, err := seal(&k.Private.PublicKey, k.ID, k.Thumbprint(), sym, padded)
	if err != nil {
		tb.Fatal(err)
	}
	return ec
}

// seal is Graph's encryption of already padded plaintext with the
// symmetric key sym: sym wrapped with RSA-OAEP(SHA-1) for pub, the
// plaintext AES-256-CBC encrypted with IV = sym[:16] (left as zeros unless
// sym has the 32 bytes AES-256 takes), the ciphertext signed with
// HMAC-SHA256(sym).
func seal(pub *rsa.PublicKey, certID, thumbprint string, sym, padded []byte) (*EncryptedContent, error) {
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, sym, nil)
	if err != nil {
		return nil, fmt.Errorf("wrap key: %w", err)
	}
	ct := make([]byte, len(padded))
	if len(sym) == symKeySize {
		block, err := aes.NewCipher(sym)
		if err != nil { // unreachable: len(sym) == 32
			return nil, err
		}
		cipher.NewCBCEncrypter(block, sym[:aes.BlockSize]).CryptBlocks(ct, padded)
	}
	mac := hmac.New(sha256.New, sym)
	mac.Write(ct)
	return &EncryptedContent{
		Data:                            base64.StdEncoding.EncodeToString(ct),
		DataSignature:                   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		DataKey:                         base64.StdEncoding.EncodeToString(wrapped),
		EncryptionCertificateID:         certID,
		EncryptionCertificateThumbprint: thumbprint,
	}, nil
}

// vectorDir is Microsoft's rich-notification test vector, kept next to the
// repository.
var vectorDir = filepath.Join("..", "..", "shared", "vectors", "graph-rich-notification")

// readVector returns a vector file, skipping the test if the vectors are
// not checked out next to the repository.
func readVector(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("Microsoft test vector not found at %s (it lives in ../shared/vectors relative to the repository root)", vectorDir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// vectorSymKey returns the vector's symmetric key, the one its dataKey
// wraps.
func vectorSymKey(tb testing.TB) []byte {
	tb.Helper()
	sym, err := hex.DecodeString(strings.TrimSpace(string(readVector(tb, "symmetric-key.hex"))))
	if err != nil {
		tb.Fatal(err)
	}
	return sym
}

// newRing returns a KeyRing holding keys.
func newRing(tb testing.TB, keys ...Key) *KeyRing {
	tb.Helper()
	ring, err := NewKeyRing(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

// sealed returns plaintext encrypted for k as Graph does.
func sealed(tb testing.TB, k Key, plaintext []byte) *EncryptedContent {
	tb.Helper()
	c, err := encrypt(k.Certificate, k.ID, plaintext)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
