package graphsim_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

func TestEncryptRoundTripsThroughDecrypt(t *testing.T) {
	key := testKey(t)
	for _, plain := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("0123456789abcdef"), 4), []byte(`{"id":"1","subject":"é"}`)} {
		ec, err := graphsim.Encrypt(key.Certificate, "cert-1", plain)
		if err != nil {
			t.Fatal(err)
		}
		if ec.EncryptionCertificateID != "cert-1" || len(ec.EncryptionCertificateThumbprint) != 40 || strings.ToUpper(ec.EncryptionCertificateThumbprint) != ec.EncryptionCertificateThumbprint {
			t.Errorf("labels %+v", ec)
		}
		got, err := decrypt.Content(key.Private, ec)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("round trip of %q: %q %v", plain, got, err)
		}
	}
	// Two encryptions of one plaintext differ (a fresh key each time).
	a, _ := graphsim.Encrypt(key.Certificate, "c", []byte("same"))
	b, _ := graphsim.Encrypt(key.Certificate, "c", []byte("same"))
	if a.Data == b.Data || a.DataKey == b.DataKey {
		t.Error("encryption is deterministic")
	}
}

func TestEncryptNeedsAnRSACertificate(t *testing.T) {
	if _, err := graphsim.Encrypt(nil, "c", []byte("x")); err == nil {
		t.Error("nil certificate accepted")
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := graphsim.Encrypt(&x509.Certificate{PublicKey: &ek.PublicKey}, "c", []byte("x")); err == nil || !strings.Contains(err.Error(), "want RSA") {
		t.Errorf("ECDSA certificate: %v", err)
	}
}
