package subscriptions

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

func TestClientLifecycleOverTLS(t *testing.T) {
	clk := newClock()
	g := startGraph(t, graphsim.Config{Now: clk.Now, SweepInterval: -1})
	url := startReceiver(t, &batches{}, nil)
	ctx := t.Context()

	req := Subscription{Resource: "users/42/messages", ChangeType: "created,updated", NotificationURL: url, ClientState: "s3cret", ExpirationDateTime: clk.Now().Add(24 * time.Hour)}
	sub, err := g.client.Create(ctx, req)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if sub.ID == "" || sub.Resource != req.Resource || !sub.ExpirationDateTime.Equal(req.ExpirationDateTime) {
		t.Fatalf("created %+v, want resource %s expiring %v", sub, req.Resource, req.ExpirationDateTime)
	}
	got, err := g.client.Get(ctx, sub.ID)
	if err != nil || got.ID != sub.ID || got.ClientState != "s3cret" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	list, err := g.client.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != sub.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	exp := clk.Now().Add(48 * time.Hour)
	renewed, err := g.client.Renew(ctx, sub.ID, exp)
	if err != nil || !renewed.ExpirationDateTime.Equal(exp) {
		t.Fatalf("renew = %+v, %v; want expiry %v", renewed, err, exp)
	}
	if err := g.client.Reauthorize(ctx, sub.ID); err != nil {
		t.Fatalf("reauthorize: %v", err)
	}
	_, err = g.client.Create(ctx, req)
	var ge *Error
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ge) || ge.ExistingID != sub.ID {
		t.Fatalf("second create = %v, want ErrConflict naming %s", err, sub.ID)
	}
	if err := g.client.Delete(ctx, sub.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := g.client.Get(ctx, sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete = %v, want ErrNotFound", err)
	}
	if _, err := g.client.Renew(ctx, sub.ID, exp); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermanent) {
		t.Fatalf("renew after delete = %v, want ErrNotFound, not permanent", err)
	}
}

func TestClientLifetimeLimitError(t *testing.T) {
	clk := newClock()
	g := startGraph(t, graphsim.Config{Now: clk.Now, SweepInterval: -1})
	url := startReceiver(t, &batches{}, nil)
	_, err := g.client.Create(t.Context(), Subscription{Resource: "me/events", ChangeType: "created", NotificationURL: url, ClientState: "x", ExpirationDateTime: clk.Now().Add(30 * 24 * time.Hour)})
	var ge *Error
	if !errors.Is(err, ErrLifetimeLimit) || !errors.Is(err, ErrInvalid) || !errors.As(err, &ge) {
		t.Fatalf("create = %v, want ErrLifetimeLimit", err)
	}
	if ge.MaxLifetime != 10080*time.Minute {
		t.Fatalf("MaxLifetime = %v, want 10080m", ge.MaxLifetime)
	}
}

func TestCredentialsAgainstGraphsim(t *testing.T) {
	cert, keyPEM := clientCertificate(t)
	certKey := parseKey(t, keyPEM)
	clk := newClock()
	g := startGraph(t, graphsim.Config{Now: clk.Now, SweepInterval: -1, ClientSecret: "right", Apps: []graphsim.App{
		{ClientID: graphsim.DefaultAppID, Secret: "right", Roles: graphsim.AllPermissions()},
		{ClientID: "aaaaaaaa-0000-0000-0000-000000000002", Certificates: []*x509.Certificate{cert}, Roles: graphsim.AllPermissions()},
	}})
	tests := []struct {
		name    string
		cc      CredentialConfig
		wantErr error
	}{
		{name: "client secret", cc: CredentialConfig{ClientSecret: "right"}},
		{name: "client certificate", cc: CredentialConfig{ClientID: "aaaaaaaa-0000-0000-0000-000000000002", Certificate: keyPEM}},
		{name: "workload identity", cc: CredentialConfig{Kind: CredentialWorkloadIdentity, ClientID: "aaaaaaaa-0000-0000-0000-000000000002",
			TokenFile: federatedToken(t, g.url+"/"+graphsim.DefaultTenantID+"/oauth2/v2.0/token", "aaaaaaaa-0000-0000-0000-000000000002", cert, certKey)}},
		{name: "wrong secret", cc: CredentialConfig{ClientSecret: "wrong-secret"}, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := g.newClient(t, tt.cc, clk.Now)
			_, err := c.List(t.Context())
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("list = %v, want %v", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "wrong-secret") || !Transient(err)) {
				t.Fatalf("token error %q: leaks the secret or is not transient", err)
			}
		})
	}
}

