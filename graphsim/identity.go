package graphsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// GraphChangeTrackingAppID is the publisher every validationToken names
// (azp in v2.0 tokens, appid in v1.0 tokens): the Microsoft Graph Change
// Tracking application.
const GraphChangeTrackingAppID = "0bf30f3b-4a52-48df-9a82-234910c4a086"

// GraphResourceAppID is the audience of the access tokens the simulator's
// token endpoint issues: Microsoft Graph.
const GraphResourceAppID = "https://graph.microsoft.com"

// Token lifetimes, as in the protocol doc §6 examples.
const (
	validationTokenLifetimeV2 = 86700 * time.Second
	validationTokenLifetimeV1 = 29100 * time.Second
)

// signingKey is one RSA key of the simulator's key set.
type signingKey struct {
	priv *rsa.PrivateKey
	kid  string
	jwk  jwk.Key
}

func newSigningKey(priv *rsa.PrivateKey) (*signingKey, error) {
	if priv == nil {
		var err error
		if priv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("graphsim: generate signing key: %w", err)
		}
	}
	pub, err := jwk.Import(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: signing key: %w", err)
	}
	der := priv.PublicKey.N.Bytes()
	sum := sha256.Sum256(der)
	kid := base64.RawURLEncoding.EncodeToString(sum[:15])
	sk, err := jwk.Import(priv)
	if err != nil {
		return nil, fmt.Errorf("graphsim: signing key: %w", err)
	}
	for _, k := range []jwk.Key{pub, sk} {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			return nil, err
		}
		if err := k.Set(jwk.AlgorithmKey, jwa.RS256()); err != nil {
			return nil, err
		}
		if err := k.Set(jwk.KeyUsageKey, "sig"); err != nil {
			return nil, err
		}
	}
	return &signingKey{priv: priv, kid: kid, jwk: sk}, nil
}

// publicJWK returns the key's public JWK as JSON-ready map.
func (k *signingKey) publicJWK() map[string]any {
	return map[string]any{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": k.kid,
		"n":   base64.RawURLEncoding.EncodeToString(k.priv.PublicKey.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(bigEndian(k.priv.PublicKey.E)),
	}
}

func bigEndian(e int) []byte {
	var b []byte
	for ; e > 0; e >>= 8 {
		b = append([]byte{byte(e)}, b...)
	}
	return b
}

// sign makes a compact RS256 JWT of claims with typ JWT and the key's kid.
func (k *signingKey) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set("typ", "JWT"); err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), k.jwk, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("graphsim: sign token: %w", err)
	}
	return string(b), nil
}

// JWKS returns the simulator's JSON Web Key Set: the public halves of the
// current signing key and of the previous one after [Sim.RotateKey].
func (s *Sim) JWKS() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]map[string]any, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, k.publicJWK())
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// RotateKey makes a new signing key current. The previous key stays in
// the JWKS (so tokens it signed still verify); older ones are dropped. Like
// Microsoft's daily rotation, it lets tests exercise a validator's refetch
// on an unknown kid.
func (s *Sim) RotateKey() error {
	k, err := newSigningKey(nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys[len(s.keys)-1:], k)
	clear(s.tokenCache)
	return nil
}

func (s *Sim) currentKey() *signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

type tokenKey struct{ app, tenant string }

type cachedToken struct {
	jwt string
	exp time.Time
}

// ValidationToken returns a validationToken for the application appID
// (the aud claim) and tenant, signed with the simulator's current key, with
// the claims of the protocol doc §6 in the shape of [Config.TokenVersion].
// Tokens are cached and reused until less than an hour of their lifetime
// remains.
func (s *Sim) ValidationToken(appID, tenantID string) (string, error) {
	now := s.cfg.Now()
	key := tokenKey{appID, strings.ToLower(tenantID)}
	s.mu.Lock()
	if t, ok := s.tokenCache[key]; ok && now.Add(time.Hour).Before(t.exp) {
		s.mu.Unlock()
		return t.jwt, nil
	}
	s.mu.Unlock()
	claims, exp := s.validationClaims(appID, tenantID, now)
	jwt, err := s.currentKey().sign(claims)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.tokenCache[key] = cachedToken{jwt: jwt, exp: exp}
	s.mu.Unlock()
	return jwt, nil
}

