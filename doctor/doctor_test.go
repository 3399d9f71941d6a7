package doctor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/graphhook/graphhook/doctor"
	"github.com/graphhook/graphhook/handlers"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/standing"
)

const clientState = "doctor-test-client-state"

// testCA is a CA made for the test, standing in for the public roots.
type testCA struct {
	pool *x509.CertPool
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "graphhook doctor test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, key := issue(t, tmpl, nil)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{pool: pool, cert: cert, key: key}
}

// leaf issues a server certificate for localhost and 127.0.0.1.
func (ca *testCA) leaf(t *testing.T, validFor time.Duration) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, key := issue(t, tmpl, ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// issue makes a certificate from tmpl for a new P-256 key, signed by ca,
// or self-signed when ca is nil, and returns it (DER) with its key.
func issue(t *testing.T, tmpl *x509.Certificate, ca *testCA) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	parent, parentKey := tmpl, key
	if ca != nil {
		parent, parentKey = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// env is a correct graphhook receiver: receiver.New with a natspub sink on
// an in-process JetStream.
type env struct {
	ns  *server.Server
	rcv *receiver.Receiver
	ca  *testCA
}

func newEnv(t *testing.T, skipClientState bool) *env {
	t.Helper()
	ns, nc := natstest.Start(t)
	pub, err := natspub.New(t.Context(), natspub.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := receiver.Config{ClientStates: []string{clientState}, Sink: pub}
	if skipClientState {
		cfg = receiver.Config{InsecureSkipClientState: true, Sink: pub}
	}
	rcv, err := receiver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{ns: ns, rcv: rcv, ca: newCA(t)}
}

// serve serves the receiver (through wrap, the broken variant) on
// /notifications and /lifecycle, over TLS with the test CA unless plain.
func (e *env) serve(t *testing.T, wrap func(http.Handler) http.Handler, plain bool, versions ...uint16) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/notifications", e.rcv)
	mux.Handle("/lifecycle", e.rcv)
	srv := httptest.NewUnstartedServer(wrap(mux))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-chain case makes the client hang up
	if plain {
		srv.Start()
	} else {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{e.ca.leaf(t, 90*24*time.Hour)}}
		if len(versions) == 2 {
			srv.TLS.MinVersion, srv.TLS.MaxVersion = versions[0], versions[1]
		}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Scheme + "://localhost:" + u.Port()
}

func isHandshake(r *http.Request) bool { return r.URL.Query().Has("validationToken") }

// handshakeWith answers handshakes with f, and passes the rest on.
func handshakeWith(f http.HandlerFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isHandshake(r) {
				f(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestDoctor(t *testing.T) {
	same := func(h http.Handler) http.Handler { return h }
	hs := []string{doctor.CheckHandshake, doctor.CheckLifecycleHandshake}
	tests := []struct {
		name     string
		wrap     func(http.Handler) http.Handler
		plain    bool
		skipCS   bool          // a receiver that does not check clientState
		noRoots  bool          // the client trusts no root
		timeout  bool          // a short handshake budget, for the cold start
		tlsURL   bool          // an https URL for the plain server
		delivery time.Duration // DeliveryTimeout, when set
		wantWarn string        // a check that must warn
		query    string        // a query string on both URLs
		versions []uint16      // the server's TLS MinVersion and MaxVersion
		wantFail []string      // the checks that must fail (none for a correct receiver)
		wantText string        // in the first one's detail or fix
	}{
		{name: "correct receiver", wrap: same},
		{name: "URLs with a query string", wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("route") != "a+b" {
					http.Error(w, "the URL's own query was lost", http.StatusBadRequest)
					return
				}
				next.ServeHTTP(w, r)
			})
		}, query: "?route=a%2Bb"},
		{
			name: "auth layer in front",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Authorization") == "" {
						http.Error(w, "unauthorized", http.StatusUnauthorized)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			wantFail: append(hs, doctor.CheckClientState, doctor.CheckBodyLimit), wantText: "authentication layer",
		},
		{
			name: "answers OK",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "OK")
			}),
			wantFail: hs, wantText: `the body "OK" is not the token`,
		},
		{
			name: "answers HTML",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				io.WriteString(w, "<html><body>"+r.URL.Query().Get("validationToken")+"</body></html>")
			}),
			wantFail: hs, wantText: "the answer is HTML",
		},
		{
			name: "slow cold start",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done() // still starting when Graph gives up
			}),
			timeout:  true,
			wantFail: hs, wantText: "cold start",
		},
		{
			name: "wrong media type",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, r.URL.Query().Get("validationToken"))
			}),
			wantFail: hs, wantText: "Content-Type: text/plain",
		},
		{
			name: "token not decoded",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, strings.TrimPrefix(r.URL.RawQuery, "validationToken="))
			}),
			wantFail: hs, wantText: "still URL-encoded",
		},
		{
			name: "plus not decoded as space",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				tok, _ := url.PathUnescape(strings.TrimPrefix(r.URL.RawQuery, "validationToken="))
				io.WriteString(w, tok)
			}),
			wantFail: hs, wantText: "'+' must become a space",
		},
		{
			name: "HTML-escaped token",
			wrap: handshakeWith(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&#34;").Replace(r.URL.Query().Get("validationToken")))
			}),
			wantFail: hs, wantText: "HTML-escaped",
		},
		{name: "plain http", wrap: same, plain: true, wantFail: []string{doctor.CheckURL}, wantText: "Graph rejects"},
		{name: "https URL on a plain port", wrap: same, plain: true, tlsURL: true, wantFail: []string{doctor.CheckTLS}, wantText: "did not answer with TLS"},
		{
			name: "redirect",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, r.URL.Path+"/", http.StatusPermanentRedirect)
				})
			},
			wantFail: append(hs, doctor.CheckClientState, doctor.CheckBodyLimit), wantText: "does not follow redirects",
		},
		{
			name: "slow notification answers",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !isHandshake(r) {
						<-time.After(150 * time.Millisecond) // a publish that takes most of the budget
					}
					next.ServeHTTP(w, r)
				})
			},
			delivery: 250 * time.Millisecond, wantWarn: doctor.CheckAnswerTime,
		},
		{name: "untrusted chain", wrap: same, noRoots: true, wantFail: []string{doctor.CheckTLS}, wantText: "not trusted"},
		{name: "TLS 1.1 only", wrap: same, versions: []uint16{tls.VersionTLS10, tls.VersionTLS11}, wantFail: []string{doctor.CheckTLS}, wantText: "offers no TLS 1.2"},
		{name: "TLS 1.3 only", wrap: same, versions: []uint16{tls.VersionTLS13, tls.VersionTLS13}, wantWarn: doctor.CheckTLS12},
		{
			name: "lifecycle URL not routed",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/lifecycle" {
						http.NotFound(w, r)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			wantFail: []string{doctor.CheckLifecycleHandshake}, wantText: "route POST /lifecycle",
		},
		{
			name: "forged notification refused",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !isHandshake(r) {
						http.Error(w, "forbidden", http.StatusForbidden)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			wantFail: []string{doctor.CheckClientState, doctor.CheckBodyLimit}, wantText: "quarantine",
		},
		{
			name: "proxy body limit",
			wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.ContentLength > 1<<20 {
						http.Error(w, "too large", http.StatusRequestEntityTooLarge)
						return
					}
					next.ServeHTTP(w, r)
				})
			},
			wantFail: []string{doctor.CheckBodyLimit}, wantText: "client_max_body_size",
		},
		{name: "clientState not checked", wrap: same, skipCS: true, wantFail: []string{doctor.CheckNotPublished}, wantText: "does not check clientState"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.skipCS)
			base := e.serve(t, tt.wrap, tt.plain, tt.versions...)
			cfg := doctor.Config{
				URL: base + "/notifications" + tt.query, LifecycleURL: base + "/lifecycle" + tt.query,
				RootCAs: e.ca.pool, NATS: natstest.Connect(t, e.ns.ClientURL()),
			}
			if tt.plain {
				cfg.LifecycleURL = ""
			}
			if tt.tlsURL {
				cfg.URL = strings.Replace(cfg.URL, "http://", "https://", 1)
			}
			if tt.delivery > 0 {
				cfg.DeliveryTimeout = tt.delivery
			}
			if tt.noRoots {
				cfg.RootCAs = x509.NewCertPool()
			}
			if tt.timeout {
				cfg.HandshakeTimeout = 300 * time.Millisecond
			}
			var progress []string
			var lines strings.Builder
			cfg.Progress = func(c doctor.Check) {
				progress = append(progress, c.ID)
				c.WriteLine(&lines)
			}
			rep, err := doctor.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + text.String())
			if len(progress) != len(rep.Checks) {
				t.Errorf("progress reported %d checks, report has %d", len(progress), len(rep.Checks))
			}
			// Progress lines and the summary make up the text, less its header.
			rep.WriteSummary(&lines)
			header := 1
			if cfg.LifecycleURL != "" {
				header = 2
			}
			if body := strings.SplitN(text.String(), "\n", header+1)[header]; lines.String() != body {
				t.Errorf("progress output differs from the report:\n%s", lines.String())
			}
			for _, c := range rep.Checks {
				if c.Status == doctor.Fail && !slices.Contains(tt.wantFail, c.ID) {
					t.Errorf("check %s failed: %s", c.ID, c.Detail)
				}
				if (c.Status == doctor.Fail || c.Status == doctor.Warn) && c.Fix == "" {
					t.Errorf("check %s: %s without a fix", c.ID, c.Status)
				}
			}
			if tt.wantWarn != "" {
				if c, _ := rep.Check(tt.wantWarn); c.Status != doctor.Warn {
					t.Errorf("check %s: %+v, want a warning", tt.wantWarn, c)
				}
				if !rep.OK() {
					t.Errorf("a warning failed the report")
				}
				return
			}
			if len(tt.wantFail) == 0 {
				if !rep.OK() || !strings.Contains(text.String(), "0 failed") {
					t.Fatalf("correct receiver not OK")
				}
				for _, id := range []string{doctor.CheckURL, doctor.CheckTLS, doctor.CheckTLS12, doctor.CheckHandshake,
					doctor.CheckLifecycleHandshake, doctor.CheckClientState, doctor.CheckNotPublished, doctor.CheckAnswerTime, doctor.CheckBodyLimit} {
					if c, ok := rep.Check(id); !ok || c.Status != doctor.Pass {
						t.Errorf("check %s: %+v, want pass", id, c)
					}
				}
				if c, _ := rep.Check(doctor.CheckDNS); c.Status != doctor.Warn || !strings.Contains(c.Detail, "loopback") {
					t.Errorf("localhost resolves to loopback, want a warning: %+v", c)
				}
				return
			}
			for _, id := range tt.wantFail {
				if c, ok := rep.Check(id); !ok || c.Status != doctor.Fail {
					t.Errorf("check %s: %+v, want fail", id, c)
				}
			}
			c, _ := rep.Check(tt.wantFail[0])
			if !strings.Contains(c.Detail+" "+c.Fix, tt.wantText) {
				t.Errorf("check %s says %q / %q, want %q", c.ID, c.Detail, c.Fix, tt.wantText)
			}
			if rep.OK() || !strings.Contains(text.String(), "fix: "+c.Fix) {
				t.Errorf("failure not in the report text")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name      string
		cfg       doctor.Config
		wantField string
		wantErr   error
	}{
		{"no URL", doctor.Config{}, "URL", doctor.ErrInvalidConfig},
		{"relative URL", doctor.Config{URL: "/notifications"}, "URL", doctor.ErrInvalidConfig},
		{"ftp URL", doctor.Config{URL: "ftp://example.com/x"}, "URL", doctor.ErrInvalidConfig},
		{"bad lifecycle URL", doctor.Config{URL: "https://example.com/n", LifecycleURL: "example.com"}, "LifecycleURL", doctor.ErrInvalidConfig},
		{"negative timeout", doctor.Config{URL: "https://example.com/n", HandshakeTimeout: -1}, "HandshakeTimeout", doctor.ErrInvalidConfig},
		{"valid", doctor.Config{URL: "https://example.com/n"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				return
			}
			var ce *doctor.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.wantField || !strings.HasPrefix(err.Error(), "doctor: Config."+tt.wantField+": ") {
				t.Fatalf("error %q, want a ConfigError for %s", err, tt.wantField)
			}
			t.Log(err)
			if _, err := doctor.Run(t.Context(), tt.cfg); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

func TestUnresolvableNameSkipsTheRest(t *testing.T) {
	// A resolver with no DNS server behind it: the test needs no network.
	offline := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, errors.New("no DNS server in this test")
	}}
	rep, err := doctor.Run(t.Context(), doctor.Config{URL: "https://graphhook-doctor-test.invalid/notifications", Resolver: offline})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := rep.Check(doctor.CheckDNS)
	if c.Status != doctor.Fail || !strings.Contains(c.Fix, "DNS record") {
		t.Fatalf("dns check %+v", c)
	}
	for _, c := range rep.Checks[2:] {
		if c.Status != doctor.Skip {
			t.Errorf("check %s ran: %s", c.ID, c.Status)
		}
	}
}

