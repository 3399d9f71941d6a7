package testkit

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// DecryptKey returns a new RSA-2048 key with a self-signed certificate
// valid for an hour, named id (its encryptionCertificateId): the key a
// test's subscription would be created with.
func DecryptKey(tb testing.TB, id string) decrypt.Key {
	tb.Helper()
	k, err := decrypt.GenerateKey(2048, id, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	k.ID = id
	return k
}

// KeyRing returns a decrypt.KeyRing holding keys.
func KeyRing(tb testing.TB, keys ...decrypt.Key) *decrypt.KeyRing {
	tb.Helper()
	ring, err := decrypt.NewKeyRing(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

// VerifyJWS verifies the compact JWS tok against set, requiring a kid
// that names one of its keys, and returns its JSON claims. It fails the
// test when tok does not verify.
func VerifyJWS(tb testing.TB, set jwk.Set, tok string) map[string]any {
	tb.Helper()
	payload, err := jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		tb.Fatalf("token does not verify against the key set: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}

// ClientCert returns a self-signed RSA-2048 certificate for common name
// cn and its key, as "az ad app credential reset --create-cert" makes an
// app's client certificate: valid from an hour ago for a day, for
// digital signatures.
func ClientCert(tb testing.TB, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, key
}
