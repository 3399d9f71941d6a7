package subscriptions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Defaults of ClientConfig.
const (
	DefaultTimeout = 30 * time.Second
	// maxResponseBody bounds a successful answer (a list page of
	// subscriptions).
	maxResponseBody = 8 << 20
	// maxListPages bounds @odata.nextLink following.
	maxListPages = 1000
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Credential gets the bearer tokens, e.g. from [NewCredential] or any
	// azidentity credential. Required.
	Credential azcore.TokenCredential
	// Cloud picks the Graph endpoint when BaseURL is empty. Default
	// CloudGlobal.
	Cloud Cloud
	// BaseURL is the Graph API root including the version, e.g.
	// "https://graph.microsoft.com/v1.0" or a graphsim's GraphURL. Default
	// Cloud.GraphURL().
	BaseURL string
	// Scope is the OAuth scope of the tokens. Default: the Cloud's Graph
	// origin plus "/.default", e.g. "https://graph.microsoft.com/.default"
	// (also for a BaseURL elsewhere, such as graphsim, which plays the
	// global cloud).
	Scope string
	// HTTPClient sends the requests. Default: a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds one request when HTTPClient is nil. Default 30 s.
	Timeout time.Duration
	// Now is the clock for HTTP-date Retry-After values. Default time.Now.
	Now func() time.Time
}

// Client calls Graph's subscription endpoints. It is safe for concurrent
// use. It never retries: callers (the [Manager]) decide, from the
// [*Error], when and whether to.
type Client struct {
	cred  azcore.TokenCredential
	base  string
	scope string
	hc    *http.Client
	now   func() time.Time
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Credential == nil {
		return nil, &ConfigError{Field: "Credential", Err: ErrRequired}
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Cloud.GraphURL()
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if _, err := scopeFor(cfg.BaseURL); err != nil {
		return nil, &ConfigError{Field: "BaseURL", Err: err}
	}
	if cfg.Scope == "" {
		cfg.Scope, _ = scopeFor(cfg.Cloud.GraphURL())
	}
	if cfg.HTTPClient == nil {
		if cfg.Timeout <= 0 {
			cfg.Timeout = DefaultTimeout
		}
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cred: cfg.Credential, base: cfg.BaseURL, scope: cfg.Scope, hc: cfg.HTTPClient, now: cfg.Now}, nil
}

// BaseURL returns the Graph API root the client calls.
func (c *Client) BaseURL() string { return c.base }

// Create creates a subscription (POST /subscriptions). Graph validates the
// notificationUrl (and lifecycleNotificationUrl) with a handshake first.
func (c *Client) Create(ctx context.Context, s Subscription) (*Subscription, error) {
	s.ID, s.ApplicationID, s.CreatorID = "", "", ""
	var out Subscription
	if err := c.do(ctx, "create", "", http.MethodPost, c.base+"/subscriptions", s, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns the subscription with id.
func (c *Client) Get(ctx context.Context, id string) (*Subscription, error) {
	var out Subscription
	if err := c.do(ctx, "get", id, http.MethodGet, c.subURL(id), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns the application's active subscriptions, following
// @odata.nextLink. Graph throttles it at 40 calls per 20 s per app and
// tenant (protocol doc §11): call it rarely.
func (c *Client) List(ctx context.Context) ([]Subscription, error) {
	var all []Subscription
	next := c.base + "/subscriptions"
	for range maxListPages {
		var page struct {
			Value    []Subscription `json:"value"`
			NextLink string         `json:"@odata.nextLink"`
		}
		if err := c.do(ctx, "list", "", http.MethodGet, next, nil, &page, http.StatusOK); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		if page.NextLink == "" {
			return all, nil
		}
		if !sameOrigin(page.NextLink, c.base) {
			return nil, &Error{Op: "list", Err: fmt.Errorf("%w: @odata.nextLink leaves %s", ErrBadValue, c.base)}
		}
		next = page.NextLink
	}
	return nil, &Error{Op: "list", Err: fmt.Errorf("%w: more than %d pages", ErrOutOfRange, maxListPages)}
}

// Update changes a subscription (PATCH /subscriptions/{id}): renews it
// with a new expiration, moves its notificationUrl or replaces its
// encryption certificate.
func (c *Client) Update(ctx context.Context, id string, u Update) (*Subscription, error) {
	var out Subscription
	if err := c.do(ctx, "update", id, http.MethodPatch, c.subURL(id), u, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return &out, nil
}

// Renew sets a subscription's expiration (a PATCH, which also
// reauthorizes it).
func (c *Client) Renew(ctx context.Context, id string, expiration time.Time) (*Subscription, error) {
	exp := expiration.UTC()
	return c.Update(ctx, id, Update{ExpirationDateTime: &exp})
}

// Delete deletes a subscription (DELETE /subscriptions/{id}).
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, "delete", id, http.MethodDelete, c.subURL(id), nil, nil, http.StatusNoContent, http.StatusOK)
}

// Reauthorize reauthorizes a subscription without extending its
// expiration (POST /subscriptions/{id}/reauthorize). Do not send it and a
// PATCH within 10 minutes for one subscription (protocol doc §7).
func (c *Client) Reauthorize(ctx context.Context, id string) error {
	return c.do(ctx, "reauthorize", id, http.MethodPost, c.subURL(id)+"/reauthorize", nil, nil, http.StatusNoContent, http.StatusOK)
}

func (c *Client) subURL(id string) string {
	return c.base + "/subscriptions/" + url.PathEscape(id)
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && strings.EqualFold(ua.Host, ub.Host)
}

func (c *Client) do(ctx context.Context, op, id, method, u string, in, out any, ok ...int) error {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		// The credential's error text names the tenant and client, never
		// the secret.
		return &Error{Op: op, SubscriptionID: id, Err: fmt.Errorf("get token: %w", err)}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &Error{Op: op, SubscriptionID: id, Err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return &Error{Op: op, SubscriptionID: id, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &Error{Op: op, SubscriptionID: id, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	for _, s := range ok {
		if resp.StatusCode == s {
			if out == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
				return nil
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
			if err != nil {
				return &Error{Op: op, SubscriptionID: id, Status: resp.StatusCode, Err: err}
			}
			if len(b) > maxResponseBody {
				return &Error{Op: op, SubscriptionID: id, Status: resp.StatusCode, Err: fmt.Errorf("%w: answer over %d bytes", ErrOutOfRange, maxResponseBody)}
			}
			if err := json.Unmarshal(b, out); err != nil {
				return &Error{Op: op, SubscriptionID: id, Status: resp.StatusCode, Err: fmt.Errorf("decode answer: %w", err)}
			}
			return nil
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return parseError(op, id, resp.StatusCode, resp.Header, b, c.now())
}

// stripURL keeps a transport error's cause without the URL, which is known
// to the caller.
func stripURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
