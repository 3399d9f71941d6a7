package graphsim_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

func TestChangeDeliversBatchedBasicNotifications(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxBatch = 2
	s := newSim(t, cfg)
	e := newEndpoint(t)
	sub := create(t, s, subRequest(e, "me/messages"))
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Notifications != 5 || rep.Batches != 3 || len(rep.Items) != 5 || !slices.Equal(rep.Subscriptions, []string{sub.ID}) {
		t.Fatalf("report %+v", rep)
	}
	settle(t, s)
	items := e.waitItems(t, 5)
	if n := len(e.Bodies()); n != 3 {
		t.Errorf("%d POSTs, want 3 (MaxBatch 2)", n)
	}
	slices.SortFunc(items, func(a, b graphsim.Notification) int { return strings.Compare(a.ResourceData.ID, b.ResourceData.ID) })
	slices.SortFunc(rep.Items, func(a, b graphsim.Generated) int { return strings.Compare(a.ID, b.ID) })
	for i, n := range items {
		if n.SubscriptionID != sub.ID || n.ClientState != "secret-client-state" || n.TenantID != graphsim.DefaultTenantID ||
			n.ChangeType != "created" || n.SubscriptionExpirationDateTime != graphsim.FormatDateTime(sub.ExpirationDateTime) ||
			n.ResourceData == nil || n.ResourceData.ODataType != "#Microsoft.Graph.Message" || n.ResourceData.ID != rep.Items[i].ID ||
			n.Resource != "me/messages/"+rep.Items[i].ID || n.EncryptedContent != nil || n.ID == "" {
			t.Errorf("item %d: %+v", i, n)
		}
	}
	for _, c := range e.Bodies() {
		if c.ValidationTokens != nil {
			t.Error("basic batch carries validationTokens")
		}
	}
	// Only matching subscriptions get changes.
	if rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "me/events"}); err != nil || len(rep.Subscriptions) != 0 {
		t.Errorf("non-matching resource: %+v %v", rep, err)
	}
	if rep, err := s.Change(t.Context(), graphsim.ChangeRequest{ChangeType: "deleted"}); err != nil || rep.Notifications != 0 {
		t.Errorf("changeType not subscribed: %+v %v", rep, err)
	}
	if rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "ME/messages/abc"}); err != nil || rep.Notifications != 1 {
		t.Errorf("item under the subscribed collection: %+v %v", rep, err)
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: "nope"}); !errors.Is(err, graphsim.ErrNotFound) {
		t.Errorf("unknown subscription: %v", err)
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{Content: json.RawMessage("{")}); !errors.Is(err, graphsim.ErrBadRequest) {
		t.Errorf("bad content: %v", err)
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{ChangeType: "moved"}); !errors.Is(err, graphsim.ErrBadRequest) {
		t.Errorf("bad changeType: %v", err)
	}
}

func TestRichNotificationsDecryptAndCarryValidTokens(t *testing.T) {
	for _, version := range []string{"2.0", "1.0"} {
		t.Run(version, func(t *testing.T) {
			cfg := fastConfig()
			cfg.TokenVersion = version
			s := newSim(t, cfg)
			e := newEndpoint(t)
			key := testKey(t)
			req := subRequest(e, "teams/getAllMessages")
			req.IncludeResourceData = true
			req.EncryptionCertificate, req.EncryptionCertificateID = key.EncryptionCertificate(), key.ID
			req.LifecycleNotificationURL = e.URL + "/lifecycle"
			req.NotificationURLAppID = "aaaaaaaa-0000-0000-0000-000000000001"
			sub := create(t, s, req)
			custom := json.RawMessage(`{"id":"1","body":{"content":"Hello World"}}`)
			rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Count: 3})
			if err != nil {
				t.Fatal(err)
			}
			rep2, err := s.Change(t.Context(), graphsim.ChangeRequest{Content: custom})
			if err != nil {
				t.Fatal(err)
			}
			want := append(rep.Items, rep2.Items...)
			items := e.waitItems(t, 4)
			for i, n := range items {
				if n.EncryptedContent == nil || n.EncryptedContent.EncryptionCertificateID != key.ID ||
					!strings.EqualFold(n.EncryptedContent.EncryptionCertificateThumbprint, key.Thumbprint()) {
					t.Fatalf("item %d encryptedContent %+v", i, n.EncryptedContent)
				}
				pt, err := decrypt.Content(key.Private, n.EncryptedContent)
				if err != nil {
					t.Fatalf("item %d: decrypt: %v", i, err)
				}
				j := slices.IndexFunc(want, func(g graphsim.Generated) bool { return g.ID == n.ResourceData.ID })
				if j < 0 || string(pt) != string(want[j].Content) {
					t.Errorf("item %d: plaintext does not match the generated content", i)
				}
				if n.ID != "" || !strings.HasSuffix(n.Resource, "('"+n.ResourceData.ID+"')") {
					t.Errorf("teams item: id %q resource %q", n.ID, n.Resource)
				}
			}
			if string(want[3].Content) != string(custom) {
				t.Errorf("custom content not used: %s", want[3].Content)
			}
			set := fetchJWKS(t, s.JWKSURL())
			for _, c := range e.Bodies() {
				if len(c.ValidationTokens) != 1 {
					t.Fatalf("%d validationTokens, want 1 (one app, one tenant)", len(c.ValidationTokens))
				}
				claims := testkit.VerifyJWS(t, set, c.ValidationTokens[0])
				checkClaims(t, claims, version, req.NotificationURLAppID, graphsim.DefaultTenantID)
			}
			_ = sub
		})
	}
}

