package testkit

import (
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

func TestVerifyJWSReturnsTheClaims(t *testing.T) {
	_, priv := ClientCert(t, "signer")
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: "k1", jwk.AlgorithmKey: jwa.RS256()} {
		if err := key.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := jws.Sign([]byte(`{"sub":"me"}`), jws.WithKey(jwa.RS256(), key))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	if claims := VerifyJWS(t, set, string(tok)); claims["sub"] != "me" {
		t.Fatalf("claims %v", claims)
	}
}

func TestClientCertIsSelfSignedForCN(t *testing.T) {
	cert, key := ClientCert(t, "app-1")
	if cert.Subject.CommonName != "app-1" || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) != nil || !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("certificate %v: not a self-signed certificate of the returned key", cert.Subject)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		t.Fatalf("not valid now: %v to %v", cert.NotBefore, cert.NotAfter)
	}
}
