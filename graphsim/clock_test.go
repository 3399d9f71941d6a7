package graphsim_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// advance moves the simulated clock and waits for what fell due.
func advance(t testing.TB, s *graphsim.Sim, d time.Duration) {
	t.Helper()
	if err := s.Advance(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
}

// settle waits until s has no delivery pending.
func settle(t testing.TB, s *graphsim.Sim) {
	t.Helper()
	if err := s.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestThirtySimulatedDays is issue 11's second acceptance test: a client
// keeps an Outlook subscription alive for 30 simulated days through the
// HTTP API, and sees from its side every expiration, lifecycle event,
// throttling answer and quota that Graph would give it on the way.
func TestThirtySimulatedDays(t *testing.T) {
	cfg := fastConfig()
	cfg.Quotas.PerMailbox = 2
	s := newSim(t, cfg)
	e := newEndpoint(t)
	start := s.Now()
	base := s.GraphURL() + "/subscriptions"
	token := func() string { return accessToken(t, s, graphsim.DefaultAppID) }

	// The kept subscription, and one the client lets lapse.
	keep := subRequest(e, "users/alex/messages")
	keep.LifecycleNotificationURL = e.URL + "/lifecycle"
	keep.ExpirationDateTime = start.Add(3 * 24 * time.Hour)
	var kept graphsim.Subscription
	if st := call(t, "POST", base, token(), keep, &kept); st != 201 {
		t.Fatalf("create: %d", st)
	}
	lapse := subRequest(e, "users/alex/events")
	lapse.LifecycleNotificationURL = e.URL + "/lifecycle"
	lapse.ExpirationDateTime = start.Add(36 * time.Hour)
	var lapsed graphsim.Subscription
	if st := call(t, "POST", base, token(), lapse, &lapsed); st != 201 {
		t.Fatalf("create: %d", st)
	}

	// Quota: a third subscription on the mailbox is Graph's 403.
	var ge graphError
	third := subRequest(e, "users/alex/contacts")
	if st := call(t, "POST", base, token(), third, &ge); st != http.StatusForbidden || !strings.Contains(ge.Error.Message, "Maximum number of subscriptions has been reached") {
		t.Fatalf("third subscription on a mailbox with quota 2: %d %+v", st, ge.Error)
	}

	// Renewal beyond the maximum lifetime: the documented error, at the second.
	ge = graphError{}
	tooFar := map[string]any{"expirationDateTime": s.Now().Add(10080*time.Minute + 2*time.Second)}
	if st := call(t, "PATCH", base+"/"+kept.ID, token(), tooFar, &ge); st != 400 || ge.Error.Code != "ExtensionError" || !strings.Contains(ge.Error.Message, "10080 minutes") {
		t.Fatalf("renewal beyond 10080 min: %d %+v", st, ge.Error)
	}

	// Throttling: the 41st list within 20 s is 429 with Retry-After.
	tok := token()
	var retryAfter string
	for i := 1; i <= 41; i++ {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if i <= 40 && resp.StatusCode != 200 {
			t.Fatalf("list %d: %d", i, resp.StatusCode)
		}
		if i == 41 {
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("list 41: %d, want 429", resp.StatusCode)
			}
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	secs, err := strconv.Atoi(retryAfter)
	if err != nil || secs < 1 || secs > 20 {
		t.Fatalf("Retry-After %q", retryAfter)
	}
	advance(t, s, time.Duration(secs)*time.Second)
	if st := call(t, "GET", base, token(), nil, nil); st != 200 {
		t.Fatalf("list after Retry-After: %d", st)
	}

	// 30 days in 6-hour steps. The client renews when less than a day is
	// left and answers reauthorizationRequired by reauthorizing.
	renewals, reauths, delivered := 0, 0, 0
	seenChallenges := 0
	for step := 0; s.Now().Before(start.Add(30 * 24 * time.Hour)); step++ {
		advance(t, s, 6*time.Hour)
		tok := token()
		var sub graphsim.Subscription
		if st := call(t, "GET", base+"/"+kept.ID, tok, nil, &sub); st != 200 {
			t.Fatalf("day %.1f: kept subscription: %d", s.Now().Sub(start).Hours()/24, st)
		}
		if n := lifecycleEvents(e, kept.ID)[graphsim.EventReauthorizationRequired]; n > seenChallenges {
			seenChallenges = n
			if st := call(t, "POST", base+"/"+kept.ID+"/reauthorize", tok, nil, nil); st != http.StatusNoContent {
				t.Fatalf("reauthorize: %d", st)
			}
			reauths++
		}
		if sub.ExpirationDateTime.Sub(s.Now()) < 24*time.Hour {
			body := map[string]any{"expirationDateTime": s.Now().Add(3 * 24 * time.Hour)}
			if st := call(t, "PATCH", base+"/"+kept.ID, tok, body, nil); st != 200 {
				t.Fatalf("renew: %d", st)
			}
			renewals++
		}
		// A change each day reaches the endpoint: nothing was paused.
		if step%4 == 0 {
			rep, err := s.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: kept.ID})
			if err != nil || rep.Notifications != 1 || rep.Paused != 0 {
				t.Fatalf("day %d change: %+v %v", step/4, rep, err)
			}
			delivered++
		}
	}
	settle(t, s)
	if got := s.Now().Sub(start); got < 30*24*time.Hour || got > 31*24*time.Hour {
		t.Errorf("simulated %v", got)
	}
	// 30 days with a 3-day maximum: at least 9 renewals.
	if renewals < 9 {
		t.Errorf("%d renewals in 30 days", renewals)
	}
	// Every renewal is followed, 3 days later, by a schedule ending at
	// expiry: the client saw reauthorizationRequired and reacted.
	if reauths == 0 || seenChallenges == 0 {
		t.Errorf("no reauthorizationRequired in 30 days (%d reauthorizations)", reauths)
	}
	// The lapsed subscription expired at 36 h and was removed with
	// subscriptionRemoved; the kept one never was.
	if n := lifecycleEvents(e, lapsed.ID)[graphsim.EventSubscriptionRemoved]; n != 1 {
		t.Errorf("lapsed subscription: %d subscriptionRemoved, want 1", n)
	}
	if st := call(t, "GET", base+"/"+lapsed.ID, token(), nil, nil); st != http.StatusNotFound {
		t.Errorf("lapsed subscription still there: %d", st)
	}
	if n := lifecycleEvents(e, kept.ID)[graphsim.EventSubscriptionRemoved]; n != 0 {
		t.Errorf("kept subscription removed %d times", n)
	}
	changes := 0
	for _, it := range e.items() {
		if it.SubscriptionID == kept.ID && it.ChangeType == "created" {
			changes++
		}
	}
	if changes != delivered {
		t.Errorf("%d of %d changes delivered", changes, delivered)
	}
	if calls := s.APICalls(); calls[graphsim.OpList] != 42 || calls[graphsim.OpUpdate] < renewals {
		t.Errorf("API calls %v", calls)
	}
}

// TestReauthorizationScheduleFollowsTheProtocolDoc: with a 24-hour token
// the challenges come 12 h and 6 h before its end and then every 15
// minutes from 3 h before (§7); after it lapses they stop and changes are
// lost until the client reauthorizes.
func TestReauthorizationScheduleFollowsTheProtocolDoc(t *testing.T) {
	cfg := fastConfig()
	cfg.AccessTokenLifetime = 24 * time.Hour
	s := newSim(t, cfg)
	e := newEndpoint(t)
	req := lifecycleRequest(e, "users/u1/messages")
	req.ExpirationDateTime = s.Now().Add(6 * 24 * time.Hour)
	sub := create(t, s, req)
	count := func() int { return lifecycleEvents(e, sub.ID)[graphsim.EventReauthorizationRequired] }
	steps := []struct {
		by   time.Duration
		want int
	}{
		{11*time.Hour + 59*time.Minute, 0}, // 12 h 1 min left
		{2 * time.Minute, 1},               // 11 h 59 min left: the 12 h point passed
		{6 * time.Hour, 2},                 // the 6 h point
		{3 * time.Hour, 3},                 // 2 h 59 min left: the 3 h point
		{time.Hour, 7},                     // four more quarter hours
		{2 * time.Hour, 14},                // down to the end: 15 min left was the last one
		{time.Hour, 14},                    // lapsed: challenges stopped
	}
	for i, st := range steps {
		advance(t, s, st.by)
		if got := count(); got != st.want {
			t.Fatalf("step %d (+%s): %d challenges, want %d", i, st.by, got, st.want)
		}
	}
	rep, err := s.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: sub.ID})
	if err != nil || rep.Paused != 1 || rep.Notifications != 0 {
		t.Fatalf("change while lapsed: %+v %v", rep, err)
	}
	if err := s.Reauthorize(t.Context(), sub.ID); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: sub.ID}); err != nil || rep.Notifications != 1 {
		t.Fatalf("change after reauthorize: %+v %v", rep, err)
	}
}

