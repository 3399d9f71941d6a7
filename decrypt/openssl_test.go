package decrypt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests check interoperability with an independent implementation of
// the same primitives: the openssl command line.

type opensslCLI struct {
	t    *testing.T
	path string
	dir  string
}

func newOpenSSL(t *testing.T) *opensslCLI {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not on PATH: interop with an independent implementation is not tested")
	}
	return &opensslCLI{t: t, path: p, dir: t.TempDir()}
}

// run runs openssl in the temp dir and returns its stdout.
func (o *opensslCLI) run(args ...string) []byte {
	o.t.Helper()
	cmd := exec.CommandContext(o.t.Context(), o.path, args...)
	cmd.Dir = o.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		o.t.Fatalf("openssl %s: %v\n%s", args[0], err, stderr.Bytes())
	}
	return out
}

func (o *opensslCLI) write(name string, data []byte) {
	o.t.Helper()
	if err := os.WriteFile(filepath.Join(o.dir, name), data, 0o600); err != nil {
		o.t.Fatal(err)
	}
}

func (o *opensslCLI) read(name string) []byte {
	o.t.Helper()
	b, err := os.ReadFile(filepath.Join(o.dir, name))
	if err != nil {
		o.t.Fatal(err)
	}
	return b
}

func (o *opensslCLI) file(name string) string { return filepath.Join(o.dir, name) }

var oaepSHA1 = []string{"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"}

// plaintexts covers a partial last block, an exact multiple of the block
// size (a whole padding block) and a 2 KiB resource.
func interopPlaintexts() map[string][]byte {
	large := make([]byte, 2048)
	rand.Read(large)
	return map[string][]byte{
		"short":   []byte(`{"id":"1","body":"Hello World"}`),
		"aligned": bytes.Repeat([]byte("0123456789abcdef"), 2),
		"2KiB":    []byte(base64.StdEncoding.EncodeToString(large))[:2048],
	}
}

