package testkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

func TestWebhookKeepsJSONBodiesAndLetsRespondAnswer(t *testing.T) {
	var h Webhook[map[string]int]
	srv := httptest.NewServer(&h)
	t.Cleanup(srv.Close)
	post := func(body string) int {
		t.Helper()
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(`{"a":1}`); st != http.StatusAccepted {
		t.Fatalf("JSON body: %d, want 202", st)
	}
	if st := post(`not json`); st != http.StatusBadRequest {
		t.Fatalf("malformed body: %d, want 400", st)
	}
	h.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if n != 3 || string(body) != `{"b":2}` {
			t.Errorf("respond saw request %d with %q", n, body)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	if st := post(`{"b":2}`); st != http.StatusServiceUnavailable {
		t.Fatalf("answered by respond: %d, want 503", st)
	}
	if got := h.Bodies(); len(got) != 1 || got[0]["a"] != 1 {
		t.Fatalf("bodies %v, want only the first", got)
	}
	if n := h.Posts(); n != 3 {
		t.Fatalf("posts %d, want 3", n)
	}
}

func TestVerifyJWSReturnsTheClaims(t *testing.T) {
	_, priv := ClientCert(t, "signer")
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: "k1", jwk.AlgorithmKey: jwa.RS256()} {
		if err := key.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := jws.Sign([]byte(`{"sub":"me"}`), jws.WithKey(jwa.RS256(), key))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	if claims := VerifyJWS(t, set, string(tok)); claims["sub"] != "me" {
		t.Fatalf("claims %v", claims)
	}
}

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(90 * time.Minute)
	if got := c.Now(); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("after Advance: %v", got)
	}
}

func TestClientCertIsSelfSignedForCN(t *testing.T) {
	cert, key := ClientCert(t, "app-1")
	if cert.Subject.CommonName != "app-1" || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) != nil || !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("certificate %v: not a self-signed certificate of the returned key", cert.Subject)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		t.Fatalf("not valid now: %v to %v", cert.NotBefore, cert.NotAfter)
	}
}
