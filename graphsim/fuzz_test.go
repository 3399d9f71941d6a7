package graphsim_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/graphsim"
)

// FuzzCreateSubscription feeds arbitrary bodies to POST /v1.0/subscriptions:
// the answer must be a Graph-shaped 201 or 4xx, never a 5xx or a panic.
func FuzzCreateSubscription(f *testing.F) {
	f.Add([]byte(`{"changeType":"created","notificationUrl":"http://127.0.0.1:1/x","resource":"me/messages","expirationDateTime":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"changeType":"created","notificationUrl":"http://127.0.0.1:1/x","resource":"users/a/messages","expirationDateTime":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"changeType":"created,updated","resource":"teams('a')/channels('b')/messages","includeResourceData":true,"encryptionCertificate":"AAAA","encryptionCertificateId":"x"}`))
	f.Add([]byte(`{"expirationDateTime":"not a date"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"clientState":` + `"` + strings.Repeat("x", 200) + `"}`))
	cfg := fastConfig()
	cfg.HandshakeTimeout = 50_000_000 // 50 ms
	s, err := graphsim.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	token, err := s.AccessToken(graphsim.DefaultAppID, "") // a registered app with every permission
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1.0/subscriptions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code != http.StatusCreated && !strings.Contains(w.Body.String(), `"innerError"`) {
			t.Fatalf("status %d without Graph's error body: %s", w.Code, w.Body)
		}
	})
}

// FuzzHandshakeURL checks that the token survives the encoding Graph uses
// (form encoding, lower-case escapes) and that the URL's own query is kept.
func FuzzHandshakeURL(f *testing.F) {
	f.Add("https://example.com/notify?tenant=a&b=c", graphsim.ValidationTokenPrefix+"336960d6-1c2b-4a38-9d5e-0a1b2c3d4e5f")
	f.Add("http://127.0.0.1:8080/", "a+b&c=d%3A<'>\"")
	f.Fuzz(func(t *testing.T, raw, token string) {
		u, err := graphsim.HandshakeURL(raw, token)
		if err != nil {
			return
		}
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatalf("HandshakeURL made an unparsable URL %q: %v", u, err)
		}
		vals := parsed.Query()["validationToken"]
		if len(vals) == 0 || vals[len(vals)-1] != token {
			t.Fatalf("token %q came back as %q from %q", token, vals, u)
		}
	})
}

// FuzzGzipBody feeds arbitrary gzip-declared bodies to POST
// /v1.0/subscriptions: corrupt or oversized streams are 400 or 413, never a
// 5xx or a panic.
func FuzzGzipBody(f *testing.F) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"changeType":"created"}`))
	zw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Add([]byte("plain"))
	s, err := graphsim.New(fastConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	token, err := s.AccessToken(graphsim.DefaultAppID, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1.0/subscriptions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Encoding", "gzip")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code == http.StatusCreated {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

// FuzzTokenEndpoint feeds arbitrary client assertions and secrets to the
// token endpoint: only the registered secret gets a token; nothing panics
// or answers 5xx.
func FuzzTokenEndpoint(f *testing.F) {
	f.Add("app", "secret", "")
	f.Add("app", "", "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCIsIng1dCNTMjU2IjoiQUFBQSJ9.eyJhdWQiOiJ4In0.c2ln")
	f.Add("app", "", "a.b.c")
	f.Add("", "", "")
	cfg := fastConfig()
	cfg.Apps = []graphsim.App{{ClientID: "app", Secret: "the-secret"}}
	s, err := graphsim.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	f.Fuzz(func(t *testing.T, clientID, secret, assertion string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {"https://graph.microsoft.com/.default"}}
		if secret != "" {
			form.Set("client_secret", secret)
		}
		if assertion != "" {
			form.Set("client_assertion", assertion)
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		}
		req := httptest.NewRequest("POST", "/common/oauth2/v2.0/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		granted := w.Code == http.StatusOK
		if granted != (strings.EqualFold(clientID, "app") && secret == "the-secret" && assertion == "") {
			t.Fatalf("client %q secret %q assertion %q: status %d", clientID, secret, assertion, w.Code)
		}
	})
}
