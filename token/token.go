package token

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/httprc/v3/errsink"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// GraphChangeTrackingAppID is the publisher app id (appid in v1.0 tokens,
// azp in v2.0 tokens) every validation token must carry: the
// "Microsoft Graph Change Tracking" application.
const GraphChangeTrackingAppID = "0bf30f3b-4a52-48df-9a82-234910c4a086"

// TenantPlaceholder is the placeholder for the tenant id in
// [Config.Issuers] templates, as Microsoft's OpenID configuration writes it.
const TenantPlaceholder = "{tenantid}"

// Defaults for the zero values of [Config] fields.
const (
	DefaultClockSkew          = 5 * time.Minute
	DefaultMinRefreshInterval = 5 * time.Minute
	DefaultRefreshInterval    = time.Hour
	DefaultRetryInterval      = 250 * time.Millisecond
	DefaultCacheSize          = 10000
	DefaultHTTPTimeout        = 10 * time.Second

	// MaxRetryInterval caps the back-off between key set fetches while
	// none has loaded yet (unless Config.RetryInterval is longer): the
	// validator becomes ready within about a second of the key endpoint
	// answering again.
	MaxRetryInterval = time.Second

	maxTokenLen     = 32 << 10 // Entra tokens are 1-3 KiB
	shutdownTimeout = 5 * time.Second
)

// Config configures a [Validator]. The zero value plus AppIDs is a working
// configuration for the Microsoft public cloud. New copies it; the caller's
// struct is never modified.
type Config struct {
	// AppIDs are the accepted aud values: the application (client) ids of
	// our app(s) that created the subscriptions. Required.
	AppIDs []string

	// TenantIDs are the tenants whose tokens are accepted. Empty means any
	// tenant; every notification's tenantId must still be covered by a
	// valid token of that tenant. Compared case-insensitively.
	TenantIDs []string

	// Cloud selects the Microsoft identity authority: "" or "global"
	// (default, login.microsoftonline.com), "usgov"
	// (login.microsoftonline.us) or "china" (login.chinacloudapi.cn). It
	// sets the default JWKSURL and Issuers. National-cloud issuer strings
	// are best known but UNCONFIRMED; override Issuers if yours differ.
	Cloud string

	// JWKSURL overrides the key set URL of Cloud. Default for the global
	// cloud: https://login.microsoftonline.com/common/discovery/v2.0/keys.
	// Only this URL is ever fetched. It must be an absolute http(s) URL
	// without user information; New logs a warning when it is plain http
	// or not on a Microsoft identity host (right for a simulator only).
	JWKSURL string

	// Issuers overrides the accepted iss templates of Cloud. Each must
	// contain TenantPlaceholder, which is replaced by the token's tid
	// claim before an exact comparison. Default (global):
	// https://sts.windows.net/{tenantid}/ (v1.0) and
	// https://login.microsoftonline.com/{tenantid}/v2.0 (v2.0).
	Issuers []string

	// ClockSkew is the tolerance for exp, nbf and iat. Default 5m. At
	// most MaxClockSkew (1h); negative is an error.
	ClockSkew time.Duration

	// MinRefreshInterval rate-limits refetching the key set when a token
	// names an unknown kid: at most one such refresh per interval, so a
	// flood of forged kids cannot hammer the key endpoint. Default 5m.
	// Negative is an error.
	MinRefreshInterval time.Duration

	// RefreshInterval is how often the key set is refetched in the
	// background once loaded. Default 1h. Microsoft rotates keys and
	// publishes new ones ahead of use; unknown kids also trigger a refresh.
	// Negative is an error.
	RefreshInterval time.Duration

	// RetryInterval is the first delay between fetch attempts while no key
	// set has been loaded yet; it doubles up to MaxRetryInterval (1s), or
	// stays at RetryInterval if that is longer. Default 250ms. Negative
	// is an error.
	RetryInterval time.Duration

	// CacheSize bounds the number of valid tokens whose results are
	// cached until their exp. Default 10000, at most MaxCacheSize.
	// Negative disables the cache (every call verifies every signature).
	CacheSize int

	// HTTPClient fetches the key set. Default: a client with a 10s timeout
	// that does not follow redirects.
	HTTPClient *http.Client

	// Now is the clock for token lifetimes and refresh rate limiting.
	// Default time.Now.
	Now func() time.Time

	// Logger receives operator messages (key fetch failures, keys loaded).
	// It never receives tokens. Nil discards.
	Logger *slog.Logger
}

