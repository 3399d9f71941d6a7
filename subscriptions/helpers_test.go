package subscriptions

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/receiver"
)

// clock is a settable clock shared by graphsim and the Manager, so a test
// moves both through simulated days.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// graph is a graphsim served over TLS (httptest's certificate), with a
// client credential from azidentity, unmodified, that trusts it.
type graph struct {
	sim    *graphsim.Sim
	srv    *httptest.Server
	client *Client
}

func startGraph(t *testing.T, cfg graphsim.Config) *graph {
	t.Helper()
	sim, err := graphsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewTLSServer(sim.Handler())
	t.Cleanup(srv.Close)
	var cred azcore.TokenCredential = simCredential{sim}
	if azidentityWorks(t, srv) {
		var err error
		cred, err = NewCredential(CredentialConfig{
			TenantID:      graphsim.DefaultTenantID,
			ClientID:      graphsim.DefaultAppID,
			ClientSecret:  "test-secret",
			AuthorityHost: srv.URL,
			Transport:     srv.Client(),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := NewClient(ClientConfig{Credential: cred, BaseURL: srv.URL + "/v1.0", HTTPClient: srv.Client(), Now: cfg.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &graph{sim: sim, srv: srv, client: c}
}

// azidentityWorks reports whether graphsim's identity endpoints satisfy
// azidentity (MSAL needs authorization_endpoint in the OpenID
// configuration). Until they do, tests use simCredential.
func azidentityWorks(t *testing.T, srv *httptest.Server) bool {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/" + graphsim.DefaultTenantID + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var oc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&oc); err != nil {
		t.Fatal(err)
	}
	_, ok := oc["authorization_endpoint"]
	return ok
}

// simCredential takes tokens from the Sim's Go API. It stands in for
// azidentity only while graphsim's OpenID configuration lacks what MSAL
// needs (see azidentityWorks).
type simCredential struct{ sim *graphsim.Sim }

func (c simCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.sim.AccessToken(graphsim.DefaultAppID, "")
	return azcore.AccessToken{Token: tok, ExpiresOn: c.sim.Config().Now().Add(c.sim.Config().AccessTokenLifetime)}, err
}

// startReceiver serves a graphhook receiver on loopback that answers the
// validation handshake; lookup checks clientStates (nil accepts any), and
// sink stores batches.
func startReceiver(t *testing.T, sink receiver.Sink, lookup func(context.Context, string) (string, error)) string {
	t.Helper()
	cfg := receiver.Config{Sink: sink, ClientStateLookup: lookup, InsecureSkipTokenValidation: true}
	if lookup == nil {
		cfg.InsecureSkipClientState = true
	}
	r, err := receiver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

// batches is a receiver.Sink that keeps every accepted notification.
type batches struct {
	mu    sync.Mutex
	items []receiver.Notification
}

func (b *batches) Deliver(ctx context.Context, batch *receiver.Batch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range batch.Notifications {
		b.items = append(b.items, *n)
	}
	return nil
}
