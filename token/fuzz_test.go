package token_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/token"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// FuzzValidationToken feeds arbitrary strings as a batch's only validation
// token. Every input must give an error (and never a panic) unless it is
// one of the two valid tokens minted here, which must validate; error text must
// not echo the input. Seeds: f.Add below plus
// testdata/fuzz/FuzzValidationToken. Run longer with
//
//	go test -run '^$' -fuzz FuzzValidationToken -fuzztime 300000x ./token/
//
// (a count, not a duration: duration-based -fuzztime can end in a spurious
// "context deadline exceeded" on Go 1.26, golang/go#75804).
func FuzzValidationToken(f *testing.F) {
	key, v := readyValidator(f, token.Config{
		Now:                func() time.Time { return t0 },
		MinRefreshInterval: time.Hour, // at most one unknown-kid refresh per run
	})
	valid := key.mint(f, v2Claims(tenantA, t0))
	validV1 := key.mint(f, v1Claims(tenantA, t0))
	for _, tok := range []string{valid, validV1} {
		if err := v.Validate(f.Context(), []string{tok}, []string{tenantA}); err != nil {
			f.Fatalf("valid seed: %v", err)
		}
	}
	isValid := func(s string) bool { return sameJWS(s, valid) || sameJWS(s, validV1) }

	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.kid); err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(validV1)
	f.Add(key.mint(f, with(v1Claims(tenantA, t0), "appid", otherApp)))
	f.Add(signRaw(f, key, `{"aud":"`+appID+`","exp":"not a number","tid":"`+tenantA+`"}`))
	f.Add(signRaw(f, key, `[1,2,3]`))
	f.Add(algNone(f, key.kid, v2Claims(tenantA, t0)))
	f.Add(signWith(f, v2Claims(tenantA, t0), jwt.WithKey(jwa.HS256(), []byte("secret"), jws.WithProtectedHeaders(hdr))))
	f.Add(tamper(f, valid, "aud", otherApp))
	f.Add(valid + "." + valid)
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add(`{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJSUzI1NiJ9","signature":""}]}`)

	f.Fuzz(func(t *testing.T, s string) {
		err := v.Validate(t.Context(), []string{s}, []string{tenantA})
		if err == nil {
			if !isValid(s) {
				t.Fatalf("accepted a token that is not the minted one")
			}
			return
		}
		if isValid(s) {
			t.Fatalf("rejected the valid token: %v", err)
		}
		if errors.Is(err, token.ErrUnavailable) {
			t.Fatalf("Validate() = %v: keys are loaded and the endpoint is up", err)
		}
		var te *token.Error
		if !errors.As(err, &te) {
			t.Fatalf("error %T is not *token.Error", err)
		}
		if len(s) >= 16 && strings.Contains(err.Error(), s) {
			t.Fatalf("error text contains the input")
		}
	})
}

// signRaw signs an arbitrary payload with RS256 and the signer's kid.
func signRaw(tb testing.TB, s *signer, payload string) string {
	tb.Helper()
	b, err := jws.Sign([]byte(payload), jws.WithKey(jwa.RS256(), s.key))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// sameJWS reports whether a and b are the same compact JWS up to base64
// spelling (unused trailing bits), which decodes to the same bytes.
func sameJWS(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		return false
	}
	for i := range pa {
		da, erra := base64.RawURLEncoding.DecodeString(pa[i])
		db, errb := base64.RawURLEncoding.DecodeString(pb[i])
		if erra != nil || errb != nil || !bytes.Equal(da, db) {
			return false
		}
	}
	return true
}
