package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/token"
)

const (
	secret  = "s3cret-client-state"
	tenant  = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	subBase = "00000000-0000-4000-8000-"
)

// recorder is a Sink that records every batch, or fails after Fail.
type recorder struct {
	testkit.Recorder[*receiver.Batch]
}

func (s *recorder) Deliver(ctx context.Context, b *receiver.Batch) error {
	return s.Record(b)
}

// failingRecorder is a recorder whose Deliver returns err.
func failingRecorder(err error) *recorder {
	s := &recorder{}
	s.Fail(err)
	return s
}

// accepted returns the notifications of every batch delivered, in order.
func (s *recorder) accepted() []*receiver.Notification {
	var out []*receiver.Notification
	for _, b := range s.All() {
		out = append(out, b.Notifications...)
	}
	return out
}

// acceptedIDs returns the ids of the accepted notifications in order,
// joined by commas.
func (s *recorder) acceptedIDs() string {
	var ids []string
	for _, n := range s.accepted() {
		ids = append(ids, n.ID)
	}
	return strings.Join(ids, ",")
}

// rejected returns the rejected items of every batch delivered, in order.
func (s *recorder) rejected() []*receiver.Rejected {
	var out []*receiver.Rejected
	for _, b := range s.All() {
		out = append(out, b.Rejected...)
	}
	return out
}

// wantRejected fails the test unless the sink rejected exactly n items,
// each for reason with an error matching wantErr, and returns them.
func (s *recorder) wantRejected(t *testing.T, n int, reason receiver.Reason, wantErr error) []*receiver.Rejected {
	t.Helper()
	rj := s.rejected()
	if len(rj) != n {
		t.Fatalf("rejected = %d, want %d", len(rj), n)
	}
	for i, x := range rj {
		if x.Reason != reason || !errors.Is(x.Err, wantErr) {
			t.Errorf("rejected item %d (%s): reason %q err %v, want %q %v", i, x.Notification.ID, x.Reason, x.Err, reason, wantErr)
		}
	}
	return rj
}

// serve starts a real HTTP server on loopback with the receiver mounted on
// both the notification and the lifecycle path.
func serve(t *testing.T, cfg receiver.Config) (*httptest.Server, *receiver.Receiver) {
	t.Helper()
	r, err := receiver.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/notifications", r)
	mux.Handle("/lifecycle", r)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, r
}

func post(t *testing.T, u, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	return testkit.Do(t, http.MethodPost, u, contentType, body)
}

// accept posts body to u as JSON and fails the test unless it is answered
// 202.
func accept(t *testing.T, u string, body []byte) {
	t.Helper()
	if resp, b := post(t, u, "application/json", body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: status = %d (%s), want 202", u, resp.StatusCode, b)
	}
}

// item builds one change notification the way Graph shapes it.
func item(i int, clientState, changeType string) map[string]any {
	return map[string]any{
		"id":                             fmt.Sprintf("id-%d", i),
		"subscriptionId":                 fmt.Sprintf("%s%012d", subBase, i%3),
		"subscriptionExpirationDateTime": "2030-03-20T11:00:00.0000000Z",
		"clientState":                    clientState,
		"changeType":                     changeType,
		"resource":                       fmt.Sprintf("users/u1/messages/m%d", i),
		"tenantId":                       tenant,
		"resourceData": map[string]any{
			"@odata.type": "#Microsoft.Graph.Message",
			"@odata.etag": fmt.Sprintf("W/\"etag-%d\"", i),
			"id":          fmt.Sprintf("m%d", i),
		},
	}
}

func lifecycleItem(i int, clientState, event string) map[string]any {
	return map[string]any{
		"subscriptionId":                 fmt.Sprintf("%s%012d", subBase, i),
		"subscriptionExpirationDateTime": "2030-03-20T11:00:00+05:30",
		"tenantId":                       tenant,
		"clientState":                    clientState,
		"lifecycleEvent":                 event,
	}
}

