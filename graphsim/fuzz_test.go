package graphsim_test

import (
	"bytes"
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
	token, err := s.AccessToken("fuzz-app", "")
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