// TestRevokedConsent: reauthorizationRequired arrives at once,
// notifications pause, PATCH and reauthorize are 403 until consent is
// restored, and an unrestored subscription is removed with
// subscriptionRemoved.
func TestRevokedConsent(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	base := s.GraphURL() + "/subscriptions"
	app := testApps[0]
	var subs [2]graphsim.Subscription
	for i, res := range []string{"users/u1/messages", "users/u2/messages"} {
		req := lifecycleRequest(e, res)
		if st := call(t, "POST", base, accessToken(t, s, app), req, &subs[i]); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	if err := s.RevokeConsent(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	for _, sub := range subs {
		if n := lifecycleEvents(e, sub.ID)[graphsim.EventReauthorizationRequired]; n != 1 {
			t.Errorf("%d reauthorizationRequired after revocation, want 1", n)
		}
	}
	if rep, err := s.Change(t.Context(), graphsim.ChangeRequest{Resource: "users/u1/messages"}); err != nil || rep.Paused != 1 {
		t.Errorf("change after revocation: %+v %v", rep, err)
	}
	tok := accessToken(t, s, app)
	var ge graphError
	if st := call(t, "POST", base+"/"+subs[0].ID+"/reauthorize", tok, nil, &ge); st != http.StatusForbidden {
		t.Errorf("reauthorize without consent: %d %+v", st, ge.Error)
	}
	if st := call(t, "PATCH", base+"/"+subs[0].ID, tok, map[string]any{"expirationDateTime": s.Now().Add(2 * time.Hour)}, nil); st != http.StatusForbidden {
		t.Errorf("PATCH without consent: %d", st)
	}
	if err := s.RestoreConsent(app); err != nil {
		t.Fatal(err)
	}
	if st := call(t, "POST", base+"/"+subs[0].ID+"/reauthorize", accessToken(t, s, app), nil, nil); st != http.StatusNoContent {
		t.Fatalf("reauthorize after consent restored: %d", st)
	}
	advance(t, s, time.Hour)
	if n := lifecycleEvents(e, subs[1].ID)[graphsim.EventSubscriptionRemoved]; n != 1 {
		t.Errorf("unrestored subscription: %d subscriptionRemoved, want 1", n)
	}
	if _, err := s.Subscription(subs[0].ID); err != nil {
		t.Errorf("reauthorized subscription: %v", err)
	}
}

func TestPermanentFailuresAndFaults(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	base := s.GraphURL() + "/subscriptions"
	tok := accessToken(t, s, graphsim.DefaultAppID)
	var sub graphsim.Subscription
	if st := call(t, "POST", base, tok, subRequest(e, "users/gone/messages"), &sub); st != 201 {
		t.Fatalf("create: %d", st)
	}
	s.DisableMailbox("gone", true)
	var ge graphError
	if st := call(t, "PATCH", base+"/"+sub.ID, tok, map[string]any{"expirationDateTime": s.Now().Add(2 * time.Hour)}, &ge); st != 404 || ge.Error.Code != "MailboxNotEnabledForRESTAPI" {
		t.Errorf("renew on a disabled mailbox: %d %+v", st, ge.Error)
	}
	if _, err := s.CreateSubscription(t.Context(), subRequest(e, "users/gone/events")); !errors.Is(err, graphsim.ErrMailboxNotEnabled) {
		t.Errorf("create on a disabled mailbox: %v", err)
	}

	// Two injected 503s with Retry-After, then the call goes through.
	if err := s.InjectFault(graphsim.Fault{Op: graphsim.OpCreate, Status: 503, RetryAfterSeconds: 7, Count: 2}); err != nil {
		t.Fatal(err)
	}
	req := subRequest(e, "users/u9/messages")
	for i := range 2 {
		r, _ := http.NewRequestWithContext(t.Context(), "POST", base, strings.NewReader(fmt.Sprintf(`{"changeType":"created","notificationUrl":%q,"resource":"users/u9/messages","expirationDateTime":%q}`,
			req.NotificationURL, graphsim.FormatDateTime(s.Now().Add(time.Hour)))))
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("call %d: %d Retry-After %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if st := call(t, "POST", base, tok, req, nil); st != 201 {
		t.Errorf("after the faults: %d", st)
	}
	// A permanent 403 on one resource.
	if err := s.InjectFault(graphsim.Fault{Resource: "users/blocked", Status: 403}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if st := call(t, "POST", base, tok, subRequest(e, "users/blocked/messages"), nil); st != 403 {
			t.Errorf("blocked resource: %d", st)
		}
	}
	s.ClearFaults()
	if st := call(t, "POST", base, tok, subRequest(e, "users/blocked/messages"), nil); st != 201 {
		t.Errorf("after ClearFaults: %d", st)
	}
}

// TestMissedAfterDroppedNotifications: notifications to an endpoint that
// keeps failing are discarded, and Outlook subscriptions then get missed.
func TestMissedAfterDroppedNotifications(t *testing.T) {
	cfg := fastConfig()
	cfg.RetryFor = time.Minute // scaled: discarded after milliseconds
	s := newSim(t, cfg)
	e := newEndpoint(t)
	life := newEndpoint(t)
	e.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	req := subRequest(e, "users/u1/messages")
	req.LifecycleNotificationURL = life.URL + "/lifecycle"
	sub := create(t, s, req)
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: sub.ID, Count: 3}); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	if n := lifecycleEvents(life, sub.ID)[graphsim.EventMissed]; n != 1 {
		t.Errorf("%d missed after discarded notifications, want 1", n)
	}
}

// TestAdminRemovalSendsSubscriptionRemoved: unlike the app's DELETE.
func TestAdminRemovalSendsSubscriptionRemoved(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	req := lifecycleRequest(e, "users/u1/messages")
	sub := create(t, s, req)
	r, _ := http.NewRequestWithContext(t.Context(), "DELETE", s.URL()+"/_sim/subscriptions/"+sub.ID, nil)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin delete: %d", resp.StatusCode)
	}
	settle(t, s)
	if n := lifecycleEvents(e, sub.ID)[graphsim.EventSubscriptionRemoved]; n != 1 {
		t.Errorf("%d subscriptionRemoved, want 1", n)
	}
}

