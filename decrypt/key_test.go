package decrypt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// generated2048 is one GenerateKey result shared by the tests that need a
// key of a size Graph accepts.
var generated2048 = sync.OnceValues(func() (Key, error) {
	return GenerateKey(2048, "graphhook-test", 24*time.Hour)
})

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePEM(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(a.Private)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(a.Private)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	certA, certB := pemBlock("CERTIFICATE", a.Certificate.Raw), pemBlock("CERTIFICATE", b.Certificate.Raw)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	dekInfo := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: pkcs1})

	tests := []struct {
		name     string
		in       []byte
		wantCert bool
		wantErr  error
	}{
		{"PKCS#8 and certificate", join(pemBlock("PRIVATE KEY", pkcs8), certA), true, nil},
		{"PKCS#1 and certificate", join(pemBlock("RSA PRIVATE KEY", pkcs1), certA), true, nil},
		{"certificate first", join(certA, pemBlock("PRIVATE KEY", pkcs8)), true, nil},
		{"chain, leaf second", join(pemBlock("PRIVATE KEY", pkcs8), certB, certA), true, nil},
		{"text around blocks", join([]byte("Bag Attributes\n  friendlyName: x\n"), pemBlock("PRIVATE KEY", pkcs8), []byte("trailing\n"), certA), true, nil},
		{"bare PKCS#8 key", pemBlock("PRIVATE KEY", pkcs8), false, nil},
		{"bare PKCS#1 key", pemBlock("RSA PRIVATE KEY", pkcs1), false, nil},
		{"other blocks ignored", join(pemBlock("PUBLIC KEY", []byte{1}), pemBlock("PRIVATE KEY", pkcs8)), false, nil},
		{"certificate of another key", join(pemBlock("PRIVATE KEY", pkcs8), certB), false, ErrKeyFile},
		{"certificate only", certA, false, ErrKeyFile},
		{"two private keys", join(pemBlock("PRIVATE KEY", pkcs8), pemBlock("RSA PRIVATE KEY", pkcs1)), false, ErrKeyFile},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", pkcs8), false, ErrKeyFile},
		{"encrypted PKCS#1", dekInfo, false, ErrKeyFile},
		{"EC key", pemBlock("PRIVATE KEY", ecDER), false, ErrKeyFile},
		{"PKCS#1 label on PKCS#8 data", pemBlock("RSA PRIVATE KEY", pkcs8), false, ErrKeyFile},
		{"corrupt certificate", join(pemBlock("PRIVATE KEY", pkcs8), pemBlock("CERTIFICATE", []byte{0x30, 0})), false, ErrKeyFile},
		{"not PEM", []byte("hello"), false, ErrKeyFile},
		{"empty", nil, false, ErrKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePEM(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParsePEM() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !k.Private.Equal(a.Private) {
				t.Error("parsed private key differs")
			}
			if tt.wantCert != (k.Certificate != nil) {
				t.Fatalf("certificate present = %v, want %v", k.Certificate != nil, tt.wantCert)
			}
			if tt.wantCert && k.Thumbprint() != a.Thumbprint() {
				t.Errorf("Thumbprint() = %s, want %s", k.Thumbprint(), a.Thumbprint())
			}
			if k.ID != "" {
				t.Errorf("ID = %q, want empty", k.ID)
			}
		})
	}
}

