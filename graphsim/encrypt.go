package graphsim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/graphhook/graphhook/decrypt"
)

// Encrypt encrypts plaintext for cert exactly as Microsoft Graph encrypts
// the resource data of a rich notification (protocol doc §5): a fresh
// random 32-byte key per call, wrapped with RSA-OAEP (SHA-1, MGF1-SHA-1,
// empty label) for cert's RSA public key; the plaintext PKCS#7-padded and
// AES-256-CBC encrypted with IV = key[:16]; the ciphertext signed with
// HMAC-SHA256 under the key. certID becomes encryptionCertificateId and
// the thumbprint is the upper-case hex SHA-1 of cert's DER.
//
// It is the sending side that only a simulator needs; receivers use
// [decrypt.Content].
func Encrypt(cert *x509.Certificate, certID string, plaintext []byte) (*decrypt.EncryptedContent, error) {
	if cert == nil {
		return nil, errors.New("graphsim: encrypt: no certificate")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("graphsim: encrypt: certificate key is %T, want RSA", cert.PublicKey)
	}
	key := make([]byte, 32)
	defer clear(key)
	rand.Read(key) // never fails since Go 1.24
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, key, nil)
	if err != nil {
		return nil, fmt.Errorf("graphsim: encrypt: wrap key: %w", err)
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	data := make([]byte, len(plaintext)+pad)
	copy(data, plaintext)
	for i := len(plaintext); i < len(data); i++ {
		data[i] = byte(pad)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("graphsim: encrypt: %w", err)
	}
	cipher.NewCBCEncrypter(block, key[:aes.BlockSize]).CryptBlocks(data, data)
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	sum := sha1.Sum(cert.Raw)
	return &decrypt.EncryptedContent{
		Data:                            base64.StdEncoding.EncodeToString(data),
		DataSignature:                   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		DataKey:                         base64.StdEncoding.EncodeToString(wrapped),
		EncryptionCertificateID:         certID,
		EncryptionCertificateThumbprint: strings.ToUpper(hex.EncodeToString(sum[:])),
	}, nil
}
