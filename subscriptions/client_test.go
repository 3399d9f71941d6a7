package subscriptions

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/graphsim"
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

func TestAzidentityClientSecretOverTLS(t *testing.T) {
	g := startGraph(t, graphsim.Config{ClientSecret: "right", SweepInterval: -1})
	if !azidentityWorks(t, g.srv) {
		t.Skip("graphsim's OpenID configuration lacks authorization_endpoint, which azidentity needs")
	}
	cred, err := NewCredential(CredentialConfig{TenantID: graphsim.DefaultTenantID, ClientID: graphsim.DefaultAppID, ClientSecret: "right", AuthorityHost: g.srv.URL, Transport: g.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientConfig{Credential: cred, BaseURL: g.srv.URL + "/v1.0", HTTPClient: g.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(t.Context()); err != nil {
		t.Fatalf("list with the right secret: %v", err)
	}
	bad, err := NewCredential(CredentialConfig{TenantID: graphsim.DefaultTenantID, ClientID: graphsim.DefaultAppID, ClientSecret: "test-secret", AuthorityHost: g.srv.URL, Transport: g.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	c, err = NewClient(ClientConfig{Credential: bad, BaseURL: g.srv.URL + "/v1.0", HTTPClient: g.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(t.Context())
	if err == nil || !Transient(err) || strings.Contains(err.Error(), "test-secret") {
		t.Fatalf("list with a wrong secret = %v, want a transient token error without the secret", err)
	}
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
