package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/graphhook/graphhook/receiver"
)

// Defaults of [Config].
const (
	// DefaultHandshakeTimeout is Graph's budget for a validation handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultDeliveryTimeout is Graph's budget for a notification delivery.
	DefaultDeliveryTimeout = 3 * time.Second
	// DefaultUploadTimeout bounds the body-limit check, which uploads
	// MaxBodyBytes over the doctor's own link.
	DefaultUploadTimeout = time.Minute
	// DefaultSubjectPrefix is natspub's default subject prefix.
	DefaultSubjectPrefix = "graph"
	// CertExpiryWarning: a certificate expiring sooner is a warning.
	CertExpiryWarning = 14 * 24 * time.Hour
)

// Config configures [Run]. URL is required; the zero value of every other
// field checks the way Graph reaches an endpoint.
type Config struct {
	// URL is the notificationUrl exactly as given to Graph, e.g.
	// "https://hooks.example.com/notifications". Required.
	URL string
	// LifecycleURL is the lifecycleNotificationUrl, when the subscriptions
	// have one. Optional; it gets its own handshake check.
	LifecycleURL string
	// RootCAs are the roots a public client trusts. Default nil: the
	// system's roots. Tests set their own CA.
	RootCAs *x509.CertPool
	// MaxBodyBytes is the receiver's body limit; the body-limit check posts
	// a body of this size and wants it accepted. Default
	// receiver.DefaultMaxBodyBytes (4 MiB); negative skips the check.
	MaxBodyBytes int64
	// HandshakeTimeout is the budget of a handshake. Default 10 s, Graph's.
	HandshakeTimeout time.Duration
	// DeliveryTimeout is the budget of a notification. Default 3 s, Graph's.
	DeliveryTimeout time.Duration
	// UploadTimeout bounds the body-limit POST. Default 1 minute.
	UploadTimeout time.Duration
	// NATS, when set, is used to check that the forged notification is not
	// published (and is quarantined), by subscribing to the receiver's
	// subjects. Default nil: that check is skipped.
	NATS *nats.Conn
	// SubjectPrefix is the receiver's natspub subject prefix. Default
	// "graph".
	SubjectPrefix string
	// Resolver resolves the URL's host. Default net.DefaultResolver.
	Resolver *net.Resolver
	// Progress, when set, is called with each check as it completes, so a
	// command can print the checklist as it goes.
	Progress func(Check)
}

// Validate reports the first invalid field as a [*ConfigError].
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c Config) withDefaults() (Config, error) {
	for _, f := range []struct {
		name, value string
		required    bool
	}{{"URL", c.URL, true}, {"LifecycleURL", c.LifecycleURL, false}} {
		if f.value == "" {
			if f.required {
				return c, &ConfigError{Field: f.name, Err: errors.New("required: the notificationUrl as given to Graph, e.g. https://hooks.example.com/notifications")}
			}
			continue
		}
		u, err := url.Parse(f.value)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return c, &ConfigError{Field: f.name, Err: errors.New("not an absolute http(s) URL; want e.g. https://hooks.example.com/notifications")}
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HandshakeTimeout", &c.HandshakeTimeout, DefaultHandshakeTimeout},
		{"DeliveryTimeout", &c.DeliveryTimeout, DefaultDeliveryTimeout},
		{"UploadTimeout", &c.UploadTimeout, DefaultUploadTimeout},
	} {
		if *d.v < 0 {
			return c, &ConfigError{Field: d.name, Err: fmt.Errorf("negative duration %v; zero means the default %v", *d.v, d.def)}
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = receiver.DefaultMaxBodyBytes
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	return c, nil
}

// Run checks cfg.URL (and cfg.LifecycleURL) and returns the checklist. The
// error is non-nil only for an invalid Config (a [*ConfigError]) or when
// ctx ends; every problem of the endpoint is a failed [Check] in the
// report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &run{cfg: cfg, rep: &Report{URL: cfg.URL, LifecycleURL: cfg.LifecycleURL, Started: time.Now()}}
	d.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // Graph connects directly
			TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 2,
		},
		// Graph does not follow redirects: the endpoint must answer itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer d.client.CloseIdleConnections()
	d.steps(ctx)
	d.rep.Duration = time.Since(d.rep.Started)
	if err := ctx.Err(); err != nil {
		return d.rep, fmt.Errorf("doctor: %w", err)
	}
	return d.rep, nil
}