// cloudDefaults holds the authority-specific defaults of one cloud.
type cloudDefaults struct {
	jwksURL string
	issuers []string
}

// cloudFor returns the defaults for a Config.Cloud name.
//
// Global values are from Microsoft's documentation. National-cloud issuers
// are best known and UNCONFIRMED: a Microsoft Q&A answer (questions/1190472)
// lists v1 https://sts.windows.net and v2 https://login.microsoftonline.us for
// US Government, and v1 https://sts.chinacloudapi.cn and v2
// https://login.partner.microsoftonline.cn for 21Vianet; the older
// login.chinacloudapi.cn host is accepted too.
func cloudFor(name string) (cloudDefaults, bool) {
	switch name {
	case "", "global":
		return cloudDefaults{
			jwksURL: "https://login.microsoftonline.com/common/discovery/v2.0/keys",
			issuers: []string{
				"https://sts.windows.net/{tenantid}/",
				"https://login.microsoftonline.com/{tenantid}/v2.0",
			},
		}, true
	case "usgov":
		return cloudDefaults{
			jwksURL: "https://login.microsoftonline.us/common/discovery/v2.0/keys",
			issuers: []string{
				"https://sts.windows.net/{tenantid}/",
				"https://login.microsoftonline.us/{tenantid}/v2.0",
			},
		}, true
	case "china":
		return cloudDefaults{
			jwksURL: "https://login.chinacloudapi.cn/common/discovery/v2.0/keys",
			issuers: []string{
				"https://sts.chinacloudapi.cn/{tenantid}/",
				"https://login.chinacloudapi.cn/{tenantid}/v2.0",
				"https://login.partner.microsoftonline.cn/{tenantid}/v2.0",
			},
		}, true
	}
	return cloudDefaults{}, false
}

// Validator checks the validationTokens of Microsoft Graph rich-notification
// batches against the Microsoft identity platform's published keys. It is
// safe for concurrent use. Create it with [New] and release it with
// [Validator.Close].
type Validator struct {
	appIDs            []string // lower-cased
	tenants           []string // lower-cased; empty = any
	issuers           []string
	jwksURL           string
	skew              time.Duration
	minRefresh        time.Duration
	retry             time.Duration
	maxRetry          time.Duration // cap of the back-off before the first key set
	now               func() time.Time
	log               *slog.Logger
	results           *resultCache // nil when disabled
	jwks              *jwk.Cache
	res               *httprc.ResourceBase[jwk.Set]
	ring              atomic.Pointer[keyRing]
	ringMu            sync.Mutex    // serialises building ring and updating withdrawn
	withdrawn         kidSet        // kids that left the key set; guarded by ringMu
	refreshSem        chan struct{} // serialises unknown-kid refreshes
	lastRefresh       time.Time     // last unknown-kid refresh attempt; guarded by refreshSem
	lastRefreshFailed bool          // that attempt failed; guarded by refreshSem
	lastRefreshKid    string        // the kid that attempt was for; guarded by refreshSem
	life              context.Context
	cancel            context.CancelFunc
	loopDone          chan struct{}
	closed            atomic.Bool
	closeMu           sync.Mutex

	verifications atomic.Int64 // signature checks performed (tests, benchmarks)
}

