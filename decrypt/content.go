package decrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// symKeySize is the size of the per-item symmetric key: AES-256 and the
// HMAC-SHA256 key are the same 32 bytes; the CBC IV is its first 16.
const symKeySize = 32

// EncryptedContent is the wire form of changeNotificationEncryptedContent,
// the encryptedContent object of a rich notification.
type EncryptedContent struct {
	// Data is the standard base64 of the AES-256-CBC ciphertext.
	Data string `json:"data"`
	// DataSignature is the standard base64 of HMAC-SHA256(key, ciphertext).
	DataSignature string `json:"dataSignature"`
	// DataKey is the standard base64 of the RSA-OAEP(SHA-1) wrapped key.
	DataKey string `json:"dataKey"`
	// EncryptionCertificateID is the encryptionCertificateId of the subscription.
	EncryptionCertificateID string `json:"encryptionCertificateId"`
	// EncryptionCertificateThumbprint is the hex SHA-1 of the certificate's DER.
	EncryptionCertificateThumbprint string `json:"encryptionCertificateThumbprint"`
}

// Content decrypts c with priv, exactly as Microsoft Graph encrypts:
//
//  1. k = RSA-OAEP-Decrypt(priv, base64(dataKey)) with SHA-1, MGF1-SHA-1 and
//     an empty label; k must be 32 bytes.
//  2. HMAC-SHA256(k, base64(data)) must equal base64(dataSignature),
//     compared in constant time, before anything is decrypted.
//  3. AES-256-CBC-Decrypt with key k and IV k[:16], then PKCS#7 unpadding
//     with full validation.
//
// The certificate id and thumbprint in c are ignored; use [KeyRing.Decrypt]
// to select the key by them. Cheap structural checks (base64, signature and
// ciphertext lengths) run before the RSA step, so malformed input costs
// little. Errors wrap [ErrEncoding], [ErrSignature], [ErrCiphertext],
// [ErrKeyUnwrap] or [ErrPadding]. The returned slice is owned by the caller.
func Content(priv *rsa.PrivateKey, c *EncryptedContent) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no encryptedContent", ErrEncoding)
	}
	if priv == nil {
		return nil, fmt.Errorf("%w: no private key", ErrKeyUnwrap)
	}
	var w wire
	if err := w.decode(c); err != nil {
		return nil, err
	}
	k, err := unwrapKey(priv, w.wrapped)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return w.open(k)
}

// wire holds the decoded and structurally checked fields of an
// EncryptedContent. The fixed buffers keep the small fields off the heap.
type wire struct {
	sigBuf     [48]byte  // DecodedLen(44) is 33; room for a little garbage
	wrappedBuf [520]byte // RSA-4096 wraps to 512 bytes; larger keys allocate
	sig        []byte
	wrapped    []byte
	ct         []byte
}

// decode base64-decodes c's fields and checks their lengths, all before
// the costly RSA step.
func (w *wire) decode(c *EncryptedContent) error {
	var err error
	if w.sig, err = decodeInto(w.sigBuf[:], c.DataSignature, "dataSignature"); err != nil {
		return err
	}
	if len(w.sig) != sha256.Size {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrSignature, len(w.sig), sha256.Size)
	}
	if w.wrapped, err = decodeInto(w.wrappedBuf[:], c.DataKey, "dataKey"); err != nil {
		return err
	}
	if w.ct, err = decodeInto(nil, c.Data, "data"); err != nil {
		return err
	}
	if len(w.ct) == 0 || len(w.ct)%aes.BlockSize != 0 {
		return fmt.Errorf("%w: %d bytes, want a positive multiple of %d", ErrCiphertext, len(w.ct), aes.BlockSize)
	}
	return nil
}

// open verifies the signature with the unwrapped key k, then decrypts the
// ciphertext in place and unpads it.
func (w *wire) open(k []byte) ([]byte, error) {
	mac := hmac.New(sha256.New, k)
	mac.Write(w.ct)
	var sum [sha256.Size]byte
	if !hmac.Equal(mac.Sum(sum[:0]), w.sig) {
		return nil, ErrSignature
	}
	block, err := aes.NewCipher(k)
	if err != nil { // unreachable: len(k) == 32
		return nil, fmt.Errorf("%w: %w", ErrKeyUnwrap, err)
	}
	cipher.NewCBCDecrypter(block, k[:aes.BlockSize]).CryptBlocks(w.ct, w.ct)
	pt, err := unpad(w.ct)
	if err != nil {
		clear(w.ct)
		return nil, err
	}
	return pt, nil
}

// unwrapKey is step 1 of [Content]: RSA-OAEP(SHA-1) unwrap of the data key.
func unwrapKey(priv *rsa.PrivateKey, wrapped []byte) ([]byte, error) {
	k, err := rsa.DecryptOAEP(sha1.New(), nil, priv, wrapped, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyUnwrap, err)
	}
	if len(k) != symKeySize {
		n := len(k)
		clear(k)
		return nil, fmt.Errorf("%w: unwrapped key is %d bytes, want %d", ErrKeyUnwrap, n, symKeySize)
	}
	return k, nil
}

// decodeInto decodes standard base64 s into buf when it fits, else into a
// new slice. field names the JSON field for the error.
func decodeInto(buf []byte, s, field string) ([]byte, error) {
	if n := base64.StdEncoding.DecodedLen(len(s)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf, []byte(s))
	if err != nil {
		var cie base64.CorruptInputError
		if errors.As(err, &cie) {
			return nil, fmt.Errorf("%w in %s at byte %d", ErrEncoding, field, int64(cie))
		}
		return nil, fmt.Errorf("%w in %s", ErrEncoding, field)
	}
	return buf[:n], nil
}

// unpad removes and fully validates PKCS#7 padding. b is a non-empty
// multiple of the block size. No timing care is needed: the HMAC over the
// ciphertext was verified first, so padding errors tell an attacker nothing.
func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, ErrPadding
	}
	p := int(b[len(b)-1])
	if p == 0 || p > aes.BlockSize || p > len(b) {
		return nil, ErrPadding
	}
	for _, c := range b[len(b)-p:] {
		if int(c) != p {
			return nil, ErrPadding
		}
	}
	return b[:len(b)-p], nil
}
