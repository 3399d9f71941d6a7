package graphsim_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/graphsim"
)

func TestStartTLSServesWithTrustedCA(t *testing.T) {
	s := newSimUnstarted(t, fastConfig())
	u, pool, err := s.StartTLS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "https://127.0.0.1:") || s.URL() != u {
		t.Fatalf("url %q, URL() %q", u, s.URL())
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := trusting.Get(s.JWKSURL())
	if err != nil {
		t.Fatalf("GET over TLS with the CA pool: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// The same host name through localhost, which the certificate names too.
	if resp, err := trusting.Get(strings.Replace(s.JWKSURL(), "127.0.0.1", "localhost", 1)); err != nil {
		t.Errorf("GET via localhost: %v", err)
	} else {
		resp.Body.Close()
	}
	// Without the CA the system roots refuse the certificate.
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get(s.JWKSURL()); err == nil {
		t.Error("a client without the CA accepted the simulator's certificate")
	}
	// The PEM holds the same CA.
	pemBytes, err := s.CACertPEM()
	if err != nil {
		t.Fatal(err)
	}
	p2 := x509.NewCertPool()
	if !p2.AppendCertsFromPEM(pemBytes) {
		t.Fatal("CACertPEM is not PEM")
	}
	c2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p2}}}
	if resp, err := c2.Get(s.JWKSURL()); err != nil {
		t.Errorf("GET with the PEM's pool: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name      string
		cfg       graphsim.Config
		wantField string
		wantErr   error
	}{
		{"token version", graphsim.Config{TokenVersion: "3.0"}, "TokenVersion", graphsim.ErrInvalidValue},
		{"time scale", graphsim.Config{TimeScale: -1}, "TimeScale", graphsim.ErrInvalidValue},
		{"wording", graphsim.Config{ExpirationWording: "hours"}, "ExpirationWording", graphsim.ErrInvalidValue},
		{"app without id", graphsim.Config{Apps: []graphsim.App{{Secret: "s"}}}, "Apps[0].ClientID", graphsim.ErrAppRegistration},
		{"duplicate app", graphsim.Config{Apps: []graphsim.App{{ClientID: "a", Secret: "s"}, {ClientID: "A", Secret: "t"}}}, "Apps[1].ClientID", graphsim.ErrAppRegistration},
		{"app without credential", graphsim.Config{Apps: []graphsim.App{{ClientID: "a"}}}, "Apps[0]", graphsim.ErrAppRegistration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range []error{tc.cfg.Validate(), func() error { _, err := graphsim.New(tc.cfg); return err }()} {
				ce, ok := errors.AsType[*graphsim.ConfigError](err)
				if !ok || ce.Field != tc.wantField || !errors.Is(err, tc.wantErr) {
					t.Errorf("err %v, want ConfigError on %s wrapping %v", err, tc.wantField, tc.wantErr)
				}
			}
		})
	}
	if err := (graphsim.Config{Apps: []graphsim.App{{ClientID: "a", Secret: "very-secret"}, {ClientID: "a", Secret: "very-secret"}}}).Validate(); err == nil || strings.Contains(err.Error(), "very-secret") {
		t.Errorf("error %v quotes the secret", err)
	}
	if err := (graphsim.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}