// New returns a Validator for cfg and starts fetching the key set in the
// background. It does not wait for the keys and does not fail when the key
// endpoint is unreachable: until keys arrive, Validate returns
// [ErrUnavailable] and background attempts continue (see
// Config.RetryInterval). Use [Validator.WaitReady] to wait at start-up.
//
// ctx bounds only the set-up; the background work runs until Close.
func New(ctx context.Context, cfg Config) (*Validator, error) {
	v, err := newValidator(cfg)
	if err != nil {
		return nil, err
	}

	if why := jwksURLWarning(v.jwksURL); why != "" {
		v.log.LogAttrs(ctx, slog.LevelWarn, "the JWKS URL "+why+": whoever controls it can sign validation tokens this receiver accepts; use it only with a simulator",
			slog.String("jwks_url", v.jwksURL))
	}
	v.life, v.cancel = context.WithCancel(context.WithoutCancel(ctx))
	jwksURL := v.jwksURL
	log := v.log
	client := httprc.NewClient(
		httprc.WithWorkers(1),
		httprc.WithWhitelist(httprc.WhitelistFunc(func(u string) bool { return u == jwksURL })),
		httprc.WithErrorSink(errsink.NewFunc(func(ctx context.Context, err error) {
			log.LogAttrs(ctx, slog.LevelWarn, "JWKS fetch failed",
				slog.String("jwks_url", jwksURL), slog.String("error", err.Error()))
		})),
	)
	v.jwks, err = jwk.NewCache(v.life, client)
	if err != nil {
		v.cancel()
		return nil, fmt.Errorf("token: start key cache: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Timeout: DefaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("token: key endpoint redirects are not followed")
			},
		}
	}
	refresh := cfg.RefreshInterval
	if refresh <= 0 {
		refresh = DefaultRefreshInterval
	}
	err = v.jwks.Register(ctx, v.jwksURL,
		jwk.WithWaitReady(false),
		jwk.WithHTTPClient(hc),
		jwk.WithConstantInterval(refresh),
		jwk.WithMinInterval(v.minRefresh),
	)
	if err == nil {
		v.res, err = v.jwks.LookupResource(ctx, v.jwksURL)
	}
	if err != nil {
		v.cancel()
		_ = v.jwks.Shutdown(context.Background())
		return nil, fmt.Errorf("token: register key set URL: %w", err)
	}
	v.loopDone = make(chan struct{})
	go v.awaitKeys(v.life)
	return v, nil
}

// newValidator checks cfg and fills in defaults, without starting anything.
func newValidator(cfg Config) (*Validator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cloud, _ := cloudFor(cfg.Cloud)
	v := &Validator{
		jwksURL:    cloud.jwksURL,
		issuers:    cloud.issuers,
		skew:       cfg.ClockSkew,
		minRefresh: cfg.MinRefreshInterval,
		retry:      cfg.RetryInterval,
		now:        cfg.Now,
		log:        cfg.Logger,
		refreshSem: make(chan struct{}, 1),
	}
	for _, id := range cfg.AppIDs {
		v.appIDs = append(v.appIDs, strings.ToLower(id))
	}
	for _, id := range cfg.TenantIDs {
		v.tenants = append(v.tenants, strings.ToLower(id))
	}
	if cfg.JWKSURL != "" {
		v.jwksURL = cfg.JWKSURL
	}
	if len(cfg.Issuers) > 0 {
		v.issuers = slices.Clone(cfg.Issuers)
	}
	if v.skew == 0 {
		v.skew = DefaultClockSkew
	}
	if v.minRefresh == 0 {
		v.minRefresh = DefaultMinRefreshInterval
	}
	if v.retry == 0 {
		v.retry = DefaultRetryInterval
	}
	v.maxRetry = max(v.retry, MaxRetryInterval)
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.CacheSize == 0:
		v.results = newResultCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		v.results = newResultCache(cfg.CacheSize)
	}
	return v, nil
}

// Ready reports whether a key set has been loaded.
func (v *Validator) Ready() bool {
	return v.res.Resource() != nil
}

