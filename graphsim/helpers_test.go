package graphsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// Test apps registered by fastConfig besides the default app.
var testApps = []string{"11111111-2222-3333-4444-555555555555", "99999999-8888-7777-6666-555555555555", "other-app"}

// fastConfig is a Config whose retry schedule runs in milliseconds, with
// the default app and testApps registered (secret "secret-" + client id,
// every permission).
func fastConfig() graphsim.Config {
	cfg := graphsim.Config{TimeScale: 0.0001, SweepInterval: -1}
	for _, id := range append([]string{graphsim.DefaultAppID}, testApps...) {
		cfg.Apps = append(cfg.Apps, graphsim.App{ClientID: id, Secret: "secret-" + id, Roles: graphsim.AllPermissions()})
	}
	return cfg
}

// newSim starts a simulator on loopback, closed at cleanup.
func newSim(t testing.TB, cfg graphsim.Config) *graphsim.Sim {
	t.Helper()
	s := newSimUnstarted(t, cfg)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return s
}

// newClockedSim returns a started Sim on fastConfig whose clock is the
// returned one, which the test moves.
func newClockedSim(t testing.TB) (*graphsim.Sim, *testkit.Clock) {
	t.Helper()
	clk := newClock()
	cfg := fastConfig()
	cfg.Now = clk.Now
	return newSim(t, cfg), clk
}

// newSimUnstarted returns a simulator that is not serving yet, closed at
// cleanup.
func newSimUnstarted(t testing.TB, cfg graphsim.Config) *graphsim.Sim {
	t.Helper()
	s, err := graphsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newClock returns the settable clock for Config.Now that tests move.
func newClock() *testkit.Clock { return testkit.NewClock(time.Now()) }

// handshake is one validation request as the endpoint saw it.
type handshake struct {
	RawQuery      string
	Token         string
	ContentType   string
	Authorization string
	BodyLen       int
}

// endpoint is a receiver stand-in: it answers handshakes by echoing the
// token and records every notification POST in its Webhook, whose
// SetRespond picks the answer to the n-th (from 1) notification POST.
type endpoint struct {
	*httptest.Server
	testkit.Webhook[graphsim.Collection]
	mu         sync.Mutex
	handshakes []handshake
	handshakeF func(w http.ResponseWriter, r *http.Request, token string) // nil: echo
}

func newEndpoint(t testing.TB) *endpoint {
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	if tok, ok := r.URL.Query()["validationToken"]; ok {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.handshakes = append(e.handshakes, handshake{RawQuery: r.URL.RawQuery, Token: tok[0], ContentType: r.Header.Get("Content-Type"), Authorization: r.Header.Get("Authorization"), BodyLen: len(body)})
		f := e.handshakeF
		e.mu.Unlock()
		if f != nil {
			f(w, r, tok[0])
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		io.WriteString(w, tok[0])
		return
	}
	e.Webhook.ServeHTTP(w, r)
}

func (e *endpoint) setHandshake(f func(w http.ResponseWriter, r *http.Request, token string)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handshakeF = f
}

// items returns all accepted notifications.
func (e *endpoint) items() []graphsim.Notification {
	var out []graphsim.Notification
	for _, b := range e.Bodies() {
		out = append(out, b.Value...)
	}
	return out
}

// lifecycleEvents returns the lifecycle items the endpoint received for
// subscription id, by event.
func lifecycleEvents(e *endpoint, id string) map[string]int {
	out := map[string]int{}
	for _, it := range e.items() {
		if it.LifecycleEvent != "" && it.SubscriptionID == id {
			out[it.LifecycleEvent]++
		}
	}
	return out
}

func (e *endpoint) handshakeLog() []handshake {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]handshake(nil), e.handshakes...)
}

func (e *endpoint) waitItems(t testing.TB, n int) []graphsim.Notification {
	t.Helper()
	testkit.CheckFor(t, 10*time.Second, func() error {
		if got := len(e.items()); got < n {
			return fmt.Errorf("%d of %d notifications", got, n)
		}
		return nil
	})
	return e.items()
}

// accessToken gets a bearer token from the simulator's token endpoint
// with the registered secret of clientID.
func accessToken(t testing.TB, s *graphsim.Sim, clientID string) string {
	t.Helper()
	app, ok := s.App(clientID)
	if !ok {
		t.Fatalf("app %s is not registered", clientID)
	}
	resp, err := http.PostForm(s.TokenURL(""), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {app.Secret},
		"scope": {"https://graph.microsoft.com/.default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if resp.StatusCode != 200 {
		t.Fatalf("token endpoint: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.TokenType != "Bearer" {
		t.Fatalf("token response: %v %+v", err, tr)
	}
	return tr.AccessToken
}

// graphError is Graph's error body.
type graphError struct {
	Error struct {
		Code       string            `json:"code"`
		Message    string            `json:"message"`
		InnerError map[string]string `json:"innerError"`
	} `json:"error"`
}

// call makes an API request and decodes the JSON answer into out (if any).
func call(t testing.TB, method, u, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	return send(t, http.DefaultClient, req, out)
}

// send sends req with c and decodes the JSON answer into out (if any); it
// returns the status.
func send(t testing.TB, c *http.Client, req *http.Request, out any) int {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", req.Method, req.URL, b, err)
		}
	}
	return resp.StatusCode
}

func subRequest(e *endpoint, resource string) graphsim.SubscriptionRequest {
	return graphsim.SubscriptionRequest{
		ChangeType:         "created,updated",
		NotificationURL:    e.URL + "/notify?tenant=contoso",
		Resource:           resource,
		ExpirationDateTime: time.Now().Add(2 * time.Hour),
		ClientState:        "secret-client-state",
	}
}

// lifecycleRequest is subRequest with lifecycle notifications to e's
// /lifecycle path.
func lifecycleRequest(e *endpoint, resource string) graphsim.SubscriptionRequest {
	req := subRequest(e, resource)
	req.LifecycleNotificationURL = e.URL + "/lifecycle"
	return req
}

func decodeJSON(t testing.TB, r io.Reader, v any) {
	t.Helper()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

// create creates the subscription req describes on s and fails the test
// if s refuses it.
func create(t testing.TB, s *graphsim.Sim, req graphsim.SubscriptionRequest) *graphsim.Subscription {
	t.Helper()
	sub, err := s.CreateSubscription(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}
