package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, the certificate files' mtimes
// are looked at during handshakes.
const certCheckInterval = 2 * time.Second

// certReloader serves a TLS certificate from files and reloads it when the
// files change (checked at most every certCheckInterval during handshakes)
// or when Reload is called (on SIGHUP). A reload that fails keeps the
// current certificate and logs why, so a half-written renewal never takes
// the endpoint down.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	lastCheck time.Time
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// newCertReloader loads the pair once; it fails if the files cannot be used.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads both files and replaces the certificate.
func (r *certReloader) load() error {
	cs, err := stampOf(r.certFile)
	if err != nil {
		return err
	}
	ks, err := stampOf(r.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cert, r.certStamp, r.keyStamp, r.lastCheck = &cert, cs, ks, r.now()
	r.mu.Unlock()
	if leaf := cert.Leaf; leaf != nil {
		r.log.Info("TLS certificate loaded", "file", r.certFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	return nil
}

// Reload reloads the files now, keeping the current certificate on failure.
func (r *certReloader) Reload() error {
	if err := r.load(); err != nil {
		r.log.Warn("TLS certificate reload failed; keeping the current certificate", "file", r.certFile, "error", err)
		return fmt.Errorf("reload TLS certificate: %w", err)
	}
	return nil
}

// GetCertificate is the tls.Config callback. It returns the cached
// certificate, reloading it first when the files changed.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	now := r.now()
	check := now.Sub(r.lastCheck) >= certCheckInterval
	if check {
		r.lastCheck = now
	}
	cert, cs0, ks0 := r.cert, r.certStamp, r.keyStamp
	r.mu.Unlock()
	if !check {
		return cert, nil
	}
	cs, err1 := stampOf(r.certFile)
	ks, err2 := stampOf(r.keyFile)
	if err1 != nil || err2 != nil || (cs == cs0 && ks == ks0) {
		return cert, nil
	}
	if r.Reload() == nil {
		r.mu.Lock()
		cert = r.cert
		r.mu.Unlock()
	}
	return cert, nil
}

// TLSConfig returns a server configuration using r, TLS 1.2 or later.
func (r *certReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