func collection(t testing.TB, items ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"value": items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collectionWithToken is collection with tok as the batch's only
// validation token, as Graph sends rich notifications.
func collectionWithToken(t testing.TB, tok string, items ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"value": items, "validationTokens": []string{tok}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidationHandshakeEchoesDecodedToken(t *testing.T) {
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: &recorder{}})
	tokens := []struct {
		name, query, want string
	}{
		{"graph form", "Validation%3a+Testing+client+application+reachability+for+subscription+Request-Id%3a+336960d6-0000", "Validation: Testing client application reachability for subscription Request-Id: 336960d6-0000"},
		{"encoded plus", "a%2Bb", "a+b"},
		{"plus is space", "a+b", "a b"},
		{"percent space", "a%20b", "a b"},
		{"script", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "<script>alert(1)</script>"},
		{"ampersand quote", "x%26y%27z", "x&y'z"},
		{"empty", "", ""},
	}
	for _, path := range []string{"/notifications", "/lifecycle"} {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			for _, tc := range tokens {
				t.Run(path+" "+method+" "+tc.name, func(t *testing.T) {
					u := srv.URL + path + "?tenant=contoso&validationToken=" + tc.query
					resp, body := testkit.Do(t, method, u, "text/plain; charset=utf-8", nil)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status = %d, want 200", resp.StatusCode)
					}
					if string(body) != tc.want {
						t.Errorf("body = %q, want %q", body, tc.want)
					}
					if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
						t.Errorf("Content-Type = %q", ct)
					}
					if ns := resp.Header.Get("X-Content-Type-Options"); ns != "nosniff" {
						t.Errorf("X-Content-Type-Options = %q", ns)
					}
				})
			}
		}
	}
	if got := r.Stats().Handshakes; got != uint64(2*2*len(tokens)) {
		t.Errorf("Stats.Handshakes = %d, want %d", got, 2*2*len(tokens))
	}
}

func TestValidationHandshakeRejectsLongTokenAndOtherMethods(t *testing.T) {
	srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: &recorder{}, MaxTokenBytes: 64})
	resp, _ := post(t, srv.URL+"/notifications?validationToken="+strings.Repeat("a", 65), "text/plain", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("long token: status = %d, want 400", resp.StatusCode)
	}
	resp2, _ := testkit.Do(t, http.MethodPut, srv.URL+"/notifications?validationToken=x", "", nil)
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status = %d, want 405", resp2.StatusCode)
	}
}

func TestValidBatchIsDeliveredOnceInOrder(t *testing.T) {
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{"old-secret", secret}, Sink: sink})
	var items []map[string]any
	for i := range 50 {
		items = append(items, item(i, secret, []string{"created", "updated", "deleted"}[i%3]))
	}
	resp, body := post(t, srv.URL+"/notifications?tenant=contoso&x=1", "application/json; charset=utf-8", collection(t, items...))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d (%s), want 202", resp.StatusCode, body)
	}
	got := sink.accepted()
	if len(got) != len(items) {
		t.Fatalf("delivered %d notifications, want %d", len(got), len(items))
	}
	for i, n := range got {
		if n.ID != items[i]["id"] || n.ChangeType != items[i]["changeType"] || n.Resource != items[i]["resource"] {
			t.Errorf("notification %d = %s/%s/%s, want %v", i, n.ID, n.ChangeType, n.Resource, items[i])
		}
	}
	if q := sink.All()[0].Query; q.Get("tenant") != "contoso" || q.Get("x") != "1" {
		t.Errorf("query = %v, want the notificationUrl's parameters", q)
	}
	if len(sink.rejected()) != 0 {
		t.Errorf("rejected = %d, want 0", len(sink.rejected()))
	}
	if st := r.Stats(); st.Accepted != 50 || st.Batches != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestForgedClientStateIsRejectedAndOthersStillDelivered(t *testing.T) {
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink})
	body := collection(t,
		item(0, secret, "created"),
		item(1, "forged", "created"),
		item(2, "", "updated"),
		item(3, secret+"x", "updated"),
		item(4, secret, "deleted"),
	)
	// 202 although items are forged: no oracle for forgers.
	accept(t, srv.URL+"/notifications", body)
	if ids := sink.acceptedIDs(); ids != "id-0,id-4" {
		t.Errorf("accepted = %s, want id-0,id-4", ids)
	}
	for _, x := range sink.wantRejected(t, 3, receiver.ReasonClientState, receiver.ErrClientStateMismatch) {
		if len(x.Notification.Raw) == 0 {
			t.Errorf("rejected %s lost its raw bytes", x.Notification.ID)
		}
	}
	if got := r.Stats().Rejected[receiver.ReasonClientState]; got != 3 {
		t.Errorf("Stats.Rejected[client_state] = %d, want 3", got)
	}
}