// WaitReady blocks until a key set has been loaded, ctx is done or the
// Validator is closed. It returns nil once keys are loaded; otherwise an
// error wrapping [ErrUnavailable] and the context's error.
func (v *Validator) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(v.life, cancel)
	defer stop()
	if err := v.res.Ready(ctx); err != nil {
		if v.closed.Load() {
			err = net.ErrClosed
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close stops the background key fetching. It is idempotent: the second
// call returns an error wrapping [net.ErrClosed]. Validate returns
// [ErrUnavailable] after Close. Close on a nil *Validator returns nil.
func (v *Validator) Close() error {
	if v == nil {
		return nil
	}
	v.closeMu.Lock()
	defer v.closeMu.Unlock()
	if v.closed.Swap(true) {
		return fmt.Errorf("token: close: %w", net.ErrClosed)
	}
	v.cancel()
	<-v.loopDone
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := v.jwks.Shutdown(ctx); err != nil {
		return fmt.Errorf("token: close key cache: %w", err)
	}
	return nil
}

// Validate checks a batch's validationTokens. tokens are the batch's
// validationTokens; tenantIDs are the distinct tenantId values of the batch
// items that must be covered (duplicates are fine).
//
// It returns nil when every token is valid and every tenant in tenantIDs is
// the tid of at least one valid token (compared case-insensitively; an empty
// tenant id is never covered). Otherwise it returns an [*Error]:
// errors.Is(err, ErrUnavailable) means we cannot check yet (answer 503 so
// Graph retries); any other error means the batch is forged or invalid.
//
// Valid tokens are cached until their exp, so repeated tokens cost one
// signature check; tenant coverage is evaluated on every call.
func (v *Validator) Validate(ctx context.Context, tokens []string, tenantIDs []string) error {
	if v.closed.Load() {
		return &Error{Index: -1, Kind: ErrUnavailable, Detail: "validator closed", cause: net.ErrClosed}
	}
	if len(tokens) == 0 {
		return &Error{Index: -1, Kind: ErrNoTokens}
	}
	if !v.Ready() {
		return &Error{Index: -1, Kind: ErrUnavailable, Detail: "key set not loaded yet"}
	}
	now := v.now()
	covered := make([]string, 0, len(tokens))
	for i, tok := range tokens {
		tid, err := v.check(ctx, tok, now)
		if err != nil {
			err.Index = i
			return err
		}
		if !slices.Contains(covered, tid) {
			covered = append(covered, tid)
		}
	}
	for _, tid := range tenantIDs {
		if !slices.Contains(covered, strings.ToLower(tid)) {
			return &Error{Index: -1, Kind: ErrTenantNotCovered, TenantID: tid}
		}
	}
	return nil
}

// check validates one token and returns its lower-cased tid. Valid results
// come from, and go to, the result cache.
func (v *Validator) check(ctx context.Context, tok string, now time.Time) (string, *Error) {
	if tok == "" || len(tok) > maxTokenLen || strings.Count(tok, ".") != 2 {
		return "", &Error{Kind: ErrMalformed, Detail: "not a compact JWS"}
	}
	var key [sha256.Size]byte
	if v.results != nil {
		key = sha256.Sum256([]byte(tok))
		if e, ok := v.results.get(key); ok {
			if !now.Before(e.exp.Add(v.skew)) {
				v.results.remove(key)
				return "", &Error{Kind: ErrExpired, Detail: "exp passed"}
			}
			if hasKid(v.keys(), e.kid) {
				return e.tenant, nil
			}
			// Microsoft withdrew the signing key: verify again, which
			// now fails.
			v.results.remove(key)
		}
	}
	t, kid, ferr := v.verify(ctx, []byte(tok), now)
	if ferr != nil {
		return "", ferr
	}
	tid, exp, ferr := v.checkClaims(t, now)
	if ferr != nil {
		return "", ferr
	}
	if v.results != nil {
		v.results.put(key, result{tenant: tid, exp: exp, kid: kid}, now.Add(-v.skew))
	}
	return tid, nil
}

// verify checks the header and signature of tok, whose batch arrived at
// now, and returns its claims and the kid of the key that signed it.
func (v *Validator) verify(ctx context.Context, tok []byte, now time.Time) (jwt.Token, string, *Error) {
	v.verifications.Add(1)
	msg, err := jws.Parse(tok, jws.WithCompact())
	if err != nil {
		return nil, "", &Error{Kind: ErrMalformed, Detail: "cannot parse JWS", cause: err}
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, "", &Error{Kind: ErrMalformed, Detail: "want exactly one signature"}
	}
	hdr := sigs[0].ProtectedHeaders()
	if alg, ok := hdr.Algorithm(); !ok || alg != jwa.RS256() {
		return nil, "", &Error{Kind: ErrSignature, Detail: "alg is not RS256"}
	}
	kid, ok := hdr.KeyID()
	if !ok || kid == "" {
		return nil, "", &Error{Kind: ErrSignature, Detail: "no kid in header"}
	}
	set := v.keys()
	if _, ok := set.LookupKeyID(kid); !ok {
		var ferr *Error
		if set, ferr = v.refreshForKid(ctx, kid, now); ferr != nil {
			return nil, "", ferr
		}
	}
	t, err := jwt.Parse(tok, verifyOptions(set)...)
	if err != nil {
		if errors.Is(err, jws.VerifyError()) {
			return nil, "", &Error{Kind: ErrSignature, Detail: "signature does not verify", cause: err}
		}
		return nil, "", &Error{Kind: ErrMalformed, Detail: "cannot parse claims", cause: err}
	}
	return t, kid, nil
}

// verifyOptions makes jwt.Parse verify the signature against set, where
// every key carries alg RS256 (see pinRS256): the key named by the header's
// kid and nothing else, with the key's algorithm, never one inferred from
// the key type or taken from the header. Claims are checked afterwards by
// checkClaims, so that each failure maps onto its own sentinel.
func verifyOptions(set jwk.Set) []jwt.ParseOption {
	return []jwt.ParseOption{
		jwt.WithKeySet(set,
			jws.WithRequireKid(true),
			jws.WithUseDefault(false),
			jws.WithInferAlgorithmFromKey(false),
		),
		jwt.WithValidate(false),
	}
}

// checkClaims checks lifetime, audience, issuer and publisher of a token
// whose signature is valid. It returns the lower-cased tid and the exp.
func (v *Validator) checkClaims(t jwt.Token, now time.Time) (string, time.Time, *Error) {
	err := jwt.Validate(t,
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAcceptableSkew(v.skew),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.TokenExpiredError()):
		return "", time.Time{}, &Error{Kind: ErrExpired, Detail: "exp passed", cause: err}
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return "", time.Time{}, &Error{Kind: ErrExpired, Detail: "nbf in the future", cause: err}
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return "", time.Time{}, &Error{Kind: ErrExpired, Detail: "iat in the future", cause: err}
	default:
		return "", time.Time{}, &Error{Kind: ErrMalformed, Detail: "missing or invalid exp", cause: err}
	}
	exp, _ := t.Expiration()

	aud, _ := t.Audience()
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.appIDs, strings.ToLower(a)) }) {
		return "", time.Time{}, &Error{Kind: ErrAudience, Detail: "aud is not one of our app ids"}
	}

	tid := stringClaim(t, "tid")
	if tid == "" {
		return "", time.Time{}, &Error{Kind: ErrIssuer, Detail: "no tid claim"}
	}
	if len(v.tenants) > 0 && !slices.Contains(v.tenants, strings.ToLower(tid)) {
		return "", time.Time{}, &Error{Kind: ErrIssuer, Detail: "tenant not allowed", TenantID: tid}
	}
	iss, _ := t.Issuer()
	if !slices.ContainsFunc(v.issuers, func(tmpl string) bool {
		return iss == strings.ReplaceAll(tmpl, TenantPlaceholder, tid)
	}) {
		return "", time.Time{}, &Error{Kind: ErrIssuer, Detail: "iss is not an accepted issuer of the token's tid"}
	}

	if d := checkPublisher(t); d != "" {
		return "", time.Time{}, &Error{Kind: ErrPublisher, Detail: d}
	}
	return strings.ToLower(tid), exp, nil
}

