package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

func TestPinRS256KeepsOnlyRSASigningKeys(t *testing.T) {
	rsaKey := func(bits int) *rsa.PublicKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := rsaKey(2048)
	src := jwk.NewSet()
	add := func(raw any, fields map[string]any) {
		k, err := jwk.Import(raw)
		if err != nil {
			t.Fatal(err)
		}
		for name, val := range fields {
			if err := k.Set(name, val); err != nil {
				t.Fatal(err)
			}
		}
		if err := src.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	add(good, map[string]any{jwk.KeyIDKey: "ok", jwk.KeyUsageKey: "sig"})
	add(good, map[string]any{jwk.KeyIDKey: "ok-no-use"})
	add(good, map[string]any{jwk.KeyIDKey: "ok-rs256", jwk.AlgorithmKey: jwa.RS256()})
	add(good, map[string]any{jwk.KeyIDKey: "rs512", jwk.AlgorithmKey: jwa.RS512()})
	add(good, map[string]any{jwk.KeyIDKey: "enc", jwk.KeyUsageKey: "enc"})
	add(good, map[string]any{})
	add(&ecKey.PublicKey, map[string]any{jwk.KeyIDKey: "ec"})
	add([]byte("hmac secret"), map[string]any{jwk.KeyIDKey: "oct"})

	pinned := pinRS256(src)
	want := map[string]bool{"ok": true, "ok-no-use": true, "ok-rs256": true}
	if pinned.Len() != len(want) {
		t.Errorf("pinned set has %d keys, want %d", pinned.Len(), len(want))
	}
	for i := range pinned.Len() {
		k, _ := pinned.Key(i)
		kid, _ := k.KeyID()
		if !want[kid] {
			t.Errorf("key %q kept", kid)
		}
		alg, ok := k.Algorithm()
		if !ok || alg.String() != "RS256" {
			t.Errorf("key %q alg = %v, want RS256", kid, alg)
		}
	}
	// The source set, shared with the jwk.Cache, is not modified.
	k, _ := src.LookupKeyID("ok")
	if _, ok := k.Algorithm(); ok {
		t.Error("source key got an alg")
	}
}

// TestPinnedSetAloneRejectsOtherAlgorithms checks the jws key set layer
// without the header pre-check in verify: even if that check were removed,
// HS256 keyed with the public key, RS512 and PS256 would not verify.
func TestPinnedSetAloneRejectsOtherAlgorithms(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := jwk.Import(&priv.PublicKey)
	_ = pub.Set(jwk.KeyIDKey, "k")
	src := jwk.NewSet()
	_ = src.AddKey(pub)
	pinned := pinRS256(src)

	signKey, _ := jwk.Import(priv)
	_ = signKey.Set(jwk.KeyIDKey, "k")
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, "k")
	claims, _ := jwt.NewBuilder().Audience([]string{"app"}).Build()

	sign := func(opt jwt.SignOption) []byte {
		b, err := jwt.Sign(claims, opt)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := jwt.Parse(sign(jwt.WithKey(jwa.RS256(), signKey)), verifyOptions(pinned)...); err != nil {
		t.Fatalf("RS256: %v", err)
	}
	for name, tok := range map[string][]byte{
		"HS256 with PEM": sign(jwt.WithKey(jwa.HS256(), pubPEM, jws.WithProtectedHeaders(hdr))),
		"HS256 with DER": sign(jwt.WithKey(jwa.HS256(), der, jws.WithProtectedHeaders(hdr))),
		"RS512":          sign(jwt.WithKey(jwa.RS512(), signKey)),
		"PS256":          sign(jwt.WithKey(jwa.PS256(), signKey)),
	} {
		if _, err := jwt.Parse(tok, verifyOptions(pinned)...); !errors.Is(err, jws.VerifyError()) {
			t.Errorf("%s: jwt.Parse() = %v, want a jws verify error", name, err)
		}
	}
}

func TestCloudDefaults(t *testing.T) {
	tests := []struct {
		cloud   string
		jwksURL string
		issuers []string
	}{
		{"", "https://login.microsoftonline.com/common/discovery/v2.0/keys",
			[]string{"https://sts.windows.net/{tenantid}/", "https://login.microsoftonline.com/{tenantid}/v2.0"}},
		{"global", "https://login.microsoftonline.com/common/discovery/v2.0/keys",
			[]string{"https://sts.windows.net/{tenantid}/", "https://login.microsoftonline.com/{tenantid}/v2.0"}},
		{"usgov", "https://login.microsoftonline.us/common/discovery/v2.0/keys",
			[]string{"https://sts.windows.net/{tenantid}/", "https://login.microsoftonline.us/{tenantid}/v2.0"}},
		{"china", "https://login.chinacloudapi.cn/common/discovery/v2.0/keys",
			[]string{"https://sts.chinacloudapi.cn/{tenantid}/", "https://login.chinacloudapi.cn/{tenantid}/v2.0", "https://login.partner.microsoftonline.cn/{tenantid}/v2.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.cloud, func(t *testing.T) {
			v, err := newValidator(Config{AppIDs: []string{"app"}, Cloud: tc.cloud})
			if err != nil {
				t.Fatal(err)
			}
			if v.jwksURL != tc.jwksURL {
				t.Errorf("jwksURL = %q, want %q", v.jwksURL, tc.jwksURL)
			}
			if len(v.issuers) != len(tc.issuers) {
				t.Fatalf("issuers = %q, want %q", v.issuers, tc.issuers)
			}
			for i := range tc.issuers {
				if v.issuers[i] != tc.issuers[i] {
					t.Errorf("issuers[%d] = %q, want %q", i, v.issuers[i], tc.issuers[i])
				}
			}
		})
	}
	// JWKSURL overrides the cloud's key URL but keeps its issuers.
	v, err := newValidator(Config{AppIDs: []string{"app"}, Cloud: "usgov", JWKSURL: "http://127.0.0.1:1/keys"})
	if err != nil {
		t.Fatal(err)
	}
	if v.jwksURL != "http://127.0.0.1:1/keys" || v.issuers[1] != "https://login.microsoftonline.us/{tenantid}/v2.0" {
		t.Errorf("override: jwksURL %q issuers %q", v.jwksURL, v.issuers)
	}
}

func TestNewDoesNotModifyConfig(t *testing.T) {
	cfg := Config{AppIDs: []string{"APP"}, TenantIDs: []string{"TENANT"}, Issuers: []string{"https://x/{tenantid}/"}}
	v, err := newValidator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.issuers[0] = "changed"
	if cfg.AppIDs[0] != "APP" || cfg.TenantIDs[0] != "TENANT" || cfg.Issuers[0] != "https://x/{tenantid}/" || cfg.ClockSkew != 0 {
		t.Fatalf("cfg modified: %+v", cfg)
	}
}

func TestJWKSURLWarning(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://login.microsoftonline.com/common/discovery/v2.0/keys", ""},
		{"https://LOGIN.microsoftonline.us/common/discovery/v2.0/keys", ""},
		{"https://login.chinacloudapi.cn/common/discovery/v2.0/keys", ""},
		{"https://login.partner.microsoftonline.cn:443/keys", ""},
		{"http://login.microsoftonline.com/common/discovery/v2.0/keys", "is plain http"},
		{"https://login.microsoftonline.com.evil.example/keys", "is not a Microsoft identity host"},
		{"http://127.0.0.1:8080/keys", "is plain http and is not a Microsoft identity host"},
	}
	for _, tc := range tests {
		if got := jwksURLWarning(tc.url); got != tc.want {
			t.Errorf("jwksURLWarning(%s) = %q, want %q", tc.url, got, tc.want)
		}
	}
	for _, cloud := range []string{"global", "usgov", "china"} {
		d, _ := cloudFor(cloud)
		if w := jwksURLWarning(d.jwksURL); w != "" {
			t.Errorf("cloud %s: its own key URL %s draws a warning: %s", cloud, d.jwksURL, w)
		}
	}
}