// TestRichLifecycleCarriesValidationToken: lifecycle batches of rich
// subscriptions carry a validationToken (§7).
func TestRichLifecycleCarriesValidationToken(t *testing.T) {
	s := newSim(t, fastConfig())
	e := newEndpoint(t)
	key := testKey(t)
	req := lifecycleRequest(e, "users/u1/messages")
	req.IncludeResourceData, req.EncryptionCertificate, req.EncryptionCertificateID = true, key.EncryptionCertificate(), key.ID
	req.ExpirationDateTime = s.Now().Add(time.Hour)
	sub := create(t, s, req)
	if err := s.Lifecycle(t.Context(), sub.ID, graphsim.EventMissed); err != nil {
		t.Fatal(err)
	}
	e.waitItems(t, 1)
	c := e.Bodies()
	if len(c) != 1 || len(c[0].ValidationTokens) != 1 || c[0].Value[0].OrganizationID != graphsim.DefaultTenantID {
		t.Errorf("lifecycle batch %+v", c)
	}
}

// TestHandshakeFailureNamesItsCause: the 400's message keeps Graph's
// sentence and adds the cause; a body with the wrong media type fails.
func TestHandshakeFailureNamesItsCause(t *testing.T) {
	s := newSim(t, fastConfig())
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(r.URL.Query().Get("validationToken")))
	}))
	t.Cleanup(html.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	tests := []struct {
		name, url, want string
	}{
		{"connection refused", closedURL + "/n", "connection refused"},
		{"wrong media type", html.URL + "/n", "Content-Type \"text/html\", want text/plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := subRequest(&endpoint{Server: &httptest.Server{URL: "http://x"}}, "users/"+graphsim.NewGUID()+"/messages")
			req.NotificationURL = tc.url
			_, err := s.CreateSubscription(t.Context(), req)
			if !errors.Is(err, graphsim.ErrValidationFailed) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Subscription validation request") {
				t.Errorf("err %v, want ErrValidationFailed naming %q", err, tc.want)
			}
		})
	}
}