func TestNewCredentialConfigErrors(t *testing.T) {
	tests := []struct {
		name      string
		cc        CredentialConfig
		wantField string
		wantErr   error
	}{
		{name: "secret without tenant", cc: CredentialConfig{ClientID: "c", ClientSecret: "s"}, wantField: "Credential.TenantID", wantErr: ErrRequired},
		{name: "certificate without client", cc: CredentialConfig{Kind: CredentialClientCertificate, TenantID: "t"}, wantField: "Credential.ClientID", wantErr: ErrRequired},
		{name: "bad certificate", cc: CredentialConfig{TenantID: "t", ClientID: "c", Certificate: []byte("not a certificate")}, wantField: "Credential.Certificate", wantErr: ErrBadValue},
		{name: "unknown kind", cc: CredentialConfig{Kind: "password"}, wantField: "Credential.Kind", wantErr: ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCredential(tt.cc)
			ce, ok := errors.AsType[*ConfigError](err)
			if !ok || ce.Field != tt.wantField || !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewCredential = %v; want field %s, %v", err, tt.wantField, tt.wantErr)
			}
		})
	}
	if c, err := NewCredential(CredentialConfig{Kind: CredentialManagedIdentity, Cloud: CloudUSGov}); err != nil || c == nil {
		t.Fatalf("managed identity = %v", err)
	}
}

func TestClouds(t *testing.T) {
	tests := []struct {
		in        string
		graph     string
		authority string
		wantErr   error
	}{
		{in: "", graph: GlobalGraphURL, authority: GlobalAuthorityHost},
		{in: "USGov", graph: USGovGraphURL, authority: USGovAuthorityHost},
		{in: "usgovdod", graph: USGovDoDGraphURL, authority: USGovAuthorityHost},
		{in: "china", graph: ChinaGraphURL, authority: ChinaAuthorityHost},
		{in: "mars", wantErr: ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := ParseCloud(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseCloud = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (c.GraphURL() != tt.graph || c.AuthorityHost() != tt.authority) {
				t.Fatalf("%s: %s %s", c, c.GraphURL(), c.AuthorityHost())
			}
		})
	}
	c, err := NewClient(ClientConfig{Credential: &azidentity.ClientSecretCredential{}, Cloud: CloudChina})
	if err != nil || c.BaseURL() != ChinaGraphURL || c.scope != "https://microsoftgraph.chinacloudapi.cn/.default" {
		t.Fatalf("china client: %v %s %s", err, c.BaseURL(), c.scope)
	}
}