type run struct {
	cfg    Config
	rep    *Report
	client *http.Client

	// latencies of the notification POSTs, for the answer-time check.
	handshake, delivery time.Duration
	natsErr             error
}

// add records a check and reports progress.
func (d *run) add(c Check) Check {
	d.rep.Checks = append(d.rep.Checks, c)
	if d.cfg.Progress != nil {
		d.cfg.Progress(c)
	}
	return c
}

// skip records checks that cannot run.
func (d *run) skip(why string, ids ...string) {
	for _, id := range ids {
		d.add(Check{ID: id, Name: name(id), Status: Skip, Detail: why})
	}
}

// name is the human name of the check id.
func name(id string) string {
	switch id {
	case CheckURL:
		return "Notification URL is https"
	case CheckDNS:
		return "Host name resolves"
	case CheckTLS:
		return "TLS 1.2+ with a publicly trusted chain"
	case CheckTLS12:
		return "TLS 1.2 accepted (Graph's default)"
	case CheckHandshake:
		return "Validation handshake on the notification URL"
	case CheckLifecycleHandshake:
		return "Validation handshake on the lifecycle URL"
	case CheckClientState:
		return "Notification with a wrong clientState answered 202"
	case CheckNotPublished:
		return "Forged notification not published"
	case CheckAnswerTime:
		return "Answer time within Graph's budgets"
	case CheckBodyLimit:
		return "Body limit at least the receiver's"
	}
	return id
}

func (d *run) steps(ctx context.Context) {
	u, _ := url.Parse(d.cfg.URL) // validated
	httpIDs := []string{CheckHandshake}
	if d.cfg.LifecycleURL != "" {
		httpIDs = append(httpIDs, CheckLifecycleHandshake)
	}
	httpIDs = append(httpIDs, CheckClientState, CheckNotPublished, CheckAnswerTime, CheckBodyLimit)

	d.checkScheme(u)
	if !d.checkDNS(ctx, u.Hostname()) {
		ids := []string{CheckTLS, CheckTLS12}
		if u.Scheme != "https" {
			ids = nil
		}
		d.skip("the host name does not resolve", append(ids, httpIDs...)...)
		return
	}
	if u.Scheme == "https" {
		if !d.checkTLS(ctx, u) {
			d.skip("TLS failed", append([]string{CheckTLS12}, httpIDs...)...)
			return
		}
		d.checkTLS12(ctx, u)
	}
	d.checkHandshake(ctx, CheckHandshake, d.cfg.URL)
	if d.cfg.LifecycleURL != "" {
		d.checkHandshake(ctx, CheckLifecycleHandshake, d.cfg.LifecycleURL)
	}
	d.checkClientState(ctx)
	d.checkAnswerTime(ctx)
	d.checkBodyLimit(ctx)
}

func (d *run) checkScheme(u *url.URL) {
	c := Check{ID: CheckURL, Name: name(CheckURL), Status: Pass, Detail: u.Scheme + "://" + u.Host + u.Path}
	if d.cfg.LifecycleURL != "" {
		if lu, _ := url.Parse(d.cfg.LifecycleURL); lu.Scheme != "https" {
			c.Status, c.Detail = Fail, "the lifecycle URL is "+lu.Scheme
		}
	}
	if u.Scheme != "https" {
		c.Status, c.Detail = Fail, "plain "+u.Scheme+": Graph rejects a notificationUrl that is not https"
	}
	if c.Status == Fail {
		c.Fix = "serve the receiver over HTTPS (--tls-cert/--tls-key, or a TLS-terminating load balancer or ingress with a public certificate) and subscribe with the https:// URL"
	}
	d.add(c)
}

func (d *run) checkDNS(ctx context.Context, host string) bool {
	start := time.Now()
	c := Check{ID: CheckDNS, Name: name(CheckDNS), Status: Pass}
	defer func() { c.Duration = time.Since(start); d.add(c) }()
	if ip, err := netip.ParseAddr(host); err == nil {
		c.Status, c.Detail = Warn, "the URL names an IP address, "+ip.String()
		c.Fix = "use a DNS name with a certificate from a public CA; certificates for bare IP addresses are rare and break when the address changes"
		if why := private(ip); why != "" {
			c.Detail += ", " + why + " Graph cannot reach"
		}
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := d.cfg.Resolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s does not resolve: %v", host, err)
		c.Fix = "create a public DNS record (A/AAAA or CNAME) for " + host + " pointing at the receiver's load balancer, then wait for it to propagate"
		return false
	}
	var list, bad []string
	for _, a := range addrs {
		list = append(list, a.Unmap().String())
		if why := private(a.Unmap()); why != "" {
			bad = append(bad, a.Unmap().String()+" ("+why+")")
		}
	}
	c.Detail = host + " → " + strings.Join(list, ", ")
	if len(bad) > 0 {
		c.Status = Warn
		c.Detail += "; not reachable from the internet: " + strings.Join(bad, ", ")
		c.Fix = "Graph connects from Microsoft's cloud: the name must resolve publicly to the address of a public load balancer or tunnel (split-horizon DNS may explain this answer on an internal network)"
	}
	return true
}

