package graphsim

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of [Config].
const (
	// DefaultTenantID is the tenant of the simulated organisation.
	DefaultTenantID = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	// DefaultAppID is the client application the simulator acts for when
	// subscriptions are created through the Go API.
	DefaultAppID = "5f6b5c4e-1d1f-4a4e-9c7d-7a6f2b0c9e11"

	DefaultAuthority           = "https://login.microsoftonline.com"
	DefaultSTSAuthority        = "https://sts.windows.net"
	DefaultMaxBatch            = 100
	DefaultTimeout             = 3 * time.Second
	DefaultRetryTimeout        = 10 * time.Second
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultRetryBackoff        = 10 * time.Second
	DefaultMaxRetryBackoff     = 10 * time.Minute
	DefaultRetryFor            = 4 * time.Hour
	DefaultConcurrency         = 16
	DefaultThrottleWindow      = 10 * time.Minute
	DefaultThrottleMinSamples  = 100
	DefaultSlowDelay           = 10 * time.Minute
	DefaultSweepInterval       = time.Second
	DefaultAccessTokenLifetime = time.Hour
	DefaultRevokedRemoveAfter  = time.Hour
	DefaultMaxDeliveries       = 10000
	// MinLifetime is how far ahead Graph raises a shorter expirationDateTime.
	MinLifetime = 45 * time.Minute
	// MaxClientStateLen is the longest clientState a subscription accepts.
	MaxClientStateLen = 128
)

// Config configures a [Sim]. The zero value works: one tenant, one client
// app, Graph's timing.
type Config struct {
	// TenantID is the tenant of subscriptions created through the Go API
	// and of tokens requested for the "common" or "organizations" tenant.
	// Default DefaultTenantID.
	TenantID string
	// AppID is the client application subscriptions created through the Go
	// API belong to (their applicationId); validationTokens are issued for
	// it (aud) unless the subscription sets notificationUrlAppId. Over HTTP
	// the application is the client_id of the bearer token. Default
	// DefaultAppID.
	AppID string
	// ClientSecret is the secret of the app registered for AppID when Apps
	// is empty. Default: a random secret, readable from [Sim.Config] (the
	// token endpoint never accepts just any secret).
	ClientSecret string
	// Apps are the application registrations of the tenant: only they get
	// access tokens, with their secret or a client assertion signed by one
	// of their certificates, and their tokens carry their Roles. Default:
	// one app, AppID with ClientSecret and [AllPermissions].
	Apps []App
	// Authority is the issuer host of v2.0 validationTokens
	// (iss = Authority/{tid}/v2.0). Default DefaultAuthority.
	Authority string
	// STSAuthority is the issuer host of v1.0 tokens and of access tokens
	// (iss = STSAuthority/{tid}/). Default DefaultSTSAuthority.
	STSAuthority string
	// TokenVersion is the shape of validationTokens: "2.0" (default: azp,
	// azpacr) or "1.0" (appid, appidacr).
	TokenVersion string
	// SigningKey signs access and validation tokens. Default: a fresh
	// RSA-2048 key.
	SigningKey *rsa.PrivateKey
	// AccessTokenLifetime is the lifetime of issued access tokens. A
	// subscription's authorization lasts as long as the token that created,
	// renewed or reauthorized it. Default 1 h.
	AccessTokenLifetime time.Duration

	// TimeScale multiplies the waits of the delivery schedule: retry
	// backoff, the 4 h retry window and the 10 min delay of slow endpoints.
	// Request timeouts are not scaled. Tests use e.g. 0.001. Default 1.
	TimeScale float64
	// MaxBatch is the most notifications in one delivery POST. Default 100.
	MaxBatch int
	// Timeout is the budget of a first delivery attempt. Default 3 s.
	Timeout time.Duration
	// RetryTimeout is the budget of a retried delivery. Default 10 s.
	RetryTimeout time.Duration
	// HandshakeTimeout is the budget of a validation request. Default 10 s.
	HandshakeTimeout time.Duration
	// RetryBackoff is the wait before the first retry; it doubles up to
	// MaxRetryBackoff. Both are scaled by TimeScale. Defaults 10 s, 10 min.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// RetryFor is how long a failing delivery is retried before it is
	// discarded, scaled by TimeScale. Default 4 h.
	RetryFor time.Duration
	// Concurrency is the most concurrent POSTs to one endpoint. Default 16.
	Concurrency int

	// ThrottleWindow is the window of the slow/drop classification,
	// measured on Now. Default 10 min.
	ThrottleWindow time.Duration
	// ThrottleMinSamples is the number of responses in the window before an
	// endpoint can be classified slow or drop. Default 100.
	ThrottleMinSamples int
	// SlowDelay delays new notifications to a slow endpoint, scaled by
	// TimeScale. Default 10 min.
	SlowDelay time.Duration

	// SweepInterval is how often expired subscriptions are removed and
	// reauthorizationRequired challenges sent. Default 1 s; negative
	// disables the background sweep ([Sim.Sweep] still works).
	SweepInterval time.Duration
	// RevokedRemoveAfter is how long after [Sim.RevokeConsent] the app's
	// subscriptions are removed (with subscriptionRemoved where the resource
	// supports it) unless consent is restored and they are reauthorized.
	// Default 1 h, on the simulated clock.
	RevokedRemoveAfter time.Duration
	// MaxLifetimes overrides the maximum subscription lifetime per resource
	// kind ("message", "event", "contact", "chatMessage", "driveItem",
	// "user", "group", "presence", ... as [ResourceKind] names them).
	// Default: the table of the subscription resource type page
	// (shared/seeds/subscription-resource-type.txt, protocol doc §8).
	MaxLifetimes map[string]time.Duration
	// ExpirationWording selects which of Graph's two observed answers to an
	// expiration beyond the maximum is sent (protocol doc §11):
	// "minutes" (default: ExtensionError "Subscription expiration can only
	// be 10080 minutes in the future.") or "timespan" ("... beyond allowed
	// max '3.00:00:00'").
	ExpirationWording string
	// Throttle limits the subscription API per app and tenant (§11);
	// zero fields take the documented defaults.
	Throttle Throttle
	// Quotas limit active subscriptions (§11); zero fields take the
	// documented defaults.
	Quotas Quotas
	// StateFile, when set, keeps subscriptions across restarts: it is read
	// by New (if it exists) and rewritten after every change, mode 0600 (it
	// holds clientStates). Default: subscriptions live in memory only.
	StateFile string
	// RequireHTTPS rejects http notification URLs, as Graph does. Default
	// false: local receivers usually listen on http://127.0.0.1.
	RequireHTTPS bool
	// MaxDeliveries is how many delivery records [Sim.Deliveries] keeps.
	// Default 10000.
	MaxDeliveries int

	// TLSHosts are extra host names or IP addresses the server certificate
	// of [Sim.StartTLS] is valid for, besides 127.0.0.1, ::1 and localhost.
	TLSHosts []string

	// AdminHandlers adds routes to [Sim.Handler], by ServeMux pattern
	// (e.g. "POST /_sim/load"), served without authentication like the
	// admin API. The graphsim command mounts its load generator this way.
	AdminHandlers map[string]http.Handler

	// HTTPClient sends handshakes and deliveries. Its Timeout should be
	// zero: each request gets its own budget. Default: a keep-alive client.
	HTTPClient *http.Client
	// Now is the clock of subscriptions, tokens and throttling windows.
	// Default time.Now.
	Now func() time.Time
	// Logger receives one line per delivery attempt and subscription
	// change, never secrets. Nil discards.
	Logger *slog.Logger
}