func fetchJWKS(t testing.TB, u string) jwk.Set {
	t.Helper()
	var raw json.RawMessage
	if st := call(t, "GET", u, "", nil, &raw); st != http.StatusOK {
		t.Fatalf("GET %s: %d", u, st)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func checkClaims(t testing.TB, c map[string]any, version, aud, tid string) {
	t.Helper()
	str := func(k string) string { s, _ := c[k].(string); return s }
	num := func(k string) int64 { f, _ := c[k].(float64); return int64(f) }
	if str("aud") != aud || str("tid") != tid || str("ver") != version {
		t.Errorf("aud/tid/ver = %q/%q/%q", str("aud"), str("tid"), str("ver"))
	}
	now := time.Now().Unix()
	if !(num("nbf") <= now && now < num("exp") && num("iat") <= now) {
		t.Errorf("lifetime iat %d nbf %d exp %d around %d", num("iat"), num("nbf"), num("exp"), now)
	}
	switch version {
	case "2.0":
		if str("iss") != "https://login.microsoftonline.com/"+tid+"/v2.0" || str("azp") != graphsim.GraphChangeTrackingAppID || str("azpacr") != "2" {
			t.Errorf("v2 claims %v", c)
		}
		if d := num("exp") - num("iat"); d != 86700 {
			t.Errorf("v2 lifetime %d s, want 86700", d)
		}
	case "1.0":
		if str("iss") != "https://sts.windows.net/"+tid+"/" || str("appid") != graphsim.GraphChangeTrackingAppID || str("appidacr") != "2" {
			t.Errorf("v1 claims %v", c)
		}
	}
}

func TestRetriesOn5xxTimeoutAndConnectionErrorsThenDelivers(t *testing.T) {
	cfg := fastConfig()
	cfg.Timeout = 300 * time.Millisecond
	cfg.RetryTimeout = 300 * time.Millisecond
	s := newSim(t, cfg)
	e := newEndpoint(t)
	// POST 1: 503; 2: 500; 3: timeout; 4: connection closed; 5: 404; then 202.
	e.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.WriteHeader(http.StatusInternalServerError)
		case 3:
			<-r.Context().Done()
		case 4:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case 5:
			w.WriteHeader(http.StatusNotFound)
		default:
			return false
		}
		return true
	})
	if _, err := s.CreateSubscription(t.Context(), subRequest(e, "me/messages")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	items := e.items()
	if len(items) != 3 {
		t.Fatalf("%d notifications accepted, want exactly 3", len(items))
	}
	ds := s.Deliveries()
	if len(ds) != 1 || ds[0].ID != rep.Deliveries[0] {
		t.Fatalf("deliveries %+v", ds)
	}
	d := ds[0]
	if d.State != graphsim.StateDelivered || d.Retries() != 5 {
		t.Fatalf("state %s after %d retries, want delivered after 5", d.State, d.Retries())
	}
	wantStatus := []int{503, 500, 0, 0, 404, 202}
	for i, a := range d.Attempts {
		if a.Status != wantStatus[i] {
			t.Errorf("attempt %d status %d, want %d (%s)", i, a.Status, wantStatus[i], a.Error)
		}
	}
	if d.Attempts[2].Error != "timeout" || d.Attempts[3].Error != "connection error" {
		t.Errorf("attempt errors %q, %q", d.Attempts[2].Error, d.Attempts[3].Error)
	}
	if d.Attempts[0].Budget != cfg.Timeout || d.Attempts[1].Budget != cfg.RetryTimeout {
		t.Errorf("budgets %v, %v", d.Attempts[0].Budget, d.Attempts[1].Budget)
	}
	// Backoff doubles: the wait before attempt i is at least RetryBackoff
	// * 2^(i-1), scaled (timers never fire early, so a lower bound is
	// robust on a loaded machine where upper bounds and comparisons
	// between consecutive waits are not).
	nominal := 10 * time.Second // the default RetryBackoff
	for i := 1; i < len(d.Attempts); i++ {
		cur := d.Attempts[i].Start.Sub(d.Attempts[i-1].Start) - d.Attempts[i-1].Latency
		want := time.Duration(float64(nominal) * cfg.TimeScale)
		if cur+200*time.Microsecond < want {
			t.Errorf("wait before attempt %d is %v, want at least %v", i, cur, want)
		}
		nominal *= 2
	}
	eps := s.Endpoints()
	if len(eps) != 1 || eps[0].Attempts != 6 || eps[0].Delivered != 1 {
		t.Errorf("endpoints %+v", eps)
	}
}

