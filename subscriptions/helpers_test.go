package subscriptions

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

// newClock returns a settable clock shared by graphsim and the Manager,
// so a test moves both through simulated days.
func newClock() *testkit.Clock { return testkit.NewClock(time.Now().UTC().Truncate(time.Second)) }

// graph is a graphsim served over HTTPS (its own CA), with a client whose
// credential is azidentity's, unmodified, trusting that CA.
type graph struct {
	sim    *graphsim.Sim
	url    string
	hc     *http.Client
	client *Client
	calls  *calls // the Graph API calls of client
}

// calls counts the requests a Client sends, by method and path shape
// ("PATCH /v1.0/subscriptions/{id}"), over the real transport.
type calls struct {
	rt http.RoundTripper
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) RoundTrip(r *http.Request) (*http.Response, error) {
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/v1.0/subscriptions/"); ok {
		if _, tail, found := strings.Cut(rest, "/"); found {
			path = "/v1.0/subscriptions/{id}/" + tail
		} else {
			path = "/v1.0/subscriptions/{id}"
		}
	}
	c.mu.Lock()
	c.n[r.Method+" "+path]++
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

func (c *calls) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// testSecret is the client secret of the simulated app.
const testSecret = "test-secret"

func startGraph(t *testing.T, cfg graphsim.Config) *graph {
	t.Helper()
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = testSecret
	}
	sim, err := graphsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	u, pool, err := sim.StartTLS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	g := &graph{sim: sim, url: u, hc: hc, calls: &calls{rt: hc.Transport, n: map[string]int{}}}
	g.client = g.newClient(t, CredentialConfig{ClientSecret: cfg.ClientSecret}, cfg.Now)
	g.client.hc = &http.Client{Transport: g.calls}
	return g
}

// newClient returns a Client for the simulator with the credential cc
// describes (tenant, app, authority and transport filled in).
func (g *graph) newClient(t *testing.T, cc CredentialConfig, now func() time.Time) *Client {
	t.Helper()
	cc.TenantID, cc.AuthorityHost, cc.Transport = graphsim.DefaultTenantID, g.url, g.hc
	if cc.ClientID == "" {
		cc.ClientID = graphsim.DefaultAppID
	}
	cred, err := NewCredential(cc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{Credential: cred, BaseURL: g.url + "/v1.0", HTTPClient: g.hc, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startReceiver serves a graphhook receiver on loopback that answers the
// validation handshake; lookup checks clientStates (nil accepts any), and
// sink stores batches.
func startReceiver(t *testing.T, sink receiver.Sink, lookup func(context.Context, string) (string, error)) string {
	t.Helper()
	return startReceiverWith(t, receiver.Config{Sink: sink, ClientStateLookup: lookup})
}

// startReceiverWith serves a receiver for cfg (validationTokens unchecked:
// graphsim's are, elsewhere) on loopback.
func startReceiverWith(t *testing.T, cfg receiver.Config) string {
	t.Helper()
	cfg.InsecureSkipTokenValidation = true
	lookup := cfg.ClientStateLookup
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
	mu       sync.Mutex
	items    []receiver.Notification
	rejected []receiver.Rejected
}

func (b *batches) Deliver(ctx context.Context, batch *receiver.Batch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range batch.Notifications {
		b.items = append(b.items, *n)
	}
	for _, r := range batch.Rejected {
		b.rejected = append(b.rejected, *r)
	}
	return nil
}

// reconcile runs one pass of m and fails the test if it returns an error.
func reconcile(t testing.TB, m *Manager) {
	t.Helper()
	if err := m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
}