// federatedToken writes the file a workload identity reads: a JWT
// assertion for clientID and the token endpoint. graphsim does not model
// federated identity credentials, so it is signed with the app's
// registered certificate, which the token endpoint verifies as it does
// any client assertion; azidentity's workload identity path (read the
// file, send it as client_assertion) is the real one.
func federatedToken(t *testing.T, endpoint, clientID string, cert *x509.Certificate, key *rsa.PrivateKey) string {
	t.Helper()
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"aud": endpoint, "iss": clientID, "sub": clientID, "jti": NewClientState(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	sum := sha256.Sum256(cert.Raw)
	hdr := jws.NewHeaders()
	if err := hdr.Set("x5t#S256", base64.RawURLEncoding.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	if err := hdr.Set("typ", "JWT"); err != nil {
		t.Fatal(err)
	}
	tok, err := jws.Sign(claims, jws.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func parseKey(t *testing.T, pemBytes []byte) *rsa.PrivateKey {
	t.Helper()
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			t.Fatal("no key in PEM")
		}
		if b.Type == "RSA PRIVATE KEY" {
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
}

// clientCertificate returns an app certificate and the PEM of it with its
// key, as a user stores them for CredentialConfig.CertificateFile.
func clientCertificate(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	cert, key := testkit.ClientCert(t, "graphhook-test")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	pemBytes = append(pemBytes, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	return cert, pemBytes
}

func TestParseError(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		status       int
		header       http.Header
		body         string
		wantErr      []error
		notErr       []error
		wantCap      time.Duration
		wantRetry    time.Duration
		wantExisting string
	}{
		{name: "conflict", status: 409, body: `{"error":{"code":"ExtensionError","message":"Operation: Create; Exception: [Status Code: Conflict; Reason: Subscription Id 0d5a3e2f-6b3c-4c0e-9a52-1b2c3d4e5f60 already exists for the requested combination]"}}`,
			wantErr: []error{ErrConflict}, notErr: []error{ErrPermanent}, wantExisting: "0d5a3e2f-6b3c-4c0e-9a52-1b2c3d4e5f60"},
		{name: "minutes cap", status: 400, body: `{"error":{"code":"ExtensionError","message":"Subscription expiration can only be 4230 minutes in the future."}}`,
			wantErr: []error{ErrInvalid, ErrLifetimeLimit}, wantCap: 4230 * time.Minute},
		{name: "timespan cap", status: 400, body: `{"error":{"code":"InvalidRequest","message":"Subscription expiration date is beyond allowed max '3.00:00:00'"}}`,
			wantErr: []error{ErrInvalid, ErrLifetimeLimit}, wantCap: 72 * time.Hour},
		{name: "timespan cap with date", status: 400, body: `{"error":{"code":"InvalidRequest","message":"Subscription expiration time '2026-03-20T11:00:00.0000000Z' is beyond allowed max '3.00:00:00'."}}`,
			wantErr: []error{ErrInvalid, ErrLifetimeLimit}, wantCap: 72 * time.Hour},
		{name: "plain invalid", status: 400, body: `{"error":{"code":"InvalidRequest","message":"Invalid 'changeType' attribute: 'moved'."}}`,
			wantErr: []error{ErrInvalid}, notErr: []error{ErrLifetimeLimit}},
		{name: "quota", status: 403, body: `{"error":{"code":"ExtensionError","message":"Maximum number of subscriptions has been reached"}}`,
			wantErr: []error{ErrForbidden, ErrQuotaExceeded, ErrPermanent}},
		{name: "forbidden", status: 403, body: `{"error":{"code":"Forbidden","message":"Insufficient privileges."}}`,
			wantErr: []error{ErrForbidden, ErrPermanent}, notErr: []error{ErrQuotaExceeded}},
		{name: "mailbox", status: 404, body: `{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}`,
			wantErr: []error{ErrNotFound, ErrMailboxNotEnabled, ErrPermanent}},
		{name: "gone", status: 404, body: `{"error":{"code":"ResourceNotFound","message":"The object was not found."}}`,
			wantErr: []error{ErrNotFound}, notErr: []error{ErrPermanent, ErrMailboxNotEnabled}},
		{name: "throttled seconds", status: 429, header: http.Header{"Retry-After": {"7"}}, body: `{"error":{"code":"TooManyRequests"}}`,
			wantErr: []error{ErrThrottled}, wantRetry: 7 * time.Second},
		{name: "unavailable date", status: 503, header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, body: `not json`,
			wantErr: []error{ErrThrottled}, notErr: []error{ErrUnavailable}, wantRetry: 90 * time.Second},
		{name: "retry-after capped", status: 429, header: http.Header{"Retry-After": {"999999999"}}, wantErr: []error{ErrThrottled}, wantRetry: MaxRetryAfter},
		{name: "server error", status: 502, wantErr: []error{ErrUnavailable}, notErr: []error{ErrThrottled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := parseError("create", "", tt.status, h, []byte(tt.body), now)
			for _, want := range tt.wantErr {
				if !errors.Is(e, want) {
					t.Errorf("errors.Is(%v, %v) = false", e, want)
				}
			}
			for _, not := range tt.notErr {
				if errors.Is(e, not) {
					t.Errorf("errors.Is(%v, %v) = true", e, not)
				}
			}
			if e.MaxLifetime != tt.wantCap || e.RetryAfter != tt.wantRetry || e.ExistingID != tt.wantExisting {
				t.Errorf("cap %v retry %v existing %q; want %v %v %q", e.MaxLifetime, e.RetryAfter, e.ExistingID, tt.wantCap, tt.wantRetry, tt.wantExisting)
			}
		})
	}
}

func FuzzParseError(f *testing.F) {
	f.Add(400, "3", []byte(`{"error":{"code":"ExtensionError","message":"Subscription expiration can only be 4230 minutes in the future."}}`))
	f.Add(400, "", []byte(`{"error":{"message":"beyond allowed max '3.00:00:00'"}}`))
	f.Add(409, "", []byte(`{"error":{"message":"Subscription Id 0d5a3e2f-6b3c-4c0e-9a52-1b2c3d4e5f60 already exists"}}`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		e := parseError("update", "id", status, http.Header{"Retry-After": {retryAfter}}, body, time.Unix(0, 0))
		if e.RetryAfter < 0 || e.RetryAfter > MaxRetryAfter || e.MaxLifetime < 0 {
			t.Fatalf("retry %v cap %v out of range", e.RetryAfter, e.MaxLifetime)
		}
		if strings.ContainsAny(e.Error(), "\r\n") {
			t.Fatalf("error text has a line break: %q", e.Error())
		}
	})
}
