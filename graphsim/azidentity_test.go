package graphsim_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// tlsSim is a simulator served over HTTPS and the client options that
// point azidentity at it: only the authority host, the CA (through the
// transport) and DisableInstanceDiscovery differ from production.
type tlsSim struct {
	*graphsim.Sim
	url    string
	client *http.Client
	opts   azcore.ClientOptions
}

func newTLSSim(t testing.TB, cfg graphsim.Config) *tlsSim {
	t.Helper()
	s := newSimUnstarted(t, cfg)
	u, pool, err := s.StartTLS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &tlsSim{Sim: s, url: u, client: client, opts: azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: u + "/"},
		Transport: client,
	}}
}

// graphScope is the scope a Graph client asks for.
var graphScope = policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}

// gzipCall sends body gzip-compressed, as Microsoft's Go SDK does.
func gzipCall(t testing.TB, c *http.Client, method, u, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		rd = &buf
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
	}
	return send(t, c, req, out)
}

// TestAzidentityCredentialsManageASubscription is issue 11's acceptance:
// azidentity, unmodified, gets tokens from graphsim over TLS with a client
// secret and with a client certificate, and each token creates, renews,
// reauthorizes and deletes a subscription with gzip bodies.
func TestAzidentityCredentialsManageASubscription(t *testing.T) {
	cert, key := testkit.ClientCert(t, "cert-app")
	cfg := fastConfig()
	cfg.Apps = []graphsim.App{
		{ClientID: "aaaaaaaa-0000-0000-0000-000000000001", Secret: "secret-app-secret", Roles: []string{"Mail.Read"}},
		{ClientID: "aaaaaaaa-0000-0000-0000-000000000002", Certificates: []*x509.Certificate{cert}, Roles: []string{"Mail.Read"}},
	}
	s := newTLSSim(t, cfg)
	secretCred, err := azidentity.NewClientSecretCredential(graphsim.DefaultTenantID, cfg.Apps[0].ClientID, cfg.Apps[0].Secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	certCred, err := azidentity.NewClientCertificateCredential(graphsim.DefaultTenantID, cfg.Apps[1].ClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: s.opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(t)
	for _, tc := range []struct {
		name string
		cred azcore.TokenCredential
		app  graphsim.App
	}{
		{"client secret", secretCred, cfg.Apps[0]},
		{"client certificate", certCred, cfg.Apps[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.cred.GetToken(t.Context(), graphScope)
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if !tok.ExpiresOn.After(time.Now().Add(50 * time.Minute)) {
				t.Errorf("token expires %v", tok.ExpiresOn)
			}
			base := s.url + "/v1.0/subscriptions"
			req := subRequest(e, "users/"+graphsim.NewGUID()+"/messages")
			var sub graphsim.Subscription
			if st := gzipCall(t, s.client, "POST", base, tok.Token, req, &sub); st != http.StatusCreated {
				t.Fatalf("create with gzip body: %d", st)
			}
			if sub.ApplicationID != tc.app.ClientID || sub.CreatorID == "" {
				t.Errorf("created %+v", sub)
			}
			app, _ := s.App(tc.app.ClientID)
			if sub.CreatorID != app.ServicePrincipalID {
				t.Errorf("creatorId %s, want the app's service principal %s", sub.CreatorID, app.ServicePrincipalID)
			}
			renewTo := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
			var renewed graphsim.Subscription
			if st := gzipCall(t, s.client, "PATCH", base+"/"+sub.ID, tok.Token, map[string]any{"expirationDateTime": renewTo}, &renewed); st != http.StatusOK {
				t.Fatalf("renew: %d", st)
			}
			if !renewed.ExpirationDateTime.Equal(renewTo) {
				t.Errorf("renewed to %v, want %v", renewed.ExpirationDateTime, renewTo)
			}
			if st := gzipCall(t, s.client, "POST", base+"/"+sub.ID+"/reauthorize", tok.Token, nil, nil); st != http.StatusNoContent {
				t.Errorf("reauthorize: %d", st)
			}
			if st := gzipCall(t, s.client, "DELETE", base+"/"+sub.ID, tok.Token, nil, nil); st != http.StatusNoContent {
				t.Errorf("delete: %d", st)
			}
			if _, err := s.Subscription(sub.ID); !errors.Is(err, graphsim.ErrNotFound) {
				t.Errorf("after delete: %v", err)
			}
		})
	}
}

// TestTokensOnlyForRegisteredApps: a wrong secret, an unregistered app, a
// certificate the app did not register, and a secret for a
// certificate-only app get no token (issue 16).
func TestTokensOnlyForRegisteredApps(t *testing.T) {
	cert, _ := testkit.ClientCert(t, "registered")
	otherCert, otherKey := testkit.ClientCert(t, "stranger")
	cfg := fastConfig()
	cfg.Apps = []graphsim.App{
		{ClientID: "app-secret", Secret: "right"},
		{ClientID: "app-cert", Certificates: []*x509.Certificate{cert}},
	}
	s := newTLSSim(t, cfg)
	secret := func(id, sec string) azcore.TokenCredential {
		c, err := azidentity.NewClientSecretCredential(graphsim.DefaultTenantID, id, sec,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: s.opts, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	certCred, err := azidentity.NewClientCertificateCredential(graphsim.DefaultTenantID, "app-cert", []*x509.Certificate{otherCert}, otherKey,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: s.opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cred     azcore.TokenCredential
		wantCode string
	}{
		{"wrong secret", secret("app-secret", "guess"), "AADSTS7000215"},
		{"unregistered app", secret("nobody", "anything"), "AADSTS700016"},
		{"secret for a certificate-only app", secret("app-cert", "anything"), "AADSTS7000215"},
		{"unregistered certificate", certCred, "AADSTS700027"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cred.GetToken(t.Context(), graphScope)
			if _, ok := errors.AsType[*azidentity.AuthenticationFailedError](err); !ok {
				t.Fatalf("GetToken: %v, want AuthenticationFailedError", err)
			}
			if !strings.Contains(err.Error(), tc.wantCode) {
				t.Errorf("error does not carry %s: %v", tc.wantCode, err)
			}
		})
	}
}

// TestTokenRolesGatePermissions: tokens carry the app's roles; a create for
// a resource without the permission the seeds name is Graph's 403, me/...
// with an app-only token is 400, and an app can get a token for the
// .default scope of Graph only.
func TestTokenRolesGatePermissions(t *testing.T) {
	cfg := fastConfig()
	cfg.Apps = []graphsim.App{{ClientID: "mail-only", Secret: "s", Roles: []string{"Mail.Read"}}}
	s := newTLSSim(t, cfg)
	cred, err := azidentity.NewClientSecretCredential(graphsim.DefaultTenantID, "mail-only", "s",
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(t.Context(), graphScope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err == nil {
		t.Error("a token for another resource was issued")
	}
	e := newEndpoint(t)
	base := s.url + "/v1.0/subscriptions"
	tests := []struct {
		name       string
		resource   string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"granted", "users/u1/messages", 201, "", ""},
		{"events need Calendars.Read", "users/u1/events", 403, "ExtensionError", "Calendars.Read"},
		{"me with an app-only token", "me/messages", 400, "BadRequest", "/me request is only valid with delegated authentication flow."},
		{"presence is delegated only", "communications/presences/" + graphsim.NewGUID(), 403, "ExtensionError", "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := subRequest(e, tc.resource)
			if strings.Contains(tc.resource, "presence") {
				key := testKey(t)
				req.IncludeResourceData, req.EncryptionCertificate, req.EncryptionCertificateID = true, key.EncryptionCertificate(), key.ID
				req.ExpirationDateTime = time.Now().Add(time.Hour)
			}
			var ge graphError
			st := gzipCall(t, s.client, "POST", base, tok.Token, req, &ge)
			if st != tc.wantStatus {
				t.Fatalf("status %d, want %d: %+v", st, tc.wantStatus, ge.Error)
			}
			if tc.wantCode != "" && (ge.Error.Code != tc.wantCode || !strings.Contains(ge.Error.Message, tc.wantMsg)) {
				t.Errorf("error %+v, want %s containing %q", ge.Error, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestRequestBodyEncodings: gzip is read (and bounded after
// decompression), an unknown encoding is 415.
func TestRequestBodyEncodings(t *testing.T) {
	s := newSim(t, fastConfig())
	token := accessToken(t, s, graphsim.DefaultAppID)
	post := func(enc string, body []byte) (int, graphError) {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", s.GraphURL()+"/subscriptions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", enc)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ge graphError
		json.NewDecoder(resp.Body).Decode(&ge)
		return resp.StatusCode, ge
	}
	zip := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	// A bomb: 8 MiB of spaces compress to a few KiB.
	bomb := zip(append([]byte(`{"changeType":"created"`), bytes.Repeat([]byte(" "), 8<<20)...))
	tests := []struct {
		name       string
		enc        string
		body       []byte
		wantStatus int
		wantCode   string
	}{
		{"gzip reaches validation", "gzip", zip([]byte(`{"changeType":"created"}`)), 400, "InvalidRequest"},
		{"corrupt gzip", "gzip", []byte("not gzip"), 400, "InvalidRequest"},
		{"bomb bounded after decompression", "gzip", bomb, 413, "RequestEntityTooLarge"},
		{"brotli unsupported", "br", []byte("x"), 415, "UnsupportedMediaType"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, ge := post(tc.enc, tc.body)
			if st != tc.wantStatus {
				t.Fatalf("status %d, want %d (%+v)", st, tc.wantStatus, ge.Error)
			}
			if ge.Error.Code != tc.wantCode {
				t.Errorf("code %q, want %q", ge.Error.Code, tc.wantCode)
			}
		})
	}
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes compressed; it must fit the compressed bound to test the decompressed one", len(bomb))
	}
}

// TestWorkloadIdentityFederation: azidentity's ClientAssertionCredential
// (what WorkloadIdentityCredential uses) presents a token of another
// identity provider; graphsim accepts it for an app whose federated
// credential names that issuer and subject and holds its key.
func TestWorkloadIdentityFederation(t *testing.T) {
	idpKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const issuer, subject = "https://oidc.example.com/cluster-1", "system:serviceaccount:graph:manager"
	cfg := fastConfig()
	cfg.Apps = []graphsim.App{{ClientID: "fed-app", Roles: []string{"Mail.Read"}, Federated: []graphsim.FederatedCredential{
		{Issuer: issuer, Subject: subject, Keys: []crypto.PublicKey{&idpKey.PublicKey}},
	}}}
	s := newTLSSim(t, cfg)
	strangerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	external := func(sub, aud string) func(context.Context) (string, error) {
		key := idpKey
		if sub == "forged" {
			key, sub = strangerKey, subject
		}
		return func(context.Context) (string, error) {
			claims, _ := json.Marshal(map[string]any{"iss": issuer, "sub": sub, "aud": aud,
				"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
			b, err := jws.Sign(claims, jws.WithKey(jwa.RS256(), key))
			return string(b), err
		}
	}
	for _, tc := range []struct {
		name, sub, aud, wantCode string
	}{
		{"matching credential", subject, "api://AzureADTokenExchange", ""},
		{"other subject", "system:serviceaccount:graph:intruder", "api://AzureADTokenExchange", "AADSTS70021"},
		{"other audience", subject, "https://example.com", "AADSTS700212"},
		{"signed by another key", "forged", "api://AzureADTokenExchange", "AADSTS50013"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := azidentity.NewClientAssertionCredential(graphsim.DefaultTenantID, "fed-app", external(tc.sub, tc.aud),
				&azidentity.ClientAssertionCredentialOptions{ClientOptions: s.opts, DisableInstanceDiscovery: true})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := cred.GetToken(t.Context(), graphScope)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("GetToken: %v", err)
				}
				if st := gzipCall(t, s.client, "POST", s.url+"/v1.0/subscriptions", tok.Token, subRequest(newEndpoint(t), "users/u1/messages"), nil); st != 201 {
					t.Errorf("create with the federated token: %d", st)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantCode) {
				t.Errorf("GetToken: %v, want %s", err, tc.wantCode)
			}
		})
	}
}