func TestListPagingAndQueryOptions(t *testing.T) {
	cfg := fastConfig()
	cfg.Throttle.List = -1
	s := newSim(t, cfg)
	e := newEndpoint(t)
	for i := range 105 {
		if _, err := s.CreateSubscription(t.Context(), subRequest(e, fmt.Sprintf("users/u%d/messages", i))); err != nil {
			t.Fatal(err)
		}
	}
	tok := accessToken(t, s, graphsim.DefaultAppID)
	var page struct {
		Value    []graphsim.Subscription `json:"value"`
		NextLink string                  `json:"@odata.nextLink"`
	}
	if st := call(t, "GET", s.GraphURL()+"/subscriptions", tok, nil, &page); st != 200 || len(page.Value) != 100 || page.NextLink == "" {
		t.Fatalf("first page: %d, %d items, next %q", st, len(page.Value), page.NextLink)
	}
	next := page.NextLink
	page.Value, page.NextLink = nil, ""
	if st := call(t, "GET", next, tok, nil, &page); st != 200 || len(page.Value) != 5 || page.NextLink != "" {
		t.Fatalf("second page: %d, %d items, next %q", st, len(page.Value), page.NextLink)
	}
	var ge graphError
	if st := call(t, "GET", s.GraphURL()+"/subscriptions?$top=5", tok, nil, &ge); st != 400 || !strings.Contains(ge.Error.Message, "$top") {
		t.Errorf("$top: %d %+v", st, ge.Error)
	}
}