// private says why an address is not reachable from the internet, or "".
func private(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case a.IsUnspecified():
		return "the unspecified address"
	case netip.MustParsePrefix("100.64.0.0/10").Contains(a):
		return "a carrier-grade NAT address"
	}
	return ""
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

func (d *run) dialTLS(ctx context.Context, u *url.URL, maxVersion uint16) (tls.ConnectionState, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dialer := &tls.Dialer{Config: &tls.Config{
		RootCAs: d.cfg.RootCAs, ServerName: u.Hostname(),
		MinVersion: tls.VersionTLS12, MaxVersion: maxVersion,
	}}
	conn, err := dialer.DialContext(dctx, "tcp", hostPort(u))
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

func (d *run) checkTLS(ctx context.Context, u *url.URL) bool {
	start := time.Now()
	c := Check{ID: CheckTLS, Name: name(CheckTLS), Status: Pass}
	defer func() { c.Duration = time.Since(start); d.add(c) }()
	st, err := d.dialTLS(ctx, u, 0)
	if err != nil {
		c.Status = Fail
		c.Detail, c.Fix = explainTLS(err, u.Hostname())
		return false
	}
	leaf := st.PeerCertificates[0]
	left := time.Until(leaf.NotAfter)
	c.Detail = fmt.Sprintf("%s, certificate for %s issued by %s, expires %s (in %d days)",
		tls.VersionName(st.Version), leaf.Subject.CommonName, leaf.Issuer.CommonName,
		leaf.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
	if left < CertExpiryWarning {
		c.Status = Warn
		c.Fix = "renew the certificate now (automate it, e.g. with cert-manager or an ACME client); Graph stops delivering the moment it expires"
	}
	return true
}

// explainTLS turns a TLS dial error into what was seen and what to do.
func explainTLS(err error, host string) (detail, fix string) {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &unknown):
		return "the certificate chain is not trusted by a public client: " + err.Error(),
			"serve a certificate from a public CA together with its intermediates (the full chain, e.g. fullchain.pem), not a self-signed or internal-CA certificate"
	case errors.As(err, &hostErr):
		return "the certificate is not valid for " + host + ": " + err.Error(),
			"get a certificate whose subject alternative names include " + host
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the certificate has expired or is not yet valid: " + err.Error(),
			"renew the certificate and automate renewal"
	case errors.As(err, &recordErr):
		return "the server did not answer with TLS (is the port serving plain HTTP?)",
			"serve TLS on this port, or use the port that does"
	case strings.Contains(err.Error(), "protocol version"):
		return "the server offers no TLS 1.2 or later: " + err.Error(),
			"enable TLS 1.2 and 1.3 on the server or load balancer; Graph does not use TLS 1.0 or 1.1"
	case errors.As(err, &alert):
		return "the TLS handshake failed: " + err.Error(),
			"check the TLS settings of the server or load balancer: it must accept clients without a certificate, over TLS 1.2 or 1.3, for this host name (SNI)"
	}
	return "cannot connect with TLS: " + err.Error(),
		"check that the port is open to the internet (firewall, security group, load balancer listener) and the receiver or proxy is running"
}

func (d *run) checkTLS12(ctx context.Context, u *url.URL) {
	start := time.Now()
	c := Check{ID: CheckTLS12, Name: name(CheckTLS12), Status: Pass, Detail: "TLS 1.2 handshake succeeded"}
	if _, err := d.dialTLS(ctx, u, tls.VersionTLS12); err != nil {
		c.Status = Warn
		c.Detail = "only TLS 1.3 is accepted: " + err.Error()
		c.Fix = "also enable TLS 1.2, or create subscriptions with latestSupportedTlsVersion \"v1_3\": Graph uses TLS 1.2 unless the subscription says otherwise"
	}
	c.Duration = time.Since(start)
	d.add(c)
}