// checkPublisher returns "" when the token was issued to the Graph Change
// Tracking app, else a short reason. v1.0 tokens name the caller in appid,
// v2.0 tokens in azp; without a known ver every present claim of the two
// must match and at least one must be present.
func checkPublisher(t jwt.Token) string {
	appid, azp := stringClaim(t, "appid"), stringClaim(t, "azp")
	switch stringClaim(t, "ver") {
	case "1.0":
		if !strings.EqualFold(appid, GraphChangeTrackingAppID) {
			return "appid is not the Graph Change Tracking app"
		}
	case "2.0":
		if !strings.EqualFold(azp, GraphChangeTrackingAppID) {
			return "azp is not the Graph Change Tracking app"
		}
	default:
		if appid == "" && azp == "" {
			return "neither appid nor azp present"
		}
		if (appid != "" && !strings.EqualFold(appid, GraphChangeTrackingAppID)) ||
			(azp != "" && !strings.EqualFold(azp, GraphChangeTrackingAppID)) {
			return "appid/azp is not the Graph Change Tracking app"
		}
	}
	return ""
}

// stringClaim returns the string claim name, or "" when it is absent or not
// a string.
func stringClaim(t jwt.Token, name string) string {
	var s string
	if err := t.Get(name, &s); err != nil {
		return ""
	}
	return s
}