func TestExpiringCertificateWarns(t *testing.T) {
	e := newEnv(t, false)
	mux := http.NewServeMux()
	mux.Handle("/notifications", e.rcv)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{e.ca.leaf(t, 3*24*time.Hour)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	rep, err := doctor.Run(t.Context(), doctor.Config{URL: "https://localhost:" + u.Port() + "/notifications", RootCAs: e.ca.pool, MaxBodyBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := rep.Check(doctor.CheckTLS); c.Status != doctor.Warn || !strings.Contains(c.Fix, "renew") {
		t.Fatalf("tls check %+v", c)
	}
	if c, _ := rep.Check(doctor.CheckNotPublished); c.Status != doctor.Skip {
		t.Errorf("not-published without NATS: %+v", c)
	}
	if !rep.OK() {
		t.Errorf("report not OK: %+v", rep.Failed())
	}
}

// TestDoctorPassesTheEchoAdapter runs the doctor against the daemon's stack:
// the receiver mounted on Echo by handlers.Register, with the standing
// middleware in front, so the checks also see Echo's routing and body limit.
func TestDoctorPassesTheEchoAdapter(t *testing.T) {
	e := newEnv(t, false)
	app := echo.New()
	handlers.Register(app, e.rcv, handlers.Config{})
	mon, err := standing.New(standing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mon.MiddlewareByPath(map[string]string{"/notifications": "notifications", "/lifecycle": "lifecycle"})(app))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{e.ca.leaf(t, 90*24*time.Hour)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	base := "https://localhost:" + u.Port()
	rep, err := doctor.Run(t.Context(), doctor.Config{
		URL: base + "/notifications", LifecycleURL: base + "/lifecycle",
		RootCAs: e.ca.pool, NATS: natstest.Connect(t, e.ns.ClientURL()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var text strings.Builder
		rep.WriteText(&text)
		t.Fatalf("doctor fails the Echo stack:\n%s", text.String())
	}
	// The doctor's six notifications (five timed, one at the body limit) were
	// counted, its handshakes were not.
	if st, _ := mon.Snapshot().Endpoint("notifications"); st.Responses != 6 || st.Failed != 0 {
		t.Errorf("standing counted %+v", st)
	}
}