func TestRedeliveryAfterOutageLandsExactlyOnce(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	down := make(chan struct{})
	e.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		select {
		case <-down:
			return false
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
	})
	if _, err := s.CreateSubscription(t.Context(), subRequest(e, "me/messages")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Count: 250})
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if n := e.Posts(); n < 10 {
			return fmt.Errorf("%d failed POSTs so far", n)
		}
		return nil
	})
	close(down)
	settle(t, s)
	seen := map[string]int{}
	for _, n := range e.items() {
		seen[n.ResourceData.ID]++
	}
	for _, it := range rep.Items {
		if seen[it.ID] != 1 {
			t.Errorf("item %s accepted %d times, want 1", it.ID, seen[it.ID])
		}
	}
	if len(seen) != 250 {
		t.Errorf("%d distinct items accepted, want 250", len(seen))
	}
}

func TestFailingDeliveryIsDiscardedAfterRetryWindow(t *testing.T) {
	cfg := fastConfig()
	// Backoff 10 s → 100 ms; the 100 s window → 1 s, so the last retry (at
	// about 0.7 s) and the one after it (1.5 s) are 300 ms clear of it:
	// robust on a loaded machine.
	cfg.TimeScale = 0.01
	cfg.RetryFor = 100 * time.Second
	s := newSim(t, cfg)
	e := newEndpoint(t)
	e.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	if _, err := s.CreateSubscription(t.Context(), subRequest(e, "me/messages")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{}); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	d := s.Deliveries()[0]
	// Waits 10, 20, 40 s then the next (80 s) would pass the 100 s window.
	if d.State != graphsim.StateFailed || len(d.Attempts) != 4 {
		t.Errorf("state %s after %d attempts, want failed after 4", d.State, len(d.Attempts))
	}
	if ep := s.Endpoints()[0]; ep.Failed != 1 {
		t.Errorf("endpoint %+v", ep)
	}
}

func TestThrottlingClassifiesSlowAndDropEndpoints(t *testing.T) {
	cfg := fastConfig()
	cfg.Timeout = 50 * time.Millisecond
	cfg.RetryTimeout = 80 * time.Millisecond
	cfg.ThrottleMinSamples = 4
	cfg.MaxBatch = 1
	cfg.RetryFor = time.Hour // scaled: 360 ms
	s := newSim(t, cfg)

	slow := newEndpoint(t) // first attempts time out, retries succeed
	var seenMu sync.Mutex
	seen := map[string]bool{}
	slow.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		seenMu.Lock()
		retry := seen[string(body)]
		seen[string(body)] = true
		seenMu.Unlock()
		if !retry {
			<-r.Context().Done()
			return true
		}
		return false
	})
	dead := newEndpoint(t) // never answers
	dead.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		<-r.Context().Done()
		return true
	})
	reqSlow := subRequest(slow, "me/messages")
	reqDead := subRequest(dead, "me/events")
	for _, r := range []graphsim.SubscriptionRequest{reqSlow, reqDead} {
		if _, err := s.CreateSubscription(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "me/messages", Count: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "me/events", Count: 2}); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	states := map[string]string{}
	for _, ep := range s.Endpoints() {
		states[ep.URL[:len(slow.URL)]] = ep.State
		if ep.Window < 4 {
			t.Errorf("endpoint %s: %d samples", ep.URL, ep.Window)
		}
	}
	if states[slow.URL] != graphsim.EndpointSlow || states[dead.URL] != graphsim.EndpointDrop {
		t.Fatalf("states %v, want slow and drop", states)
	}
	// New notifications for the drop endpoint are dropped without a POST.
	before := dead.Posts()
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "me/events"})
	if err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	ds := s.Deliveries()
	last := ds[slices.IndexFunc(ds, func(d graphsim.Delivery) bool { return d.ID == rep.Deliveries[0] })]
	if last.State != graphsim.StateDropped || len(last.Attempts) != 0 || dead.Posts() != before {
		t.Errorf("delivery to drop endpoint: %s with %d attempts", last.State, len(last.Attempts))
	}
}

