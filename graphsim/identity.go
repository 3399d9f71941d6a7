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
	"net/url"
	"slices"
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
	now := s.now()
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
// the token endpoint does for a client-credentials grant of the
// registered app appID in tenantID (empty means [Config.TenantID]). The
// token's roles are the app's granted permissions (none for an app that is
// not registered). It is the Go API of a trusted test; over HTTP only
// registered apps presenting their secret or certificate get tokens.
func (s *Sim) AccessToken(appID, tenantID string) (string, error) {
	if tenantID == "" {
		tenantID = s.cfg.TenantID
	}
	s.mu.Lock()
	var roles []string
	sp := stableGUID("sp", strings.ToLower(tenantID), strings.ToLower(appID))
	if a, ok := s.appLocked(appID); ok {
		roles = slices.Clone(a.roles())
		sp = a.ServicePrincipalID
	}
	s.mu.Unlock()
	if roles == nil {
		roles = []string{}
	}
	now := s.now()
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
		"oid":      sp,
		"sub":      sp,
		"roles":    roles,
		"tid":      tenantID,
		"uti":      randomB64(16),
		"ver":      "1.0",
	})
}

// caller is the identity of an API request, from its access token.
type caller struct {
	appID, tenantID string
	spID            string // the app's service principal: creatorId
	expires         time.Time
	roles           []string
	delegated       bool // the Go API: a signed-in user with every consent
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
		Aud   string   `json:"aud"`
		AppID string   `json:"appid"`
		Tid   string   `json:"tid"`
		Oid   string   `json:"oid"`
		Exp   int64    `json:"exp"`
		Nbf   int64    `json:"nbf"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Aud != GraphResourceAppID || c.AppID == "" {
		return caller{}, invalid
	}
	now := s.now()
	if exp := time.Unix(c.Exp, 0); !now.Before(exp) {
		invalid.Message = "Lifetime validation failed, the token is expired."
		return caller{}, invalid
	}
	if now.Before(time.Unix(c.Nbf, 0).Add(-5 * time.Minute)) {
		invalid.Message = "Lifetime validation failed, the token is not yet valid."
		return caller{}, invalid
	}
	// Graph evaluates the app's consent when it is used: a revoked grant
	// takes effect before the token expires.
	s.mu.Lock()
	if a, ok := s.appLocked(c.AppID); ok && a.revoked {
		c.Roles = nil
	}
	s.mu.Unlock()
	return caller{appID: c.AppID, tenantID: c.Tid, spID: c.Oid, expires: time.Unix(c.Exp, 0), roles: c.Roles}, nil
}

// Client assertion type of RFC 7523, sent with client_assertion.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// handleToken is the token endpoint, POST /{tenant}/oauth2/v2.0/token:
// the client-credentials grant with a client secret (client_secret_post
// or client_secret_basic) or a client assertion signed with one of the
// app's certificates (private_key_jwt), as azidentity's
// ClientSecretCredential and ClientCertificateCredential send them. Only
// registered apps ([Config.Apps]) get tokens (issue 16: a simulator must
// not hand tokens to anyone who can reach it).
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
	tenant := r.PathValue("tenant")
	if isMetaTenant(tenant) {
		tenant = s.cfg.TenantID
	}
	if scope := r.PostForm.Get("scope"); !graphScope(scope) {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier https://graph.microsoft.com.")
		return
	}
	s.mu.Lock()
	app, ok := s.appLocked(clientID)
	var a appState
	if ok {
		a = *app
	}
	s.mu.Unlock()
	if !ok {
		s.log.Warn("token refused", "client_id", clip(clientID), "reason", "app not registered")
		oauthError(w, http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'. Register it with graphsim serve --app (or Config.Apps).", clip(clientID), tenant))
		return
	}
	assertion := r.PostForm.Get("client_assertion")
	switch {
	case assertion != "":
		if r.PostForm.Get("client_assertion_type") != clientAssertionType {
			oauthError(w, http.StatusBadRequest, "invalid_request", "AADSTS50027: client_assertion_type must be "+clientAssertionType+".")
			return
		}
		if msg := s.checkAssertion(&a, assertion, requestBase(r)+r.URL.Path); msg != "" {
			s.log.Warn("token refused", "client_id", a.ClientID, "reason", msg)
			oauthError(w, http.StatusUnauthorized, "invalid_client", msg)
			return
		}
	case secret != "":
		if a.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(a.Secret)) != 1 {
			s.log.Warn("token refused", "client_id", a.ClientID, "reason", "wrong client secret")
			oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+a.ClientID+"'.")
			return
		}
	default:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	tok, err := s.AccessToken(a.ClientID, tenant)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "temporarily_unavailable", "graphsim could not sign the token.")
		return
	}
	secs := int(s.cfg.AccessTokenLifetime / time.Second)
	grant := "client_secret"
	if assertion != "" {
		grant = "client_assertion"
	}
	s.log.Info("token issued", "client_id", a.ClientID, "tenant_id", tenant, "grant", grant)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// graphScope reports whether a client-credentials scope asks for
// Microsoft Graph's .default scope (OpenID scopes may ride along).
func graphScope(scope string) bool {
	ok := false
	for _, sc := range strings.Fields(scope) {
		switch strings.ToLower(sc) {
		case "https://graph.microsoft.com/.default", "https://graph.microsoft.com//.default", "00000003-0000-0000-c000-000000000000/.default":
			ok = true
		case "openid", "profile", "offline_access":
		default:
			return false
		}
	}
	return ok
}

// checkAssertion verifies a client assertion (RFC 7523) against the app's
// certificates: the x5t#S256 or x5t header names a registered certificate,
// the signature (RS256 or PS256) verifies with its key, iss and sub are the
// client id, aud is this token endpoint, and the wall clock is within nbf
// and exp (the client signs with its own clock, not the simulated one). It
// returns Entra's error description, or "" when the assertion is good.
func (s *Sim) checkAssertion(a *appState, assertion, endpoint string) string {
	msg, err := jws.Parse([]byte(assertion))
	if err != nil || len(msg.Signatures()) != 1 {
		return "AADSTS50027: JWT token is invalid or malformed."
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	var thumb string
	for _, k := range []string{"x5t#S256", "x5t"} {
		var v string
		if hdr.Get(k, &v) == nil && v != "" {
			thumb = v
			break
		}
	}
	var unverified struct {
		Iss string `json:"iss"`
	}
	json.Unmarshal(msg.Payload(), &unverified)
	if len(a.Federated) > 0 && !strings.EqualFold(unverified.Iss, a.ClientID) {
		return checkFederated(a, assertion)
	}
	cert := a.certFor(thumb)
	if cert == nil {
		return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application " + a.ClientID + "."
	}
	alg, ok := hdr.Algorithm()
	if !ok || (alg != jwa.RS256() && alg != jwa.PS256()) {
		return "AADSTS5002730: Invalid JWT token. Unsupported key for the signing algorithm."
	}
	payload, err := jws.Verify([]byte(assertion), jws.WithKey(alg, cert.PublicKey))
	if err != nil {
		return "AADSTS700027: Client assertion failed signature validation."
	}
	var c assertionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "AADSTS50027: JWT token is invalid or malformed."
	}
	if !strings.EqualFold(c.Iss, a.ClientID) || !strings.EqualFold(c.Sub, a.ClientID) {
		return "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter."
	}
	auds := c.audiences()
	if !slices.ContainsFunc(auds, func(v string) bool { return strings.EqualFold(strings.TrimRight(v, "/"), endpoint) }) {
		return "AADSTS700212: No matching federated identity record found for presented assertion audience; the aud claim must be " + endpoint + "."
	}
	if !c.current(time.Now()) {
		return "AADSTS700024: Client assertion is not within its valid time range."
	}
	return ""
}

// assertionClaims are the claims Entra ID checks in a client assertion
// and in a federated identity provider's token.
type assertionClaims struct {
	Aud json.RawMessage `json:"aud"`
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Exp json.Number     `json:"exp"`
	Nbf json.Number     `json:"nbf"`
	Jti string          `json:"jti"`
}

// audiences returns aud, which is a string or a list of strings.
func (c assertionClaims) audiences() []string {
	var auds []string
	if json.Unmarshal(c.Aud, &auds) != nil {
		var one string
		json.Unmarshal(c.Aud, &one)
		auds = []string{one}
	}
	return auds
}

// current reports whether now is within the token's nbf (when present)
// and exp, allowing five minutes of clock skew either way.
func (c assertionClaims) current(now time.Time) bool {
	exp, err := c.Exp.Int64()
	if err != nil || !now.Before(time.Unix(exp, 0).Add(5*time.Minute)) {
		return false
	}
	nbf, err := c.Nbf.Int64()
	return err != nil || !now.Add(5*time.Minute).Before(time.Unix(nbf, 0))
}

// checkFederated verifies an external identity provider's token against
// the app's federated identity credentials (workload identity
// federation): iss and sub match a credential, aud is one of its
// audiences, one of its keys verifies the signature, and the wall clock is
// within nbf and exp.
func checkFederated(a *appState, assertion string) string {
	msg, err := jws.Parse([]byte(assertion))
	if err != nil || len(msg.Signatures()) != 1 {
		return "AADSTS50027: JWT token is invalid or malformed."
	}
	var c assertionClaims
	if json.Unmarshal(msg.Payload(), &c) != nil {
		return "AADSTS50027: JWT token is invalid or malformed."
	}
	auds := c.audiences()
	for _, fc := range a.Federated {
		if fc.Issuer != c.Iss || fc.Subject != c.Sub {
			continue
		}
		want := fc.Audiences
		if len(want) == 0 {
			want = []string{"api://AzureADTokenExchange"}
		}
		if !slices.ContainsFunc(auds, func(v string) bool { return slices.Contains(want, v) }) {
			return "AADSTS700212: No matching federated identity record found for presented assertion audience."
		}
		alg, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm()
		verified := false
		for _, k := range fc.Keys {
			if _, err := jws.Verify([]byte(assertion), jws.WithKey(alg, k)); err == nil {
				verified = true
				break
			}
		}
		if !verified {
			return "AADSTS50013: Assertion failed signature validation."
		}
		if !c.current(time.Now()) {
			return "AADSTS700024: Client assertion is not within its valid time range."
		}
		return ""
	}
	return fmt.Sprintf("AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'.", clip(c.Iss), clip(c.Sub))
}

// clip shortens an attacker-controlled value for logs and messages.
func clip(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	return strings.ToValidUTF8(v, "?")
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
// (and, for /{tenant}/.well-known/openid-configuration, of v1.0), with
// the endpoints MSAL needs: authorization_endpoint, token_endpoint and
// issuer. The issuer keeps Microsoft's host (Config.Authority), which MSAL
// trusts, so that validationTokens carry the issuer a receiver checks.
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
	authz := base + "/" + tenant + "/oauth2/authorize"
	if v2 {
		iss = s.cfg.Authority + "/" + issTenant + "/v2.0"
		jwks = base + "/" + tenant + "/discovery/v2.0/keys"
		authz = base + "/" + tenant + "/oauth2/v2.0/authorize"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              jwks,
		"authorization_endpoint":                authz,
		"token_endpoint":                        base + "/" + tenant + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"tenant_region_scope":                   "NA",
		"cloud_instance_name":                   "graphsim",
	})
}

// handleInstanceDiscovery serves GET /common/discovery/instance, the
// Entra instance discovery MSAL calls before the OpenID configuration.
// MSAL sends it to login.microsoftonline.com for hosts it does not know,
// so clients of graphsim set DisableInstanceDiscovery; this endpoint serves
// clients that ask the authority host itself.
func (s *Sim) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	base := requestBase(r)
	tenant := "common"
	if ae := r.URL.Query().Get("authorization_endpoint"); ae != "" {
		if u, err := url.Parse(ae); err == nil {
			if seg := strings.Split(strings.Trim(u.Path, "/"), "/"); len(seg) > 0 && seg[0] != "" {
				tenant = seg[0]
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": base + "/" + url.PathEscape(tenant) + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": r.Host,
			"preferred_cache":   r.Host,
			"aliases":           []string{r.Host},
		}},
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