func TestStateFileKeepsSubscriptionsAcrossRestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	cfg := fastConfig()
	cfg.StateFile = file
	e := newEndpoint(t)
	s1 := newSimUnstarted(t, cfg)
	sub := create(t, s1, subRequest(e, "users/u1/messages"))
	s1.Close()
	s2 := newSimUnstarted(t, cfg)
	got, err := s2.Subscription(sub.ID)
	if err != nil || got.ClientState != sub.ClientState || got.ExpirationDateTime.Sub(sub.ExpirationDateTime).Abs() >= 100*time.Nanosecond || got.CreatorID != sub.CreatorID {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if rep, err := s2.Change(t.Context(), graphsim.ChangeRequest{}); err != nil || rep.Notifications != 1 || !rep.Persistent {
		t.Fatalf("change after restart: %+v %v", rep, err)
	}
	e.waitItems(t, 1)
}

// TestLatestSupportedTLSVersionCapsHandshakes: an endpoint that speaks
// only TLS 1.3 fails validation for a subscription limited to TLS 1.2,
// naming the TLS failure, and passes with v1_3.
func TestLatestSupportedTLSVersionCapsHandshakes(t *testing.T) {
	e := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(r.URL.Query().Get("validationToken")))
	}))
	e.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	e.StartTLS()
	t.Cleanup(e.Close)
	pool := x509.NewCertPool()
	pool.AddCert(e.Certificate())
	cfg := fastConfig()
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	s := newSimUnstarted(t, cfg)
	req := graphsim.SubscriptionRequest{ChangeType: "created", NotificationURL: e.URL + "/n", Resource: "users/u1/messages",
		ExpirationDateTime: s.Now().Add(time.Hour), ClientState: "c", LatestSupportedTLSVersion: "v1_2"}
	if _, err := s.CreateSubscription(t.Context(), req); !errors.Is(err, graphsim.ErrValidationFailed) || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("TLS 1.2 subscription to a TLS 1.3 endpoint: %v", err)
	}
	req.LatestSupportedTLSVersion = "v1_3"
	if _, err := s.CreateSubscription(t.Context(), req); err != nil {
		t.Fatalf("v1_3: %v", err)
	}
}