// Sim is a simulated Microsoft Graph: subscriptions API, identity
// endpoints, validation handshakes, notification delivery and lifecycle
// events. Create it with [New] and release it with [Sim.Close]. It is safe
// for concurrent use.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	ctx    context.Context // cancelled by Close; owns delivery goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	keys       []*signingKey
	apps       map[string]*appState // by lower-case client id
	tokenCache map[tokenKey]cachedToken
	subs       map[string]*subscription
	records    []*Delivery
	nextID     int64
	endpoints  map[string]*endpoint
	pending    int
	idle       chan struct{} // closed while pending == 0
	offset     time.Duration // added to Config.Now by Advance
	moved      chan struct{} // closed and replaced when offset changes
	calls      map[string]int
	windows    map[windowKey][]time.Time // throttling windows
	faults     []*faultState
	mailboxes  map[string]bool // disabled mailboxes (lower-case user)
	missedAt   map[string]time.Time
	tlsClients map[string]*http.Client // per latestSupportedTlsVersion

	srv *http.Server
	url string
	ca  *certAuthority // generated on first use by StartTLS or CACertPEM
}

// Validate reports the first invalid field of c as a [*ConfigError], as
// [New] would.
func (cfg Config) Validate() error {
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "x" // a generated one is always valid
	}
	_, _, err := cfg.withDefaults()
	return err
}

