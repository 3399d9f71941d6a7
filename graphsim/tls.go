package graphsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certAuthority is the simulator's own certificate authority: a CA that
// exists only in memory and a server certificate it issued for 127.0.0.1,
// ::1 and localhost. Clients trust the simulator by adding the CA to a
// cert pool ([Sim.StartTLS] returns one) or with curl --cacert on the PEM
// of [Sim.CACertPEM].
type certAuthority struct {
	caPEM []byte
	pool  *x509.CertPool
	leaf  tls.Certificate
}

// newCertAuthority generates a fresh P-256 CA and server certificate,
// valid from an hour ago for a year (the simulated clock may be advanced;
// TLS uses the wall clock).
func newCertAuthority(hosts []string) (*certAuthority, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("graphsim: generate CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "graphsim local CA", Organization: []string{"graphsim"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: create CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("graphsim: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "graphsim", Organization: []string{"graphsim"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range append([]string{"127.0.0.1", "::1", "localhost"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: create server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &certAuthority{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:  pool,
		leaf:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// StartTLS is [Sim.Start] over HTTPS: it serves [Sim.Handler] on addr with
// a server certificate for 127.0.0.1, ::1 and localhost (plus
// Config.TLSHosts) issued by a CA the simulator generated, and returns
// the base URL ("https://127.0.0.1:41234") and a pool holding that CA, for
// a client's tls.Config.RootCAs. The CA's PEM is [Sim.CACertPEM].
//
// Identity clients such as azidentity accept only https authority hosts,
// so this is how tests point them at the simulator.
func (s *Sim) StartTLS(addr string) (string, *x509.CertPool, error) {
	ca, err := s.authority()
	if err != nil {
		return "", nil, err
	}
	u, err := s.start(addr, &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", nil, err
	}
	return u, ca.pool, nil
}

// CACertPEM returns the PEM of the CA that issued the certificate of
// [Sim.StartTLS], generating it on first use. Write it to a file for
// curl --cacert or another process's cert pool.
func (s *Sim) CACertPEM() ([]byte, error) {
	ca, err := s.authority()
	if err != nil {
		return nil, err
	}
	return ca.caPEM, nil
}

// CertPool returns a pool holding the CA of [Sim.CACertPEM].
func (s *Sim) CertPool() (*x509.CertPool, error) {
	ca, err := s.authority()
	if err != nil {
		return nil, err
	}
	return ca.pool, nil
}

// authority returns the simulator's CA, generating it once.
func (s *Sim) authority() (*certAuthority, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ca == nil {
		ca, err := newCertAuthority(s.cfg.TLSHosts)
		if err != nil {
			return nil, err
		}
		s.ca = ca
	}
	return s.ca, nil
}