// TestClientStateLookup: each subscription the lookup knows is checked
// against its own value only; one it does not know is checked against
// ClientStates (a daemon's static values for subscriptions its manager did
// not create), and with none is rejected. item(i) uses subscription i%3.
func TestClientStateLookup(t *testing.T) {
	tests := []struct {
		name         string
		states       map[string]string // the lookup's values by subscription id
		static       []string          // Config.ClientStates
		items        []map[string]any
		wantIDs      string
		wantRejected int
		why          string
	}{
		{
			"per subscription", map[string]string{subBase + "000000000000": "alpha", subBase + "000000000001": "beta"}, nil,
			// 0 -> alpha, 1 -> beta, 2 -> unknown.
			[]map[string]any{item(0, "alpha", "created"), item(1, "alpha", "created"), item(4, "beta", "created"), item(2, "alpha", "created")},
			"id-0,id-4", 2, "wrong subscription's state, unknown subscription",
		},
		{
			"falls back to ClientStates", map[string]string{subBase + "000000000000": "managed"}, []string{"static"},
			// 0 is managed, 1 and 2 are unknown.
			[]map[string]any{item(0, "managed", "created"), item(3, "static", "created"), item(1, "static", "created"), item(2, "wrong", "created")},
			"id-0,id-1", 2, "managed by its value, unknown by ClientStates; a managed one with the static value, an unknown one with a wrong value",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recorder{}
			srv, _ := serve(t, receiver.Config{Sink: sink, ClientStates: tc.static, ClientStateLookup: mapLookup(tc.states, nil)})
			accept(t, srv.URL+"/notifications", collection(t, tc.items...))
			if ids := sink.acceptedIDs(); ids != tc.wantIDs {
				t.Errorf("accepted = %s, want %s (%s)", ids, tc.wantIDs, tc.why)
			}
			if n := len(sink.rejected()); n != tc.wantRejected {
				t.Errorf("rejected = %d, want %d (%s)", n, tc.wantRejected, tc.why)
			}
		})
	}
}

// TestClientStateLookupFailureIs503: when the lookup cannot answer, Graph
// is asked to redeliver.
func TestClientStateLookupFailureIs503(t *testing.T) {
	var failing atomic.Bool
	srv, _ := serve(t, receiver.Config{Sink: &recorder{}, ClientStateLookup: mapLookup(map[string]string{subBase + "000000000000": "alpha"}, &failing)})
	accept(t, srv.URL+"/notifications", collection(t, item(0, "alpha", "created")))
	failing.Store(true)
	resp, _ := post(t, srv.URL+"/notifications", "application/json", collection(t, item(0, "alpha", "created")))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("lookup failure: status = %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// mapLookup is a ClientStateLookup answering from states; while failing is
// set (when not nil) it fails as a directory that is down.
func mapLookup(states map[string]string, failing *atomic.Bool) func(context.Context, string) (string, error) {
	return func(ctx context.Context, id string) (string, error) {
		if failing != nil && failing.Load() {
			return "", errors.New("directory down")
		}
		s, ok := states[id]
		if !ok {
			return "", receiver.ErrUnknownSubscription
		}
		return s, nil
	}
}

func TestLifecycleEventsAreRoutedByKind(t *testing.T) {
	var mu sync.Mutex
	var changes, lifecycles []string
	sink := receiver.Callbacks{
		OnChange: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, n.ChangeType)
			return nil
		},
		OnLifecycle: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
			mu.Lock()
			defer mu.Unlock()
			lifecycles = append(lifecycles, n.LifecycleEvent)
			return nil
		},
	}
	srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink})
	// The lifecycle URL may equal the notification URL: one batch mixes both.
	body := collection(t,
		lifecycleItem(0, secret, "reauthorizationRequired"),
		item(1, secret, "updated"),
		lifecycleItem(2, secret, "subscriptionRemoved"),
		lifecycleItem(3, secret, "missed"),
		lifecycleItem(4, "forged", "subscriptionRemoved"),
	)
	for _, path := range []string{"/lifecycle", "/notifications"} {
		changes, lifecycles = nil, nil
		resp, _ := post(t, srv.URL+path, "application/json", body)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: status = %d", path, resp.StatusCode)
		}
		if got := strings.Join(lifecycles, ","); got != "reauthorizationRequired,subscriptionRemoved,missed" {
			t.Errorf("%s: lifecycle events = %s", path, got)
		}
		if got := strings.Join(changes, ","); got != "updated" {
			t.Errorf("%s: changes = %s", path, got)
		}
	}
}