func TestExpiredSubscriptionIsRemovedWithSubscriptionRemoved(t *testing.T) {
	s, clk := newClockedSim(t)
	e := newEndpoint(t)
	req := lifecycleRequest(e, "me/messages")
	sub := create(t, s, req)
	other := subRequest(e, "users") // user: no subscriptionRemoved support
	other.ChangeType = "updated"
	other.LifecycleNotificationURL = e.URL + "/lifecycle"
	if _, err := s.CreateSubscription(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2*time.Hour + time.Minute)
	// Past expiration, before the sweep: no changes are generated.
	if rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "me/messages"}); err != nil || rep.Notifications != 0 {
		t.Errorf("change on expired subscription: %+v %v", rep, err)
	}
	if err := s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscription(sub.ID); !errors.Is(err, graphsim.ErrNotFound) {
		t.Errorf("expired subscription still there: %v", err)
	}
	if n := len(s.Subscriptions()); n != 0 {
		t.Errorf("%d subscriptions left", n)
	}
	items := e.waitItems(t, 1)
	settle(t, s)
	if len(e.items()) != 1 {
		t.Fatalf("%d lifecycle notifications, want 1 (users do not get subscriptionRemoved)", len(e.items()))
	}
	n := items[0]
	// Shaped as real tenants send lifecycle items (protocol doc §11, issue
	// 11): organizationId instead of tenantId, resource Subscriptions/{id}.
	if n.LifecycleEvent != graphsim.EventSubscriptionRemoved || n.SubscriptionID != sub.ID || n.ClientState != req.ClientState ||
		n.ChangeType != "" || n.Resource != "Subscriptions/"+sub.ID || n.ResourceData == nil ||
		n.ResourceData.ODataType != "#microsoft.graph.subscription" || n.OrganizationID != graphsim.DefaultTenantID || n.TenantID != "" {
		t.Errorf("lifecycle notification %+v", n)
	}
	if d := s.Deliveries(); !d[len(d)-1].Lifecycle || !strings.HasSuffix(d[len(d)-1].URL, "/lifecycle") {
		t.Errorf("delivery %+v", d[len(d)-1])
	}
}

func TestReauthorizationRequiredAndPause(t *testing.T) {
	s, clk := newClockedSim(t)
	e := newEndpoint(t)
	req := lifecycleRequest(e, "me/messages")
	req.ExpirationDateTime = clk.Now().Add(48 * time.Hour)
	sub := create(t, s, req)
	lifecycle := func() int { return lifecycleEvents(e, sub.ID)[graphsim.EventReauthorizationRequired] }
	sweep := func() {
		t.Helper()
		if err := s.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		settle(t, s)
	}
	sweep()
	if n := lifecycle(); n != 0 {
		t.Fatalf("%d challenges with an hour of authorization left", n)
	}
	clk.Advance(50 * time.Minute) // 10 min of the 1 h token left
	sweep()
	sweep()
	if n := lifecycle(); n != 1 {
		t.Fatalf("%d challenges, want exactly 1 (at most every 15 min)", n)
	}
	clk.Advance(11 * time.Minute) // token expired: paused
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Count: 2})
	if err != nil || rep.Paused != 2 || rep.Notifications != 0 {
		t.Fatalf("change while paused: %+v %v", rep, err)
	}
	if err := s.Reauthorize(t.Context(), sub.ID); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Change(t.Context(), graphsim.ChangeRequest{Count: 2})
	if err != nil || rep.Paused != 0 || rep.Notifications != 2 {
		t.Fatalf("change after reauthorize: %+v %v", rep, err)
	}
	if err := s.Lifecycle(t.Context(), sub.ID, graphsim.EventReauthorizationRequired); err != nil {
		t.Fatal(err)
	}
	e.waitItems(t, 1+2+1)
	if n := lifecycle(); n != 2 {
		t.Errorf("%d challenges after the explicit one, want 2", n)
	}
}

