package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with common
// name cn to dir/tls.crt and dir/tls.key, stamped with mtime.
func writeCert(t *testing.T, dir, cn string, mtime time.Time) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for _, f := range []struct {
		path string
		data []byte
	}{
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func commonName(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestCertReloaderFollowsFileChangesAndKeepsCertOnBadFiles(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	certFile, keyFile := writeCert(t, dir, "first", t0)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	get := func() string {
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return commonName(t, c)
	}
	if got := get(); got != "first" {
		t.Fatalf("cert %q, want first", got)
	}

	writeCert(t, dir, "second", t0.Add(time.Minute))
	if got := get(); got != "first" {
		t.Errorf("cert %q right after the change, want first: files are looked at most every %v", got, certCheckInterval)
	}
	now = now.Add(certCheckInterval)
	if got := get(); got != "second" {
		t.Errorf("cert %q after the interval, want second", got)
	}

	// A half-written renewal keeps the current certificate.
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\ngarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(certCheckInterval)
	if got := get(); got != "second" {
		t.Errorf("cert %q after a broken key file, want second", got)
	}
	if err := r.Reload(); err == nil {
		t.Error("Reload of a broken pair returned nil")
	}
}

// TestHTTPSWithTLS12MinimumAndSIGHUPReload runs the receiver with
// --tls-cert/--tls-key, checks TLS 1.1 is refused, then replaces the files
// and sends SIGHUP.
func TestHTTPSWithTLS12MinimumAndSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	certFile, keyFile := writeCert(t, dir, "before-hup", t0)
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", "a-long-enough-client-state-value", "--tls-cert", certFile, "--tls-key", keyFile), nil)
	if got := p.base[:8]; got != "https://" {
		t.Fatalf("banner URL %s, want https", p.base)
	}
	peer := func(maxVersion uint16) (string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.base+"/healthz", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName, nil
	}
	if _, err := peer(tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 client was served; the minimum is TLS 1.2")
	}
	if cn, err := peer(tls.VersionTLS12); err != nil || cn != "before-hup" {
		t.Fatalf("TLS 1.2: %q %v, want before-hup", cn, err)
	}

	writeCert(t, dir, "after-hup", t0) // same mtime: only SIGHUP can reveal it
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 10*time.Second, func() error {
		cn, err := peer(0)
		if err == nil && cn != "after-hup" {
			err = fmt.Errorf("still serving %q", cn)
		}
		return err
	})
}
