package decrypt

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	vectorPassword   = "rich"
	vectorID         = "custom-id-for-testing"
	vectorThumbprint = "4B95353E086AD37196606ACF834A14532F03E6DB"
)

// vectorContent returns Microsoft's encryptedContent and expected plaintext.
func vectorContent(tb testing.TB) (*EncryptedContent, []byte) {
	tb.Helper()
	var c EncryptedContent
	if err := json.Unmarshal(readVector(tb, "encrypted-content.json"), &c); err != nil {
		tb.Fatal(err)
	}
	return &c, readVector(tb, "plaintext.json")
}

// vectorKeys loads the vector's key in every way a user might have it.
func vectorKeys(tb testing.TB) map[string]Key {
	tb.Helper()
	pfx, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(readVector(tb, "certificate.p12.b64"))))
	if err != nil {
		tb.Fatal(err)
	}
	keys := make(map[string]Key)
	if keys["ParsePKCS12"], err = ParsePKCS12(pfx, vectorPassword); err != nil {
		tb.Fatalf("ParsePKCS12: %v", err)
	}
	pemData := append(readVector(tb, "private-key.pem"), readVector(tb, "certificate.pem")...)
	if keys["ParsePEM"], err = ParsePEM(pemData); err != nil {
		tb.Fatalf("ParsePEM: %v", err)
	}
	dir := tb.TempDir()
	files := map[string][]byte{"vector.pem": pemData, "vector.pfx": pfx, "vector.p12.b64": readVector(tb, "certificate.p12.b64")}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			tb.Fatal(err)
		}
		if keys["LoadFile "+name], err = LoadFile(p, vectorPassword); err != nil {
			tb.Fatalf("LoadFile(%s): %v", name, err)
		}
	}
	return keys
}

func TestMicrosoftVectorDecrypts(t *testing.T) {
	content, want := vectorContent(t)
	for source, k := range vectorKeys(t) {
		t.Run(source, func(t *testing.T) {
			if got := k.Thumbprint(); got != vectorThumbprint {
				t.Fatalf("Thumbprint() = %s, want %s", got, vectorThumbprint)
			}
			if k.Private.N.BitLen() != 4096 {
				t.Fatalf("key has %d bits, want 4096", k.Private.N.BitLen())
			}
			byID := k
			byID.ID = vectorID
			byThumb := k
			byThumb.ID = "" // matched by thumbprint only
			cases := []struct {
				name string
				key  Key
				c    EncryptedContent
			}{
				{"by id", byID, *content},
				{"by id without thumbprint", byID, EncryptedContent{Data: content.Data, DataKey: content.DataKey, DataSignature: content.DataSignature, EncryptionCertificateID: vectorID}},
				{"by thumbprint upper", byThumb, *content},
				{"by thumbprint lower", byThumb, func() EncryptedContent {
					c := *content
					c.EncryptionCertificateThumbprint = strings.ToLower(c.EncryptionCertificateThumbprint)
					return c
				}()},
				{"by thumbprint, unknown id", byThumb, func() EncryptedContent {
					c := *content
					c.EncryptionCertificateID = "some-other-id"
					c.EncryptionCertificateThumbprint = strings.ToLower(c.EncryptionCertificateThumbprint)
					return c
				}()},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ring := newRing(t, tc.key)
					got, err := ring.Decrypt(&tc.c)
					if err != nil {
						t.Fatalf("Decrypt: %v", err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("Decrypt = %d bytes, want the %d bytes of plaintext.json", len(got), len(want))
					}
				})
			}
		})
	}
}

// TestMicrosoftVectorSteps checks each step of the algorithm against the
// vector's intermediate values.
func TestMicrosoftVectorSteps(t *testing.T) {
	content, want := vectorContent(t)
	k := vectorKeys(t)["ParsePEM"]
	wantSym := vectorSymKey(t)
	sym, err := unwrapKey(k.Private, mustB64(t, content.DataKey))
	if err != nil {
		t.Fatalf("unwrapKey: %v", err)
	}
	if !bytes.Equal(sym, wantSym) {
		t.Fatalf("unwrapped key = %x, want %x", sym, wantSym)
	}
	mac := hmac.New(sha256.New, sym)
	mac.Write(mustB64(t, content.Data))
	if got := base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != content.DataSignature {
		t.Fatalf("HMAC = %s, want %s", got, content.DataSignature)
	}
	var w wire
	if err := w.decode(content); err != nil {
		t.Fatal(err)
	}
	pt, err := w.open(sym)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !bytes.Equal(pt, want) {
		t.Fatal("plaintext differs from plaintext.json")
	}
	for _, s := range []string{`"etag":"1625126194597"`, `"content":"Hello World"`} {
		if !bytes.Contains(pt, []byte(s)) {
			t.Errorf("plaintext lacks %s", s)
		}
	}
}

func TestMicrosoftVectorBarePrivateKey(t *testing.T) {
	content, want := vectorContent(t)
	k, err := ParsePEM(readVector(t, "private-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Certificate != nil || k.Thumbprint() != "" || k.EncryptionCertificate() != "" {
		t.Fatal("bare private key came back with a certificate")
	}
	if _, err := NewKeyRing(k); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("NewKeyRing(key without id or certificate) error = %v, want ErrKeyFile", err)
	}
	k.ID = vectorID
	ring := newRing(t, k)
	got, err := ring.Decrypt(content)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Decrypt by id with a bare key: err %v, plaintext match %v", err, bytes.Equal(got, want))
	}
	byThumb := *content
	byThumb.EncryptionCertificateID = ""
	if _, err := ring.Decrypt(&byThumb); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Decrypt by thumbprint with a bare key: error = %v, want ErrUnknownKey", err)
	}
}

func TestMicrosoftVectorWrongPassword(t *testing.T) {
	pfx := mustB64(t, string(bytes.TrimSpace(readVector(t, "certificate.p12.b64"))))
	const password = "not-rich-at-all"
	_, err := ParsePKCS12(pfx, password)
	if !errors.Is(err, ErrKeyPassword) || !errors.Is(err, ErrKeyFile) {
		t.Fatalf("ParsePKCS12(wrong password) error = %v, want ErrKeyPassword and ErrKeyFile", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error %q contains the password", err)
	}
}