func TestMalformedRequestsGetTheRightStatus(t *testing.T) {
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, MaxBodyBytes: 1024})
	tests := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantStatus  int
	}{
		{"not json", http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{"no value", http.MethodPost, "application/json", `{"values":[]}`, http.StatusBadRequest},
		{"value not array", http.MethodPost, "application/json", `{"value":{}}`, http.StatusBadRequest},
		{"json null", http.MethodPost, "application/json", `null`, http.StatusBadRequest},
		{"tokens not strings", http.MethodPost, "application/json", `{"value":[],"validationTokens":[1]}`, http.StatusBadRequest},
		{"too large", http.MethodPost, "application/json", `{"value":[` + strings.Repeat(`{},`, 400) + `{}]}`, http.StatusRequestEntityTooLarge},
		{"text plain", http.MethodPost, "text/plain", `{"value":[]}`, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "", `{"value":[]}`, http.StatusUnsupportedMediaType},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", `value=1`, http.StatusUnsupportedMediaType},
		{"put", http.MethodPut, "application/json", `{"value":[]}`, http.StatusMethodNotAllowed},
		{"get without token", http.MethodGet, "", ``, http.StatusMethodNotAllowed},
		{"empty batch", http.MethodPost, "application/json", `{"value":[]}`, http.StatusAccepted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := testkit.Do(t, tc.method, srv.URL+"/notifications", tc.contentType, []byte(tc.body))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus >= 400 {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Errorf("error body = %q, want a short JSON error", body)
				}
			}
		})
	}
	if got := r.Stats().Invalid; got != uint64(len(tests)-1) {
		t.Errorf("Stats.Invalid = %d, want %d", got, len(tests)-1)
	}
	if len(sink.accepted()) != 0 {
		t.Errorf("a malformed request delivered notifications")
	}
}

func TestMalformedItemIsQuarantinedAndOthersDelivered(t *testing.T) {
	sink := &recorder{}
	srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink})
	bad := []string{
		`"a string"`,
		`{"changeType":"created","clientState":"` + secret + `"}`,
		`{"subscriptionId":"s","clientState":"` + secret + `"}`,
		`{"subscriptionId":"s","changeType":"created","lifecycleEvent":"missed","clientState":"` + secret + `"}`,
		`{"subscriptionId":"s","changeType":7,"clientState":"` + secret + `"}`,
		`{"subscriptionId":"s","changeType":"created","subscriptionExpirationDateTime":"yesterday","clientState":"` + secret + `"}`,
	}
	good, _ := json.Marshal(item(9, secret, "created"))
	body := `{"value":[` + strings.Join(bad, ",") + `,` + string(good) + `]}`
	accept(t, srv.URL+"/notifications", []byte(body))
	if got := sink.accepted(); len(got) != 1 || got[0].ID != "id-9" {
		t.Fatalf("accepted = %v, want only id-9", got)
	}
	for i, x := range sink.wantRejected(t, len(bad), receiver.ReasonMalformed, receiver.ErrMalformed) {
		if string(x.Notification.Raw) != bad[i] {
			t.Errorf("item %d: raw = %s, want %s", i, x.Notification.Raw, bad[i])
		}
	}
}

func TestSinkFailureIs503WithRetryAfter(t *testing.T) {
	sink := failingRecorder(errors.New("bus down"))
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, RetryAfter: 7 * time.Second})
	resp, body := post(t, srv.URL+"/notifications", "application/json", collection(t, item(0, secret, "created")))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "7" {
		t.Errorf("Retry-After = %q, want 7", ra)
	}
	if strings.Contains(string(body), "bus down") {
		t.Errorf("503 body leaks the internal cause: %s", body)
	}
	if r.Stats().Unavailable != 1 {
		t.Errorf("Stats.Unavailable = %d, want 1", r.Stats().Unavailable)
	}
}