func TestLifecycleEvents(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	req := lifecycleRequest(e, "me/messages")
	sub := create(t, s, req)
	noURL, err := s.CreateSubscription(t.Context(), subRequest(e, "me/events"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      string
		event   string
		wantErr error
	}{
		{"missed", sub.ID, graphsim.EventMissed, nil},
		{"unknown event", sub.ID, "exploded", graphsim.ErrBadRequest},
		{"no lifecycle url", noURL.ID, graphsim.EventMissed, graphsim.ErrNoLifecycleURL},
		{"unknown subscription", "nope", graphsim.EventMissed, graphsim.ErrNotFound},
		{"removed", sub.ID, graphsim.EventSubscriptionRemoved, nil},
		{"after removal", sub.ID, graphsim.EventMissed, graphsim.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Lifecycle(t.Context(), tc.id, tc.event)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Lifecycle: %v, want %v", err, tc.wantErr)
			}
		})
	}
	items := e.waitItems(t, 2)
	got := []string{items[0].LifecycleEvent, items[1].LifecycleEvent}
	slices.Sort(got)
	if !slices.Equal(got, []string{"missed", "subscriptionRemoved"}) {
		t.Errorf("events %v", got)
	}
}

func TestRotateKeyKeepsPreviousKeyInJWKS(t *testing.T) {
	s := newSim(t, fastConfig())
	old, err := s.ValidationToken("app", "tid")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RotateKey(); err != nil {
		t.Fatal(err)
	}
	cur, err := s.ValidationToken("app", "tid")
	if err != nil {
		t.Fatal(err)
	}
	if old == cur {
		t.Fatal("token cache not cleared on rotation")
	}
	set := fetchJWKS(t, s.JWKSURL())
	if set.Len() != 2 {
		t.Fatalf("%d keys, want 2", set.Len())
	}
	testkit.VerifyJWS(t, set, old)
	testkit.VerifyJWS(t, set, cur)
	kid := func(tok string) string {
		m, err := jws.Parse([]byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		k, _ := m.Signatures()[0].ProtectedHeaders().KeyID()
		return k
	}
	if kid(old) == kid(cur) {
		t.Error("rotation kept the kid")
	}
}

func TestCloseIsIdempotentAndStopsWork(t *testing.T) {
	s, err := graphsim.New(fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, netErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{}); !errors.Is(err, netErrClosed) {
		t.Errorf("Change after Close: %v", err)
	}
}

var netErrClosed = net.ErrClosed

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf testkit.SyncBuffer
	cfg := fastConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newSim(t, cfg)
	e := newEndpoint(t)
	key := testKey(t)
	req := subRequest(e, "users/u1/events")
	req.ClientState = "very-secret-client-state"
	req.NotificationURL += "&code=url-secret"
	req.LifecycleNotificationURL = e.URL + "/l?code=url-secret"
	req.IncludeResourceData = true
	req.EncryptionCertificate, req.EncryptionCertificateID = key.EncryptionCertificate(), key.ID
	token := accessToken(t, s, graphsim.DefaultAppID)
	var sub graphsim.Subscription
	if st := call(t, "POST", s.GraphURL()+"/subscriptions", token, req, &sub); st != 201 {
		t.Fatalf("create: %d", st)
	}
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Lifecycle(t.Context(), sub.ID, graphsim.EventMissed); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	logs := buf.String()
	if !strings.Contains(logs, sub.ID) {
		t.Fatalf("logs do not mention the subscription: %s", logs)
	}
	var tok string
	for _, c := range e.Bodies() {
		if len(c.ValidationTokens) > 0 {
			tok = c.ValidationTokens[0]
		}
	}
	if tok == "" {
		t.Fatal("no rich batch arrived")
	}
	for _, secret := range []string{req.ClientState, "url-secret", token, tok, key.EncryptionCertificate()[:40], string(rep.Items[0].Content[:40])} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret (%.20q...)", secret)
		}
	}
}