func TestParsePKCS12(t *testing.T) {
	a, b := testKey(t, 0), testKey(t, 1)
	const password = "correct horse"
	encode := func(enc *pkcs12.Encoder, priv any, leaf *x509.Certificate, chain []*x509.Certificate, pw string) []byte {
		t.Helper()
		pfx, err := enc.Encode(priv, leaf, chain, pw)
		if err != nil {
			t.Fatal(err)
		}
		return pfx
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		pfx      []byte
		password string
		wantErr  error
	}{
		{"modern", encode(pkcs12.Modern2023, a.Private, a.Certificate, nil, password), password, nil},
		{"legacy DES", encode(pkcs12.LegacyDES, a.Private, a.Certificate, nil, password), password, nil},
		{"legacy RC2", encode(pkcs12.LegacyRC2, a.Private, a.Certificate, nil, password), password, nil},
		{"passwordless", encode(pkcs12.Passwordless, a.Private, a.Certificate, nil, ""), "", nil},
		{"with chain", encode(pkcs12.Modern2023, a.Private, a.Certificate, []*x509.Certificate{b.Certificate}, password), password, nil},
		{"chain listed first", encode(pkcs12.Modern2023, a.Private, b.Certificate, []*x509.Certificate{a.Certificate}, password), password, nil},
		{"modern 2026 (PBMAC1)", encode(pkcs12.Modern2026, a.Private, a.Certificate, nil, password), password, nil},
		{"MAC iterations above the bound", withMACIterations(t, encode(pkcs12.LegacyDES, a.Private, a.Certificate, nil, password), 1<<30), password, ErrKeyFile},
		{"MAC iterations at the bound", withMACIterations(t, encode(pkcs12.LegacyDES, a.Private, a.Certificate, nil, password), maxPKCS12Iterations), "wrong-password", ErrKeyPassword},
		{"wrong password, modern", encode(pkcs12.Modern2023, a.Private, a.Certificate, nil, password), "wrong-password", ErrKeyPassword},
		{"wrong password, legacy", encode(pkcs12.LegacyDES, a.Private, a.Certificate, nil, password), "wrong-password", ErrKeyPassword},
		{"certificate of another key", encode(pkcs12.Modern2023, a.Private, b.Certificate, nil, password), password, ErrKeyFile},
		{"EC key", encode(pkcs12.Modern2023, ec, a.Certificate, nil, password), password, ErrKeyFile},
		{"garbage", []byte("definitely not DER"), password, ErrKeyFile},
		{"empty", nil, password, ErrKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePKCS12(tt.pfx, tt.password)
			checkKeyFile(t, "ParsePKCS12", k, err, tt.wantErr, tt.password, a)
		})
	}
}

func TestLoadFile(t *testing.T) {
	a := testKey(t, 0)
	const password = "s3cret-pfx-password"
	pfx, err := pkcs12.Modern2023.Encode(a.Private, a.Certificate, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := a.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(pfx)
	wrapped := regexp.MustCompile(`.{1,64}`).ReplaceAllString(b64, "$0\r\n")
	dir := t.TempDir()
	files := map[string][]byte{
		"key.pem":       pemData,
		"key.pfx":       pfx,
		"key.p12":       pfx,
		"key.bin":       pfx, // sniffed, not judged by extension
		"key.pfx.b64":   []byte(b64 + "\n"),
		"wrapped.b64":   []byte(wrapped),
		"garbage.pem":   []byte("-----BEGIN NOTHING-----\n"),
		"garbage.b64":   []byte("QUJD="), // base64 text, not valid base64
		"empty":         nil,
		"notakey.txt":   []byte("hello, world"),
		"b64notpfx.txt": []byte(base64.StdEncoding.EncodeToString([]byte("not a pfx at all"))),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(dir, "huge.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file     string
		password string
		wantErr  error
	}{
		{"key.pem", "", nil},
		{"key.pem", "ignored for PEM", nil},
		{"key.pfx", password, nil},
		{"key.p12", password, nil},
		{"key.bin", password, nil},
		{"key.pfx.b64", password, nil},
		{"wrapped.b64", password, nil},
		{"key.pfx", "wrong-" + password, ErrKeyPassword},
		{"garbage.pem", "", ErrKeyFile},
		{"garbage.b64", password, ErrKeyFile},
		{"empty", password, ErrKeyFile},
		{"notakey.txt", password, ErrKeyFile},
		{"b64notpfx.txt", password, ErrKeyFile},
		{"huge.pem", password, ErrKeyFile},
		{"missing.pem", password, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			k, err := LoadFile(path, tt.password)
			if err != nil && !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q does not name the file", err)
			}
			checkKeyFile(t, "LoadFile", k, err, tt.wantErr, tt.password, a)
		})
	}
}

func TestGenerateKey(t *testing.T) {
	k, err := generated2048()
	if err != nil {
		t.Fatal(err)
	}
	if k.Private.N.BitLen() != 2048 {
		t.Errorf("key has %d bits, want 2048", k.Private.N.BitLen())
	}
	c := k.Certificate
	if c.Subject.CommonName != "graphhook-test" {
		t.Errorf("CommonName = %q", c.Subject.CommonName)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
	if !matches(c, k.Private) {
		t.Error("certificate does not hold the key's public half")
	}
	if now := time.Now(); c.NotBefore.After(now) || c.NotAfter.Before(now.Add(23*time.Hour)) || c.NotAfter.After(now.Add(25*time.Hour)) {
		t.Errorf("validity %v..%v, want now..now+24h", c.NotBefore, c.NotAfter)
	}
	if !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(k.Thumbprint()) {
		t.Errorf("Thumbprint() = %q, want 40 upper-case hex digits", k.Thumbprint())
	}
	der, err := base64.StdEncoding.DecodeString(k.EncryptionCertificate())
	if err != nil || !bytes.Equal(der, c.Raw) {
		t.Errorf("EncryptionCertificate() is not the base64 DER of the certificate (err %v)", err)
	}
	if k.ID != "" {
		t.Errorf("ID = %q, want empty", k.ID)
	}
}

func TestGenerateKeyRejects(t *testing.T) {
	tests := []struct {
		name     string
		bits     int
		validFor time.Duration
	}{
		{"1024 bits", 1024, time.Hour},
		{"2047 bits", 2047, time.Hour},
		{"4097 bits", 4097, time.Hour},
		{"8192 bits", 8192, time.Hour},
		{"zero validity", 2048, 0},
		{"negative validity", 2048, -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := GenerateKey(tt.bits, "x", tt.validFor); err == nil {
				t.Fatalf("GenerateKey(%d, %v) = %v, want an error", tt.bits, tt.validFor, k)
			}
		})
	}
}