func TestBlockingSinkRespectsRequestBudget(t *testing.T) {
	sawDeadline := make(chan error, 1)
	sink := receiver.SinkFunc(func(ctx context.Context, b *receiver.Batch) error {
		<-ctx.Done()
		sawDeadline <- ctx.Err()
		return ctx.Err()
	})
	srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Timeout: 50 * time.Millisecond})
	resp, _ := post(t, srv.URL+"/notifications", "application/json", collection(t, item(0, secret, "created")))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	if err := <-sawDeadline; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("sink saw %v, want context.DeadlineExceeded", err)
	}

	// A client that goes away cancels the sink's context too.
	ctx, cancel := context.WithCancel(t.Context())
	srv2, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Timeout: time.Minute})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv2.URL+"/notifications", bytes.NewReader(collection(t, item(0, secret, "created"))))
	req.Header.Set("Content-Type", "application/json")
	go func() {
		_, _ = http.DefaultClient.Do(req)
	}()
	time.AfterFunc(20*time.Millisecond, cancel)
	select {
	case err := <-sawDeadline:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("sink saw %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sink was not cancelled when the client went away")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  receiver.Config
	}{
		{"no sink", receiver.Config{ClientStates: []string{secret}}},
		{"no client state", receiver.Config{Sink: &recorder{}}},
		{"empty client state", receiver.Config{Sink: &recorder{}, ClientStates: []string{""}}},
		{"long client state", receiver.Config{Sink: &recorder{}, ClientStates: []string{strings.Repeat("x", 256)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := receiver.New(tc.cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

// richItem encrypts content for key as Graph does.
func richItem(t testing.TB, i int, key decrypt.Key, content string) map[string]any {
	t.Helper()
	ec, err := graphsim.Encrypt(key.Certificate, key.ID, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	it := item(i, secret, "created")
	it["encryptedContent"] = ec
	return it
}

func TestRichNotificationsAreDecryptedOrQuarantined(t *testing.T) {
	key := testkit.DecryptKey(t, "cert-1")
	other := testkit.DecryptKey(t, "cert-unknown")
	ring := testkit.KeyRing(t, key)
	sink := &recorder{}
	srv, r := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, InsecureSkipTokenValidation: true})

	tampered := richItem(t, 2, key, `{"n":2}`)
	ec := tampered["encryptedContent"].(*decrypt.EncryptedContent)
	ec.DataSignature = "AAAA" + ec.DataSignature[4:]
	items := []map[string]any{
		richItem(t, 0, key, `{"n":0}`),
		richItem(t, 1, other, `{"n":1}`),
		tampered,
		item(3, secret, "updated"),
		richItem(t, 4, key, `{"n":4,"body":"Hello World"}`),
	}
	body := collectionWithToken(t, "unchecked", items...)
	accept(t, srv.URL+"/notifications", body)
	got := sink.accepted()
	var summary []string
	for _, n := range got {
		summary = append(summary, n.ID+"="+string(n.Content))
	}
	if want := `id-0={"n":0},id-3=,id-4={"n":4,"body":"Hello World"}`; strings.Join(summary, ",") != want {
		t.Errorf("accepted = %s, want %s", strings.Join(summary, ","), want)
	}
	rj := sink.rejected()
	if len(rj) != 2 {
		t.Fatalf("rejected = %d, want 2", len(rj))
	}
	if !errors.Is(rj[0].Err, decrypt.ErrUnknownKey) || !errors.Is(rj[1].Err, decrypt.ErrSignature) {
		t.Errorf("rejected errors = %v, %v; want ErrUnknownKey, ErrSignature", rj[0].Err, rj[1].Err)
	}
	for _, x := range rj {
		if x.Reason != receiver.ReasonDecrypt || x.Notification.Content != nil {
			t.Errorf("rejected %s: reason %q, content set: %v", x.Notification.ID, x.Reason, x.Notification.Content != nil)
		}
	}
	if r.Stats().Rejected[receiver.ReasonDecrypt] != 2 {
		t.Errorf("Stats.Rejected[decrypt] = %d", r.Stats().Rejected[receiver.ReasonDecrypt])
	}
}

func TestRichBatchWithoutTokensFailsClosed(t *testing.T) {
	key := testkit.DecryptKey(t, "cert-1")
	ring := testkit.KeyRing(t, key)
	rich := richItem(t, 0, key, `{"n":0}`)
	basic := item(1, secret, "updated")
	tests := []struct {
		name       string
		cfg        receiver.Config
		tokens     any // omitted when nil
		wantReason receiver.Reason
		wantErr    error
	}{
		{"tokens absent", receiver.Config{InsecureSkipTokenValidation: true}, nil, receiver.ReasonTokenMissing, token.ErrNoTokens},
		{"tokens null", receiver.Config{InsecureSkipTokenValidation: true}, "null", receiver.ReasonTokenMissing, token.ErrNoTokens},
		{"tokens empty", receiver.Config{InsecureSkipTokenValidation: true}, []string{}, receiver.ReasonTokenMissing, token.ErrNoTokens},
		{"no validator configured", receiver.Config{}, []string{"x.y.z"}, receiver.ReasonTokenInvalid, receiver.ErrNoTokenValidator},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recorder{}
			cfg := tc.cfg
			cfg.Sink, cfg.ClientStates, cfg.Keys = sink, []string{secret}, ring
			var logs testkit.SyncBuffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			srv, _ := serve(t, cfg)
			m := map[string]any{"value": []map[string]any{rich, basic}}
			switch v := tc.tokens.(type) {
			case string:
				m["validationTokens"] = nil
			case []string:
				m["validationTokens"] = v
			}
			body, _ := json.Marshal(m)
			accept(t, srv.URL+"/notifications", body)
			if n := len(sink.accepted()); n != 0 {
				t.Errorf("accepted = %d, want 0: no item of an unverified batch reaches consumers", n)
			}
			sink.wantRejected(t, 2, tc.wantReason, tc.wantErr)
			if tc.name == "tokens null" && !strings.Contains(logs.String(), "Microsoft Graph Change Tracking") {
				t.Errorf("null tokens: no operator hint in the log:\n%s", logs.String())
			}
		})
	}
}

func TestSecretsNeverReachTheLog(t *testing.T) {
	key := testkit.DecryptKey(t, "cert-1")
	ring := testkit.KeyRing(t, key)
	var logs testkit.SyncBuffer
	sink := &recorder{}
	srv, _ := serve(t, receiver.Config{
		ClientStates: []string{secret}, Sink: sink, Keys: ring, InsecureSkipTokenValidation: true,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	const plaintext = "TOP-SECRET-PLAINTEXT"
	forged := item(1, "forged-client-state-value", "created")
	body := collectionWithToken(t, "eyJ.secret-token.sig", richItem(t, 0, key, `{"s":"`+plaintext+`"}`), forged)
	accept(t, srv.URL+"/notifications", body)
	if len(sink.accepted()) != 1 || len(sink.rejected()) != 1 {
		t.Fatalf("accepted %d rejected %d, want 1 and 1", len(sink.accepted()), len(sink.rejected()))
	}
	// Formatting a notification must not leak either.
	fmt.Fprintf(&logs, "%v %+v", sink.accepted()[0].ClientState, sink.accepted()[0].Content)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("n", "n", sink.accepted()[0], "cs", sink.accepted()[0].ClientState, "content", sink.accepted()[0].Content)
	for _, s := range []string{secret, "forged-client-state-value", plaintext, "secret-token"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log contains secret %q:\n%s", s, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "notification rejected") {
		t.Errorf("the rejection was not logged:\n%s", logs.String())
	}
}

func TestParseKeepsUnknownFieldsAndTimestamps(t *testing.T) {
	for _, name := range []string{"basic.json", "lifecycle.json", "presence.json", "rich.json"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			c, err := receiver.Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for i, n := range c.Value {
				if err := n.Validate(); err != nil {
					t.Errorf("item %d: %v", i, err)
				}
				if n.SubscriptionExpirationDateTime.IsZero() {
					t.Errorf("item %d: expiration not parsed", i)
				}
			}
			out, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			// Round trip: the same JSON value, timestamps spelled as Graph did.
			var a, b any
			_ = json.Unmarshal(raw, &a)
			_ = json.Unmarshal(out, &b)
			if !jsonEqual(a, b) {
				t.Errorf("round trip changed the document:\n in: %s\nout: %s", raw, out)
			}
		})
	}
	raw, _ := os.ReadFile("testdata/presence.json")
	c, _ := receiver.Parse(raw)
	n := c.Value[0]
	if string(n.Extra["organizationId"]) != `"84bd8158-6d4d-4958-8b9f-9d6445542f95"` {
		t.Errorf("organizationId not kept: %s", n.Extra["organizationId"])
	}
	want := time.Date(2021, 12, 31, 16, 16, 44, 990740500, time.FixedZone("", 5*3600+1800))
	if !n.SubscriptionExpirationDateTime.Equal(want) {
		t.Errorf("expiration = %v, want %v", n.SubscriptionExpirationDateTime, want)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