// New returns a Sim for cfg. It generates the signing key unless
// cfg.SigningKey is set, reads Config.StateFile, and starts the background
// sweep. An invalid field is a [*ConfigError].
func New(cfg Config) (*Sim, error) {
	cfg, apps, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.TLSHosts = slices.Clone(cfg.TLSHosts)
	key, err := newSigningKey(cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:        cfg,
		log:        cfg.Logger,
		client:     cfg.HTTPClient,
		keys:       []*signingKey{key},
		apps:       apps,
		tokenCache: make(map[tokenKey]cachedToken),
		subs:       make(map[string]*subscription),
		endpoints:  make(map[string]*endpoint),
		calls:      make(map[string]int),
		windows:    make(map[windowKey][]time.Time),
		mailboxes:  make(map[string]bool),
		missedAt:   make(map[string]time.Time),
		idle:       make(chan struct{}),
		moved:      make(chan struct{}),
	}
	close(s.idle)
	if err := s.loadState(); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}, CheckRedirect: noRedirects}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.SweepInterval > 0 {
		s.wg.Go(s.sweepLoop)
	}
	return s, nil
}

// withDefaults returns cfg with its defaults filled in and its apps
// registered, or the first invalid field as a [*ConfigError].
func (cfg Config) withDefaults() (Config, map[string]*appState, error) {
	cfg.TenantID = cmp.Or(cfg.TenantID, DefaultTenantID)
	cfg.AppID = cmp.Or(cfg.AppID, DefaultAppID)
	cfg.Authority = cmp.Or(cfg.Authority, DefaultAuthority)
	cfg.STSAuthority = cmp.Or(cfg.STSAuthority, DefaultSTSAuthority)
	if err := oneOf("TokenVersion", &cfg.TokenVersion, "2.0", "1.0", "2.0"); err != nil {
		return cfg, nil, err
	}
	if cfg.TimeScale < 0 {
		return cfg, nil, configError("TimeScale", ErrInvalidValue, "%v is negative", cfg.TimeScale)
	}
	cfg.TimeScale = cmp.Or(cfg.TimeScale, 1)
	setDefault(&cfg.AccessTokenLifetime, DefaultAccessTokenLifetime)
	setDefault(&cfg.Timeout, DefaultTimeout)
	setDefault(&cfg.RetryTimeout, DefaultRetryTimeout)
	setDefault(&cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&cfg.RetryBackoff, DefaultRetryBackoff)
	setDefault(&cfg.MaxRetryBackoff, DefaultMaxRetryBackoff)
	setDefault(&cfg.RetryFor, DefaultRetryFor)
	setDefault(&cfg.ThrottleWindow, DefaultThrottleWindow)
	setDefault(&cfg.SlowDelay, DefaultSlowDelay)
	setDefault(&cfg.RevokedRemoveAfter, DefaultRevokedRemoveAfter)
	if err := oneOf("ExpirationWording", &cfg.ExpirationWording, "minutes", "minutes", "timespan"); err != nil {
		return cfg, nil, err
	}
	cfg.Throttle = cfg.Throttle.withDefaults()
	cfg.Quotas = cfg.Quotas.withDefaults()
	cfg.MaxLifetimes = maps.Clone(cfg.MaxLifetimes)
	cfg.AdminHandlers = maps.Clone(cfg.AdminHandlers)
	cfg.SweepInterval = cmp.Or(cfg.SweepInterval, DefaultSweepInterval)
	setDefault(&cfg.MaxBatch, DefaultMaxBatch)
	setDefault(&cfg.Concurrency, DefaultConcurrency)
	setDefault(&cfg.ThrottleMinSamples, DefaultThrottleMinSamples)
	setDefault(&cfg.MaxDeliveries, DefaultMaxDeliveries)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	apps, err := registerApps(&cfg)
	return cfg, apps, err
}

// oneOf sets *v to def when it is empty and reports a value outside
// allowed as field's [ErrInvalidValue].
func oneOf(field string, v *string, def string, allowed ...string) error {
	switch {
	case *v == "":
		*v = def
	case !slices.Contains(allowed, *v):
		return configError(field, ErrInvalidValue, "%q, want %s", *v, strings.Join(allowed, " or "))
	}
	return nil
}

