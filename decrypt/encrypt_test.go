package decrypt

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
)

// This file holds the test-only encrypter of the package's own tests; the
// exported one, for users and the simulator, is graphsim.Encrypt.

// encrypt produces encrypted content exactly as Microsoft Graph does, with a
// fresh random 32-byte key per call: the key is wrapped with RSA-OAEP(SHA-1)
// for cert's public key, plaintext is PKCS#7-padded and AES-256-CBC encrypted
// with IV = key[:16], and the ciphertext is signed with HMAC-SHA256(key).
// certID becomes EncryptionCertificateID; the thumbprint is computed from
// cert. It exists for the Graph simulator and for tests.
func encrypt(cert *x509.Certificate, certID string, plaintext []byte) (*EncryptedContent, error) {
	if cert == nil {
		return nil, errors.New("decrypt: encrypt: no certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("decrypt: encrypt: certificate key is %T, want RSA", cert.PublicKey)
	}
	k := make([]byte, symKeySize)
	defer clear(k)
	rand.Read(k) // never fails since Go 1.24
	p := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+p)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(p)
	}
	ec, err := seal(pub, certID, thumbprint(cert), k, buf)
	if err != nil {
		return nil, fmt.Errorf("decrypt: encrypt: %w", err)
	}
	return ec, nil
}
