package graphsim

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// App is an application registration of the simulated tenant: who may
// get access tokens from the token endpoint and which application
// permissions (app roles, admin-consented) those tokens carry.
type App struct {
	// ClientID is the application (client) id. Required.
	ClientID string `json:"clientId"`
	// DisplayName names the app in logs. Optional.
	DisplayName string `json:"displayName,omitempty"`
	// Secret is the client secret the token endpoint accepts for a
	// client_secret grant. Empty: no secret is accepted (certificate only).
	Secret string `json:"secret,omitempty"`
	// Certificates verify client assertions (private_key_jwt): a JWT signed
	// with the certificate's key, naming it by x5t#S256 or x5t, as
	// azidentity's ClientCertificateCredential sends. Optional.
	Certificates []*x509.Certificate `json:"-"`
	// Federated are workload identity federation credentials: a client
	// assertion issued by another identity provider (a Kubernetes service
	// account token, a GitHub Actions token) is accepted when its iss and
	// sub match one of them, its aud is one of the credential's Audiences
	// and one of its Keys verifies it, as azidentity's
	// WorkloadIdentityCredential and ClientAssertionCredential send it.
	Federated []FederatedCredential `json:"-"`
	// Roles are the application permissions granted to the app, e.g.
	// "Mail.Read". Access tokens carry them as the roles claim and POST
	// /subscriptions requires the one the resource needs (see
	// [RequiredPermissions]). Default: none; use [AllPermissions] for an app
	// that may subscribe to everything.
	Roles []string `json:"roles,omitempty"`
	// ServicePrincipalID is the object id of the app's service principal in
	// the tenant: the creatorId of its subscriptions and the oid of its
	// tokens. Default: derived from ClientID and the tenant, so it is stable
	// across restarts.
	ServicePrincipalID string `json:"servicePrincipalId,omitempty"`
}

// FederatedCredential is a federated identity credential of an [App].
type FederatedCredential struct {
	// Issuer is the external identity provider's iss, e.g.
	// "https://token.actions.githubusercontent.com". Required.
	Issuer string
	// Subject is the sub the external token must carry, e.g.
	// "system:serviceaccount:ns:name". Required.
	Subject string
	// Audiences are the accepted aud values. Default
	// "api://AzureADTokenExchange", Entra's.
	Audiences []string
	// Keys are the public keys (*rsa.PublicKey, *ecdsa.PublicKey) that sign
	// the external provider's tokens. Required.
	Keys []crypto.PublicKey
}

// String returns the app's client id and display name, never its secret.
func (a App) String() string {
	if a.DisplayName != "" {
		return a.ClientID + " (" + a.DisplayName + ")"
	}
	return a.ClientID
}

// appState is a registered app and the tenant's consent to it.
type appState struct {
	App
	revoked bool // an admin revoked the consent: tokens carry no roles
}

// roles returns the permissions currently granted.
func (a *appState) roles() []string {
	if a.revoked {
		return nil
	}
	return a.Roles
}

// stableGUID derives a version-5-style GUID from parts, for ids that must
// not change between runs (service principals).
func stableGUID(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomSecret returns a client secret in the shape Entra generates.
func randomSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "gs~" + base64.RawURLEncoding.EncodeToString(b)
}

// thumbprints returns the x5t (SHA-1) and x5t#S256 (SHA-256) of cert in
// the encodings clients send: base64url (RFC 7515) and, as MSAL Go writes
// them, standard base64, plus hex.
func thumbprints(cert *x509.Certificate) []string {
	s1 := sha1.Sum(cert.Raw)
	s256 := sha256.Sum256(cert.Raw)
	var out []string
	for _, b := range [][]byte{s1[:], s256[:]} {
		out = append(out,
			base64.RawURLEncoding.EncodeToString(b),
			base64.URLEncoding.EncodeToString(b),
			base64.StdEncoding.EncodeToString(b),
			base64.RawStdEncoding.EncodeToString(b),
			hex.EncodeToString(b))
	}
	return out
}

// certFor returns the app's certificate a client assertion names.
func (a *appState) certFor(thumb string) *x509.Certificate {
	for _, c := range a.Certificates {
		if slices.ContainsFunc(thumbprints(c), func(t string) bool { return strings.EqualFold(t, thumb) }) {
			return c
		}
	}
	return nil
}

// App returns the registration of clientID (Secret included: the Go API
// is the tenant's admin), or false.
func (s *Sim) App(clientID string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[strings.ToLower(clientID)]
	if !ok {
		return App{}, false
	}
	out := a.App
	out.Roles = slices.Clone(a.roles())
	return out, true
}

func (s *Sim) appLocked(clientID string) (*appState, bool) {
	a, ok := s.apps[strings.ToLower(clientID)]
	return a, ok
}