// token is the doctor's validationToken: Graph's own prefix, then the
// characters a wrong decoding or an HTML escape changes.
func token() string {
	return "Validation: Testing client application reachability for subscription Request-Id: " +
		guid() + " graphhook doctor 1+1 %2B <b>&'"
}

func guid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func withToken(raw, tok string) string {
	u, _ := url.Parse(raw)
	q := "validationToken=" + url.QueryEscape(tok)
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String()
}

func (d *run) checkHandshake(ctx context.Context, id, target string) {
	tok := token()
	c := Check{ID: id, Name: name(id), Status: Fail}
	defer func() { d.add(c) }()
	hctx, cancel := context.WithTimeout(ctx, d.cfg.HandshakeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodPost, withToken(target, tok), http.NoBody)
	if err != nil {
		c.Detail, c.Fix = err.Error(), "check the URL"
		return
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	start := time.Now()
	resp, err := d.client.Do(req)
	c.Duration = time.Since(start)
	if err != nil {
		c.Detail, c.Fix = explainTransport(err, d.cfg.HandshakeTimeout, "handshake")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if id == CheckHandshake {
		d.handshake = c.Duration
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	seen := fmt.Sprintf("answered %s, Content-Type %q, %d bytes, in %s", resp.Status, ct, len(body), round(c.Duration))
	c.Detail = seen
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		c.Fix = "an authentication layer in front of the receiver (API gateway, App Service Authentication, OAuth2 proxy, basic auth on the ingress) rejects Graph's anonymous POST: exempt this path from authentication; graphhook proves origin itself with clientState and validationTokens"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		c.Fix = fmt.Sprintf("Graph does not follow redirects (this one goes to %q): subscribe with the final URL, including its trailing slash or lack of one", resp.Header.Get("Location"))
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		c.Fix = "the path or method is not routed to the receiver: Graph POSTs to the URL exactly as subscribed; route POST " + req.URL.Path + " to the receiver"
	case resp.StatusCode != http.StatusOK:
		c.Fix = "answer the handshake with 200 OK (not 202 or 204): Graph accepts nothing else"
	case mt == "text/html":
		c.Fix = "the answer is HTML (an error or login page, or a framework's template): answer with Content-Type text/plain and the token as the whole body"
	case mt != "text/plain":
		c.Fix = "answer with Content-Type: text/plain; Graph compares the plain body with the token"
	case string(body) == tok:
		c.Status = Pass
		c.Detail = fmt.Sprintf("200 text/plain with the exact token in %s", round(c.Duration))
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			c.Status = Warn
			c.Fix = "add X-Content-Type-Options: nosniff, so no browser renders a crafted token as HTML"
		}
		if c.Duration > d.cfg.DeliveryTimeout {
			c.Status = Warn
			c.Fix = fmt.Sprintf("the answer took %s: Graph allows %s for a handshake but only %s for each notification; keep an instance warm", round(c.Duration), d.cfg.HandshakeTimeout, d.cfg.DeliveryTimeout)
		}
	default:
		c.Detail = seen + ": " + explainBody(string(body), tok)
		c.Fix = "send back exactly the URL-decoded validationToken, byte for byte, as text/plain (Go: r.URL.Query().Get(\"validationToken\")); nothing else, no quotes, no newline, no HTML escaping"
	}
}

// explainBody says how a handshake body differs from the token.
func explainBody(body, tok string) string {
	enc := url.QueryEscape(tok)
	pathDecoded, _ := url.PathUnescape(enc)
	switch {
	case body == enc || strings.EqualFold(body, enc):
		return "the token came back still URL-encoded"
	case body == pathDecoded:
		return "the token was decoded without form semantics: '+' must become a space"
	case body == html.EscapeString(tok):
		return "the token came back HTML-escaped"
	case strings.TrimSpace(body) == tok:
		return "the token came back with surrounding whitespace or a newline"
	case strings.Trim(body, `"`) == tok:
		return "the token came back quoted (JSON?)"
	case len(body) > 60:
		return fmt.Sprintf("the body %q… is not the token", body[:60])
	}
	return fmt.Sprintf("the body %q is not the token", body)
}

// explainTransport describes an error where no answer arrived.
func explainTransport(err error, budget time.Duration, what string) (detail, fix string) {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Sprintf("no answer within %s", budget),
			fmt.Sprintf("Graph gives up on a %s after %s: a cold start (serverless, scale to zero, a container pulling its image) or a slow start-up; keep at least one instance warm (min instances, always on) and answer handshakes before any slow initialisation", what, budget)
	}
	return "no answer: " + err.Error(),
		"check that the port is open to the internet and that the receiver (or its proxy) is running"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// forged returns a changeNotificationCollection with one item for a
// made-up subscription and tenant, signed with a clientState no
// subscription has, padded with JSON whitespace to size bytes when size
// is larger.
func forged(subID, tenantID string, size int64) []byte {
	item := map[string]any{
		"id":                             "graphhook-doctor-" + guid(),
		"subscriptionId":                 subID,
		"subscriptionExpirationDateTime": time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"clientState":                    "graphhook-doctor-wrong-" + guid(),
		"changeType":                     "updated",
		"resource":                       "graphhook/doctor",
		"tenantId":                       tenantID,
		"resourceData":                   map[string]string{"id": "graphhook-doctor", "@odata.type": "#microsoft.graph.doctor"},
	}
	b, _ := json.Marshal(map[string]any{"value": []any{item}})
	if pad := size - int64(len(b)); pad > 0 {
		out := make([]byte, 0, size)
		out = append(out, b[:len(b)-1]...)
		out = append(out, bytes.Repeat([]byte{' '}, int(pad))...)
		return append(out, '}')
	}
	return b
}

func (d *run) post(ctx context.Context, body []byte, budget time.Duration) (*http.Response, time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, time.Since(start), err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp, time.Since(start), nil
}

func (d *run) checkClientState(ctx context.Context) {
	subID, tenantID := guid(), guid()
	var published, quarantined *nats.Subscription
	if nc := d.cfg.NATS; nc != nil {
		var err error
		published, err = nc.SubscribeSync(d.cfg.SubjectPrefix + ".*." + tenantID + ".>")
		if err == nil {
			defer published.Unsubscribe()
			quarantined, err = nc.SubscribeSync(d.cfg.SubjectPrefix + ".rejected.*." + tenantID)
		}
		if err == nil {
			defer quarantined.Unsubscribe()
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = nc.FlushWithContext(fctx)
			cancel()
		}
		if err != nil {
			published = nil
			d.natsErr = err
		}
	}
	c := Check{ID: CheckClientState, Name: name(CheckClientState), Status: Fail}
	resp, took, err := d.post(ctx, forged(subID, tenantID, 0), d.cfg.DeliveryTimeout)
	c.Duration = took
	switch {
	case err != nil:
		c.Detail, c.Fix = explainTransport(err, d.cfg.DeliveryTimeout, "notification")
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		c.Status = Pass
		c.Detail = fmt.Sprintf("answered %s in %s", resp.Status, round(took))
		d.delivery = took
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		c.Detail = "answered " + resp.Status
		c.Fix = "answer forged notifications 202 and quarantine them: a 401/403 tells a prober which check failed, and an authentication layer in front also blocks Graph"
	case resp.StatusCode == http.StatusUnsupportedMediaType:
		c.Detail = "answered " + resp.Status + " to Content-Type application/json"
		c.Fix = "accept application/json bodies (Graph's notificationContentType)"
	default:
		c.Detail = "answered " + resp.Status
		c.Fix = "answer every well-formed notification 202 (forged ones quarantined), so Graph neither retries nor learns anything; a 5xx means the receiver cannot store the batch: check its logs and NATS"
	}
	d.add(c)
	d.checkNotPublished(ctx, c.Status == Pass, published, quarantined)
}

func (d *run) checkNotPublished(ctx context.Context, answered bool, published, quarantined *nats.Subscription) {
	c := Check{ID: CheckNotPublished, Name: name(CheckNotPublished)}
	switch {
	case d.cfg.NATS == nil:
		c.Status, c.Detail = Skip, "no NATS connection given"
	case d.natsErr != nil:
		c.Status, c.Detail = Skip, "cannot subscribe: "+d.natsErr.Error()
	case !answered:
		c.Status, c.Detail = Skip, "the forged notification was not accepted"
	default:
		// The receiver answers only after JetStream stored the batch, and the
		// server forwards a stored message to subscribers before it acks, so
		// one round trip makes every such message visible here.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := d.cfg.NATS.FlushWithContext(fctx)
		cancel()
		if err != nil {
			c.Status, c.Detail = Skip, "NATS flush: "+err.Error()
			break
		}
		np, _, _ := published.Pending()
		nq, _, _ := quarantined.Pending()
		switch {
		case np > 0:
			c.Status = Fail
			c.Detail = fmt.Sprintf("%d message(s) published for the forged notification", np)
			c.Fix = "the receiver does not check clientState: set --client-state (or a ClientStateLookup) and never run with InsecureSkipClientState outside tests"
		case nq == 0:
			c.Status = Warn
			c.Detail = "not published, but not quarantined either"
			c.Fix = "check that the receiver publishes to this NATS server and subject prefix (" + d.cfg.SubjectPrefix + "); rejected items should reach the quarantine stream"
		default:
			c.Status, c.Detail = Pass, "not published; quarantined as expected"
		}
	}
	d.add(c)
}

// answerSamples is how many notifications the answer-time check times,
// the clientState check's included.
const answerSamples = 5

func (d *run) checkAnswerTime(ctx context.Context) {
	start := time.Now()
	c := Check{ID: CheckAnswerTime, Name: name(CheckAnswerTime), Status: Pass}
	defer func() { c.Duration = time.Since(start); d.add(c) }()
	if d.delivery == 0 {
		c.Status, c.Detail = Skip, "no notification was answered"
		return
	}
	times := []time.Duration{d.delivery}
	for len(times) < answerSamples {
		resp, took, err := d.post(ctx, forged(guid(), guid(), 0), d.cfg.DeliveryTimeout)
		if err != nil {
			c.Status = Fail
			c.Detail, c.Fix = explainTransport(err, d.cfg.DeliveryTimeout, "notification")
			c.Detail = fmt.Sprintf("notification %d of %d: %s", len(times)+1, answerSamples, c.Detail)
			return
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			c.Status = Fail
			c.Detail = fmt.Sprintf("notification %d of %d answered %s", len(times)+1, answerSamples, resp.Status)
			c.Fix = "every notification must be answered 2xx within the budget; a 503 means the receiver could not store the batch: check its logs and NATS"
			return
		}
		times = append(times, took)
	}
	slices.Sort(times)
	median, slowest := times[len(times)/2], times[len(times)-1]
	c.Detail = fmt.Sprintf("%d notifications answered in %s median, %s at most (Graph allows %s); the handshake in %s (allows %s)",
		len(times), round(median), round(slowest), d.cfg.DeliveryTimeout, round(d.handshake), d.cfg.HandshakeTimeout)
	if slowest > d.cfg.DeliveryTimeout/2 {
		c.Status = Warn
		c.Fix = "answers this slow leave no margin: Graph marks an endpoint slow when more than 10 % of answers take over 3 s; check the NATS publish latency and the network path"
	}
}

func (d *run) checkBodyLimit(ctx context.Context) {
	c := Check{ID: CheckBodyLimit, Name: name(CheckBodyLimit), Status: Fail}
	if d.cfg.MaxBodyBytes < 0 {
		c.Status, c.Detail = Skip, "disabled"
		d.add(c)
		return
	}
	resp, took, err := d.post(ctx, forged(guid(), guid(), d.cfg.MaxBodyBytes), d.cfg.UploadTimeout)
	c.Duration = took
	switch {
	case err != nil:
		c.Detail = fmt.Sprintf("posting %d bytes: %v", d.cfg.MaxBodyBytes, err)
		c.Fix = "a proxy may cut large bodies off; check its request-size and timeout limits"
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		c.Detail = fmt.Sprintf("a %d-byte notification was refused with %s", d.cfg.MaxBodyBytes, resp.Status)
		c.Fix = fmt.Sprintf("something in front of the receiver (or the receiver itself) limits bodies below %d bytes: raise it (nginx client_max_body_size, ingress-nginx proxy-body-size annotation, the receiver's --max-body-bytes); rich notifications carry whole resources", d.cfg.MaxBodyBytes)
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		c.Status = Pass
		c.Detail = fmt.Sprintf("a %d-byte notification was answered %s", d.cfg.MaxBodyBytes, resp.Status)
	default:
		c.Detail = fmt.Sprintf("a %d-byte notification was answered %s", d.cfg.MaxBodyBytes, resp.Status)
		c.Fix = "a large notification must be answered 202 like a small one; check the receiver's logs"
	}
	d.add(c)
}

// round shortens d for display: 0.4ms, 12ms, 3.2s.
func round(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
