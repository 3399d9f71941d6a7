package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/graphhook/graphhook/token"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ExampleNew validates a rich-notification batch's validationTokens against
// a local stand-in for the Microsoft identity key endpoint, and shows how a
// receiver maps the result onto its answer to Graph.
func ExampleNew() {
	const (
		ourAppID = "11111111-2222-3333-4444-555555555555"
		tenant   = "aaaaaaaa-0000-0000-0000-000000000001"
	)
	ctx := context.Background()

	// The key endpoint: in production, login.microsoftonline.com (the
	// default); here an httptest server publishing one RSA key.
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	pub, _ := jwk.Import(&priv.PublicKey)
	_ = pub.Set(jwk.KeyIDKey, "key-1")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer jwks.Close()

	v, err := token.New(ctx, token.Config{
		AppIDs:    []string{ourAppID}, // aud: the app that owns the subscriptions
		TenantIDs: []string{tenant},   // empty would accept any tenant
		JWKSURL:   jwks.URL,           // omit in production
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	// New never blocks on the key endpoint; wait briefly at start-up if
	// you prefer, otherwise batches are answered 503 until keys arrive.
	if err := v.WaitReady(ctx); err != nil {
		panic(err)
	}

	// What Graph sends: a v2.0 token issued to the Graph Change Tracking
	// app (azp) for our app (aud) in the notification's tenant.
	now := time.Now()
	claims, _ := jwt.NewBuilder().
		Audience([]string{ourAppID}).
		Issuer("https://login.microsoftonline.com/"+tenant+"/v2.0").
		IssuedAt(now).NotBefore(now).Expiration(now.Add(time.Hour)).
		Claim("tid", tenant).
		Claim("azp", token.GraphChangeTrackingAppID).
		Claim("ver", "2.0").
		Build()
	signKey, _ := jwk.Import(priv)
	_ = signKey.Set(jwk.KeyIDKey, "key-1")
	genuine, _ := jwt.Sign(claims, jwt.WithKey(jwa.RS256(), signKey))

	// The same claims, signed by someone else's key under the same kid.
	forgerPriv, _ := rsa.GenerateKey(rand.Reader, 2048)
	forgerKey, _ := jwk.Import(forgerPriv)
	_ = forgerKey.Set(jwk.KeyIDKey, "key-1")
	forged, _ := jwt.Sign(claims, jwt.WithKey(jwa.RS256(), forgerKey))

	// answer is what a receiver does with the result: only our own
	// inability to check asks Graph to retry; anything else is accepted
	// with 202 (no oracle for an attacker) and quarantined.
	answer := func(err error) string {
		switch {
		case err == nil:
			return "202, deliver"
		case errors.Is(err, token.ErrUnavailable):
			return "503, Graph retries"
		default:
			return "202, quarantine: " + err.Error()
		}
	}
	fmt.Println(answer(v.Validate(ctx, []string{string(genuine)}, []string{tenant})))
	fmt.Println(answer(v.Validate(ctx, []string{string(forged)}, []string{tenant})))
	fmt.Println(answer(v.Validate(ctx, []string{string(genuine)}, []string{tenant, "bbbbbbbb-0000-0000-0000-000000000002"})))
	fmt.Println(answer(v.Validate(ctx, nil, []string{tenant})))
	// Output:
	// 202, deliver
	// 202, quarantine: token: validation token 0: bad signature: signature does not verify
	// 202, quarantine: token: tenant not covered by a validation token: tenant "bbbbbbbb-0000-0000-0000-000000000002"
	// 202, quarantine: token: no validation tokens
}