// registerApps fills in the default app and copies cfg.Apps.
func registerApps(cfg *Config) (map[string]*appState, error) {
	if len(cfg.Apps) == 0 {
		if cfg.ClientSecret == "" {
			cfg.ClientSecret = randomSecret()
		}
		cfg.Apps = []App{{ClientID: cfg.AppID, DisplayName: "graphsim default app", Secret: cfg.ClientSecret, Roles: AllPermissions()}}
	} else {
		cfg.Apps = slices.Clone(cfg.Apps)
	}
	apps := make(map[string]*appState, len(cfg.Apps))
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if strings.TrimSpace(a.ClientID) == "" {
			return nil, configError(fmt.Sprintf("Apps[%d].ClientID", i), ErrAppRegistration, "required")
		}
		key := strings.ToLower(a.ClientID)
		if _, dup := apps[key]; dup {
			return nil, configError(fmt.Sprintf("Apps[%d].ClientID", i), ErrAppRegistration, "%s registered twice", a.ClientID)
		}
		if a.Secret == "" && len(a.Certificates) == 0 && len(a.Federated) == 0 {
			return nil, configError(fmt.Sprintf("Apps[%d]", i), ErrAppRegistration, "%s has neither Secret, Certificates nor Federated credentials, so it can never get a token", a.ClientID)
		}
		for j, fc := range a.Federated {
			if fc.Issuer == "" || fc.Subject == "" || len(fc.Keys) == 0 {
				return nil, configError(fmt.Sprintf("Apps[%d].Federated[%d]", i, j), ErrAppRegistration, "Issuer, Subject and Keys are required")
			}
		}
		a.Federated = slices.Clone(a.Federated)
		a.Roles = slices.Clone(a.Roles)
		a.Certificates = slices.Clone(a.Certificates)
		if a.ServicePrincipalID == "" {
			a.ServicePrincipalID = stableGUID("sp", strings.ToLower(cfg.TenantID), key)
		}
		apps[key] = &appState{App: *a}
	}
	return apps, nil
}

// setDefault sets *p to v when *p is zero or negative.
func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Config returns the effective configuration, with defaults filled in
// (including the generated ClientSecret of the default app).
func (s *Sim) Config() Config {
	c := s.cfg
	c.Apps = slices.Clone(c.Apps)
	return c
}

// Start serves [Sim.Handler] over plain HTTP on addr (e.g.
// "127.0.0.1:0") until Close and returns the base URL, e.g.
// "http://127.0.0.1:41234". [Sim.StartTLS] serves HTTPS, as Graph and its
// identity platform do.
func (s *Sim) Start(addr string) (string, error) {
	return s.start(addr, nil)
}

func (s *Sim) start(addr string, tc *tls.Config) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("graphsim: listen: %w", err)
	}
	s.mu.Lock()
	if s.closed || s.srv != nil {
		s.mu.Unlock()
		ln.Close()
		if s.closed {
			return "", fmt.Errorf("graphsim: start: %w", net.ErrClosed)
		}
		return "", errors.New("graphsim: already started")
	}
	// Handlers run under the Sim's context, so Close also ends an admin
	// load run or a handshake in progress.
	simCtx := s.ctx
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return simCtx }}
	scheme := "http"
	if tc != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tc)
	}
	s.url = scheme + "://" + ln.Addr().String()
	srv := s.srv
	s.wg.Go(func() { srv.Serve(ln) })
	url := s.url
	s.mu.Unlock()
	return url, nil
}

// URL returns the base URL after [Sim.Start], else "".
func (s *Sim) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// JWKSURL returns the URL of the key set that verifies validationTokens,
// {URL}/common/discovery/v2.0/keys, after [Sim.Start].
func (s *Sim) JWKSURL() string { return s.URL() + "/common/discovery/v2.0/keys" }

// TokenURL returns the client-credentials token endpoint of the tenant
// (empty means Config.TenantID), after [Sim.Start].
func (s *Sim) TokenURL(tenantID string) string {
	if tenantID == "" {
		tenantID = s.cfg.TenantID
	}
	return s.URL() + "/" + tenantID + "/oauth2/v2.0/token"
}

// GraphURL returns the base of the simulated Graph API, {URL}/v1.0, after
// [Sim.Start].
func (s *Sim) GraphURL() string { return s.URL() + "/v1.0" }

// Close stops the server (if started), the sweep and every pending
// delivery, and waits for them. A second call returns an error wrapping
// [net.ErrClosed].
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("graphsim: close: %w", net.ErrClosed)
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	s.cancel()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
	}
	s.wg.Wait()
	return err
}

// Wait blocks until no delivery is pending (delivered, discarded or
// dropped) or ctx is done.
func (s *Sim) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
			s.mu.Lock()
			done := s.pending == 0
			s.mu.Unlock()
			if done {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// scaled multiplies a protocol wait by TimeScale.
func (s *Sim) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.TimeScale)
}

// sleepUntil waits d of wall time, or until the simulated clock reaches
// simDue (after an Advance), or until Close; it reports whether the wait
// completed.
func (s *Sim) sleepUntil(d time.Duration, simDue time.Time) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.mu.Lock()
		moved := s.moved
		due := !s.nowLocked().Before(simDue)
		s.mu.Unlock()
		if due {
			return true
		}
		select {
		case <-t.C:
			return true
		case <-moved:
		case <-s.ctx.Done():
			return false
		}
	}
}

// noRedirects makes a client report a 3xx as it is: Graph requires the
// endpoint itself to answer (200 to a handshake, 2xx to a delivery), and
// following a Location could also send traffic anywhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