func TestMarshalPEMRoundTrip(t *testing.T) {
	k, err := generated2048()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  Key
	}{{"with certificate", k}, {"bare key", Key{Private: k.Private}}} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.key.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
				t.Errorf("MarshalPEM does not start with a PKCS#8 block")
			}
			back, err := ParsePEM(data)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Private.Equal(k.Private) || back.Thumbprint() != tc.key.Thumbprint() {
				t.Error("ParsePEM(MarshalPEM()) differs")
			}
		})
	}
	if _, err := (Key{}).MarshalPEM(); !errors.Is(err, ErrKeyFile) {
		t.Errorf("MarshalPEM of an empty Key: error = %v, want ErrKeyFile", err)
	}
}

func TestKeyRedactsItself(t *testing.T) {
	k := testKey(t, 0)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("loaded", "key", k)
	outputs := map[string]string{
		"%v":     fmt.Sprintf("%v", k),
		"%+v":    fmt.Sprintf("%+v", k),
		"%#v":    fmt.Sprintf("%#v", k),
		"%q":     fmt.Sprintf("%q", k),
		"Sprint": fmt.Sprint(k),
		"slog":   logged.String(),
	}
	secrets := []string{k.Private.D.String(), k.Private.Primes[0].String(), k.Private.D.Text(16)}
	for verb, out := range outputs {
		if !strings.Contains(out, k.ID) || !strings.Contains(out, k.Thumbprint()) {
			t.Errorf("%s output %q lacks the id or thumbprint", verb, out)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains private key material", verb)
			}
		}
	}
}

// withMACIterations rewrites the MAC iteration count of a PFX (which
// invalidates the MAC, as an attacker's file would be).
func withMACIterations(t *testing.T, pfx []byte, n int) []byte {
	t.Helper()
	var outer pfxOuter
	if _, err := asn1.Unmarshal(pfx, &outer); err != nil {
		t.Fatal(err)
	}
	outer.MacData.Iterations = n
	der, err := asn1.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	if got := pkcs12MACIterations(der); got != n {
		t.Fatalf("pkcs12MACIterations = %d, want %d", got, n)
	}
	return der
}

func TestPKCS12MACIterations(t *testing.T) {
	k := testKey(t, 0)
	for name, enc := range map[string]*pkcs12.Encoder{"legacy": pkcs12.LegacyDES, "modern 2023": pkcs12.Modern2023, "PBMAC1": pkcs12.Modern2026} {
		pfx, err := enc.WithIterations(3001).Encode(k.Private, k.Certificate, nil, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if got := pkcs12MACIterations(pfx); got != 3001 {
			t.Errorf("%s: pkcs12MACIterations = %d, want 3001", name, got)
		}
	}
	if got := pkcs12MACIterations([]byte("garbage")); got != 0 {
		t.Errorf("garbage: pkcs12MACIterations = %d, want 0", got)
	}
}

// checkKeyFile checks what fn (ParsePKCS12 or LoadFile) returned: an error
// matching wantErr, wrapping ErrKeyFile and not quoting password, or else
// the key want, certificate included.
func checkKeyFile(t *testing.T, fn string, k Key, err, wantErr error, password string, want Key) {
	t.Helper()
	if !errors.Is(err, wantErr) {
		t.Fatalf("%s() error = %v, want %v", fn, err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, ErrKeyFile) {
			t.Errorf("error %v does not wrap ErrKeyFile", err)
		}
		if password != "" && strings.Contains(err.Error(), password) {
			t.Errorf("error %q contains the password", err)
		}
		return
	}
	if !k.Private.Equal(want.Private) || k.Thumbprint() != want.Thumbprint() {
		t.Errorf("%s: key or certificate differs", fn)
	}
}