func (s *Sim) validationClaims(appID, tenantID string, now time.Time) (map[string]any, time.Time) {
	iat := now.Add(-5 * time.Minute).Unix()
	c := map[string]any{
		"aud": appID,
		"iat": iat,
		"nbf": iat,
		"aio": randomB64(40),
		"tid": tenantID,
		"uti": randomB64(16),
	}
	if s.cfg.TokenVersion == "1.0" {
		exp := time.Unix(iat, 0).Add(validationTokenLifetimeV1)
		c["iss"] = s.cfg.STSAuthority + "/" + tenantID + "/"
		c["exp"] = exp.Unix()
		c["appid"] = GraphChangeTrackingAppID
		c["appidacr"] = "2"
		c["idp"] = s.cfg.STSAuthority + "/" + tenantID + "/"
		c["ver"] = "1.0"
		return c, exp
	}
	exp := time.Unix(iat, 0).Add(validationTokenLifetimeV2)
	oid := NewGUID()
	c["iss"] = s.cfg.Authority + "/" + tenantID + "/v2.0"
	c["exp"] = exp.Unix()
	c["azp"] = GraphChangeTrackingAppID
	c["azpacr"] = "2"
	c["oid"] = oid
	c["rh"] = "0." + randomB64(48) + "."
	c["sub"] = oid
	c["ver"] = "2.0"
	return c, exp
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AccessToken issues a bearer access token for the simulated Graph API, as
// the token endpoint does for a client-credentials grant of appID in
// tenantID (empty means [Config.TenantID]).
func (s *Sim) AccessToken(appID, tenantID string) (string, error) {
	if tenantID == "" {
		tenantID = s.cfg.TenantID
	}
	now := s.cfg.Now()
	iat := now.Add(-5 * time.Minute).Unix()
	return s.currentKey().sign(map[string]any{
		"aud":      GraphResourceAppID,
		"iss":      s.cfg.STSAuthority + "/" + tenantID + "/",
		"iat":      iat,
		"nbf":      iat,
		"exp":      now.Add(s.cfg.AccessTokenLifetime).Unix(),
		"appid":    appID,
		"appidacr": "1",
		"idtyp":    "app",
		"oid":      NewGUID(),
		"roles":    []string{"Subscription.ReadWrite.All"},
		"tid":      tenantID,
		"ver":      "1.0",
	})
}

// caller is the identity of an API request, from its access token.
type caller struct {
	appID, tenantID string
	expires         time.Time
}

// authenticate checks the bearer token of r.
func (s *Sim) authenticate(r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return caller{}, &Error{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken", Message: "Access token is empty.", Err: ErrUnauthorized}
	}
	invalid := &Error{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken", Message: "Access token validation failure. Invalid audience.", Err: ErrUnauthorized}
	s.mu.Lock()
	keys := append([]*signingKey(nil), s.keys...)
	s.mu.Unlock()
	var payload []byte
	for _, k := range keys {
		if p, err := jws.Verify([]byte(tok), jws.WithKey(jwa.RS256(), &k.priv.PublicKey)); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		invalid.Message = "Access token validation failure."
		return caller{}, invalid
	}
	var c struct {
		Aud   string `json:"aud"`
		AppID string `json:"appid"`
		Tid   string `json:"tid"`
		Exp   int64  `json:"exp"`
		Nbf   int64  `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Aud != GraphResourceAppID || c.AppID == "" {
		return caller{}, invalid
	}
	now := s.cfg.Now()
	if exp := time.Unix(c.Exp, 0); !now.Before(exp) {
		invalid.Message = "Lifetime validation failed, the token is expired."
		return caller{}, invalid
	}
	if now.Before(time.Unix(c.Nbf, 0).Add(-5 * time.Minute)) {
		invalid.Message = "Lifetime validation failed, the token is not yet valid."
		return caller{}, invalid
	}
	return caller{appID: c.AppID, tenantID: c.Tid, expires: time.Unix(c.Exp, 0)}, nil
}

// handleToken is the client-credentials token endpoint,
// POST /{tenant}/oauth2/v2.0/token.
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must be a form.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type; graphsim supports client_credentials.")
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	if clientID == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'client_id'.")
		return
	}
	if s.cfg.ClientSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	tenant := r.PathValue("tenant")
	if isMetaTenant(tenant) {
		tenant = s.cfg.TenantID
	}
	tok, err := s.AccessToken(clientID, tenant)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "temporarily_unavailable", "graphsim could not sign the token.")
		return
	}
	secs := int(s.cfg.AccessTokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

func isMetaTenant(t string) bool {
	switch strings.ToLower(t) {
	case "", "common", "organizations", "consumers":
		return true
	}
	return false
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc,
		"error_codes":       []int{},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          NewGUID(),
		"correlation_id":    NewGUID(),
	})
}

// handleJWKS serves the key set.
func (s *Sim) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=60")
	w.Write(s.JWKS())
}

// handleOpenIDConfig serves the OpenID configuration of the v2.0 endpoint
// (and, for /{tenant}/.well-known/openid-configuration, of v1.0).
func (s *Sim) handleOpenIDConfig(w http.ResponseWriter, r *http.Request) {
	base := requestBase(r)
	tenant := r.PathValue("tenant")
	issTenant := tenant
	if isMetaTenant(tenant) {
		issTenant = "{tenantid}"
	}
	v2 := strings.Contains(r.URL.Path, "/v2.0/")
	iss := s.cfg.STSAuthority + "/" + issTenant + "/"
	jwks := base + "/" + tenant + "/discovery/keys"
	if v2 {
		iss = s.cfg.Authority + "/" + issTenant + "/v2.0"
		jwks = base + "/" + tenant + "/discovery/v2.0/keys"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              jwks,
		"token_endpoint":                        base + "/" + tenant + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "graphsim",
	})
}

// requestBase returns scheme://host of r.
func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalServerError","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}