func TestOpenSSLEncryptsPackageDecrypts(t *testing.T) {
	o := newOpenSSL(t)
	k, err := generated2048()
	if err != nil {
		t.Fatal(err)
	}
	k.ID = "openssl-id"
	o.write("cert.pem", pemBlock("CERTIFICATE", k.Certificate.Raw))
	o.run("x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem")
	ring, err := NewKeyRing(Key{Private: k.Private, Certificate: k.Certificate}) // thumbprint only
	if err != nil {
		t.Fatal(err)
	}
	wraps := map[string][]string{
		"certin": {"-certin", "-inkey", "cert.pem"},
		"pubin":  {"-pubin", "-inkey", "pub.pem"},
	}
	for wrapName, wrapArgs := range wraps {
		for ptName, pt := range interopPlaintexts() {
			t.Run(wrapName+"/"+ptName, func(t *testing.T) {
				o.write("pt.bin", pt)
				o.run("rand", "-out", "k.bin", "32")
				sym := o.read("k.bin")
				hexKey := hex.EncodeToString(sym)
				o.run(append(append([]string{"pkeyutl", "-encrypt"}, wrapArgs...), append(oaepSHA1, "-in", "k.bin", "-out", "dk.bin")...)...)
				o.run("enc", "-aes-256-cbc", "-K", hexKey, "-iv", hexKey[:32], "-in", "pt.bin", "-out", "ct.bin")
				o.run("dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hexKey, "-binary", "-out", "sig.bin", "ct.bin")

				c := &EncryptedContent{
					Data:                            base64.StdEncoding.EncodeToString(o.read("ct.bin")),
					DataSignature:                   base64.StdEncoding.EncodeToString(o.read("sig.bin")),
					DataKey:                         base64.StdEncoding.EncodeToString(o.read("dk.bin")),
					EncryptionCertificateThumbprint: strings.ToLower(k.Thumbprint()),
				}
				got, err := Content(k.Private, c)
				if err != nil {
					t.Fatalf("Content: %v", err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("Content = %d bytes, want the %d bytes openssl encrypted", len(got), len(pt))
				}
				got, err = ring.Decrypt(c)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("KeyRing.Decrypt: %v (match %v)", err, bytes.Equal(got, pt))
				}
			})
		}
	}
}

func TestPackageEncryptsOpenSSLDecrypts(t *testing.T) {
	o := newOpenSSL(t)
	k, err := generated2048()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	o.write("key.pem", keyPEM)
	for name, pt := range interopPlaintexts() {
		t.Run(name, func(t *testing.T) {
			c, err := encrypt(k.Certificate, "pkg-id", pt)
			if err != nil {
				t.Fatal(err)
			}
			o.write("dk.bin", mustB64(t, c.DataKey))
			o.write("ct.bin", mustB64(t, c.Data))
			o.run(append([]string{"pkeyutl", "-decrypt", "-inkey", "key.pem"}, append(oaepSHA1, "-in", "dk.bin", "-out", "k.bin")...)...)
			sym := o.read("k.bin")
			if len(sym) != 32 {
				t.Fatalf("openssl unwrapped a %d-byte key, want 32", len(sym))
			}
			hexKey := hex.EncodeToString(sym)
			sig := o.run("dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hexKey, "-binary", "ct.bin")
			if !bytes.Equal(sig, mustB64(t, c.DataSignature)) {
				t.Fatal("openssl's HMAC-SHA256 of the ciphertext differs from dataSignature")
			}
			got := o.run("enc", "-d", "-aes-256-cbc", "-K", hexKey, "-iv", hexKey[:32], "-in", "ct.bin")
			if !bytes.Equal(got, pt) {
				t.Fatalf("openssl decrypted %d bytes, want the %d bytes encrypted", len(got), len(pt))
			}
		})
	}
}

// Keys as openssl writes them load, and the thumbprint agrees with
// openssl's SHA-1 fingerprint.
func TestOpenSSLKeyFilesLoad(t *testing.T) {
	o := newOpenSSL(t)
	o.run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "pkcs8.pem", "-out", "cert.pem",
		"-subj", "/CN=openssl-interop", "-days", "2")
	o.run("rsa", "-in", "pkcs8.pem", "-traditional", "-out", "pkcs1.pem")
	const password = "interop-pass"
	o.run("pkcs12", "-export", "-inkey", "pkcs8.pem", "-in", "cert.pem", "-passout", "pass:"+password, "-out", "modern.pfx")
	fp := string(o.run("x509", "-in", "cert.pem", "-noout", "-fingerprint", "-sha1"))
	_, fp, _ = strings.Cut(strings.TrimSpace(fp), "=")
	wantThumb := strings.ReplaceAll(fp, ":", "")
	if len(wantThumb) != 40 {
		t.Fatalf("cannot read openssl fingerprint %q", fp)
	}
	cert := o.read("cert.pem")
	if !bytes.Contains(o.read("pkcs8.pem"), []byte("BEGIN PRIVATE KEY")) || !bytes.Contains(o.read("pkcs1.pem"), []byte("BEGIN RSA PRIVATE KEY")) {
		t.Fatal("openssl did not write the expected PKCS#8 and PKCS#1 files")
	}
	o.write("pkcs8+cert.pem", append(o.read("pkcs8.pem"), cert...))
	o.write("cert+pkcs1.pem", append(cert, o.read("pkcs1.pem")...))

	var first Key
	for _, name := range []string{"pkcs8+cert.pem", "cert+pkcs1.pem", "modern.pfx"} {
		t.Run(name, func(t *testing.T) {
			k, err := LoadFile(o.file(name), password)
			if err != nil {
				t.Fatal(err)
			}
			if k.Thumbprint() != wantThumb {
				t.Fatalf("Thumbprint() = %s, openssl says %s", k.Thumbprint(), wantThumb)
			}
			if first.Private == nil {
				first = k
			} else if !first.Private.Equal(k.Private) {
				t.Fatal("the files hold different keys")
			}
			c, err := encrypt(k.Certificate, "x", []byte(fmt.Sprintf("loaded from %s", name)))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Content(k.Private, c); err != nil || string(got) != "loaded from "+name {
				t.Fatalf("round trip: %q, %v", got, err)
			}
		})
	}
}