func TestExpirationLimitOverridesAndWordings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*graphsim.Config)
		ask     time.Duration
		wantErr error
		wantMsg string
	}{
		{"default table", func(*graphsim.Config) {}, 10080*time.Minute + 2*time.Second, graphsim.ErrExpirationTooFar, "Subscription expiration can only be 10080 minutes in the future."},
		{"at the maximum", func(*graphsim.Config) {}, 10080*time.Minute - time.Second, nil, ""},
		{"older 4230 limit", func(c *graphsim.Config) { c.MaxLifetimes = map[string]time.Duration{"message": 4230 * time.Minute} }, 4231 * time.Minute, graphsim.ErrExpirationTooFar, "can only be 4230 minutes"},
		{"timespan wording", func(c *graphsim.Config) {
			c.ExpirationWording = "timespan"
			c.MaxLifetimes = map[string]time.Duration{"message": 72 * time.Hour}
		}, 72*time.Hour + 2*time.Second, graphsim.ErrExpirationTooFar, "beyond allowed max '3.00:00:00'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			tc.cfg(&cfg)
			s := newSimUnstarted(t, cfg)
			req := subRequest(newEndpoint(t), "users/u1/messages")
			req.ExpirationDateTime = s.Now().Add(tc.ask)
			_, err := s.CreateSubscription(t.Context(), req)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil && (!strings.Contains(err.Error(), tc.wantMsg) || graphsim.StatusOf(err) != 400)) {
				t.Fatalf("err %v, want %v with %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

// TestAdvanceRunsTheRetrySchedule: retries wait on the simulated clock
// too, so advancing past Graph's 4-hour window discards a delivery that
// keeps failing (and sends missed), without waiting on the wall clock.
func TestAdvanceRunsTheRetrySchedule(t *testing.T) {
	cfg := fastConfig()
	cfg.TimeScale = 1 // wall-clock retries after 10 s, 20 s, ...: too slow for a test
	s := newSim(t, cfg)
	e := newEndpoint(t)
	life := newEndpoint(t)
	e.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	req := subRequest(e, "users/u1/messages")
	req.LifecycleNotificationURL = life.URL + "/lifecycle"
	req.ExpirationDateTime = s.Now().Add(24 * time.Hour)
	sub := create(t, s, req)
	if _, err := s.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: sub.ID}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if n := e.Posts(); n < 1 {
			return fmt.Errorf("%d posts", n)
		}
		return nil
	})
	// The first retry (10 s) is due; the delivery stays pending, so do not Wait.
	if err := s.Advance(t.Context(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if n := e.Posts(); n < 2 {
			return fmt.Errorf("%d posts after advancing past the first backoff", n)
		}
		return nil
	})
	advance(t, s, 5*time.Hour) // past the 4 h window: discarded, missed sent
	d := s.Deliveries()
	if d[0].State != graphsim.StateFailed || d[0].Retries() < 1 {
		t.Errorf("delivery %s after %d retries, want failed", d[0].State, d[0].Retries())
	}
	if n := lifecycleEvents(life, sub.ID)[graphsim.EventMissed]; n != 1 {
		t.Errorf("%d missed, want 1", n)
	}
}
