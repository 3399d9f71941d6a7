package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/handlers"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/status"
	"github.com/graphhook/graphhook/subscriptions"
)

// newApp returns the Echo server of the notification endpoints, with the
// operations endpoints too when withOps is set.
func (d *daemon) newApp(withOps bool) *echo.Echo {
	c := d.cfg
	e := d.newEcho()
	handlers.Register(e, d.rcv, handlers.Config{
		NotificationPath: c.NotificationPath,
		LifecyclePath:    c.LifecyclePath,
		// No BodyLimit: the receiver caps the body at --max-body-bytes
		// itself (receiver.Config.MaxBodyBytes), and a route middleware
		// costs Echo allocations on every request, handshakes included.
	})
	if withOps {
		d.addOps(e)
	}
	return e
}

// newOpsApp returns the Echo server of --ops-listen.
func (d *daemon) newOpsApp() *echo.Echo {
	e := d.newEcho()
	d.addOps(e)
	return e
}

func (d *daemon) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	e.IPExtractor = echo.ExtractIPDirect()
	if len(d.cfg.TrustedProxies) > 0 {
		// Echo trusts loopback, link-local and private addresses by
		// default; only --trusted-proxy may set the client address.
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, p := range d.cfg.TrustedProxies {
			if !strings.Contains(p, "/") {
				if ip := net.ParseIP(p); ip.To4() != nil {
					p += "/32"
				} else {
					p += "/128"
				}
			}
			if _, n, err := net.ParseCIDR(p); err == nil {
				opts = append(opts, echo.TrustIPRange(n))
			}
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}
	e.Use(d.observe(newRequestIDs()))
	return e
}

// addOps mounts /healthz, /readyz, /metrics, and the status page
// (/status, /status.json).
func (d *daemon) addOps(e *echo.Echo) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.String(http.StatusOK, "ok\n")
	})
	e.GET("/readyz", d.readyz)
	page := echo.WrapHandler(status.Handler(d.statusSnapshot))
	e.GET("/status", page)
	e.GET("/status.json", page)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(d.log.With("component", "metrics").Handler(), slog.LevelWarn),
	})))
}

// readyz answers 200 when the receiver can take notifications: NATS is
// connected, the streams exist and take writes, token signing keys are
// loaded (when token validation is on) and no shutdown is under way.
// Otherwise 503, with the failing checks in the body and, when JetStream
// is the reason, its cause (stream_full, stream_unavailable, ...).
func (d *daemon) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyCheckTimeout)
	defer cancel()
	checks, ready, cause := d.readiness(ctx)
	status, word := http.StatusOK, "ready"
	if !ready {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	body := map[string]any{"status": word, "checks": checks}
	if cause != "" {
		body["cause"] = cause
	}
	return c.JSON(status, body)
}

// readiness runs the checks of /readyz: each check's "ok" or failure, and
// the cause when JetStream is the reason.
func (d *daemon) readiness(ctx context.Context) (checks map[string]string, ready bool, cause string) {
	checks, ready = map[string]string{}, true
	fail := func(name string, err error) {
		checks[name] = err.Error()
		ready = false
	}
	if d.draining.Load() {
		fail("shutdown", errors.New("shutting down"))
	}
	if err := d.pub.Ready(ctx); err != nil {
		fail("nats", err)
		cause = degradedCause(err)
	} else {
		checks["nats"] = "ok"
	}
	if d.tokens != nil {
		if d.tokens.Ready() {
			checks["jwks"] = "ok"
		} else {
			fail("jwks", errors.New("token signing keys not loaded yet"))
		}
	}
	return checks, ready, cause
}

// degradedCause names why the publisher cannot take notifications, for
// /readyz: a word an alert can match, from natspub's sentinels.
func degradedCause(err error) string {
	for _, c := range []struct {
		err  error
		word string
	}{
		{natspub.ErrStreamFull, "stream_full"},
		{natspub.ErrStreamUnavailable, "stream_unavailable"},
		{natspub.ErrNotConnected, "nats_not_connected"},
		{natspub.ErrStreamSetup, "stream_missing"},
		{net.ErrClosed, "closed"},
	} {
		if errors.Is(err, c.err) {
			return c.word
		}
	}
	return "nats"
}

// maxRequestIDLen bounds an X-Request-Id taken from a client.
const maxRequestIDLen = 64

// requestIDs makes the ids of requests that come without a usable
// X-Request-Id: a random prefix drawn at start and a counter, 24 hex
// digits as a random id would be, but without a call to crypto/rand per
// request (seen in the handshake profile). Ids are unique within a
// generator and, by the 48 random bits of the prefix, all but surely
// across restarts and instances.
type requestIDs struct {
	prefix [12]byte // hex of 6 random bytes
	n      atomic.Uint64
}

// newRequestIDs returns a generator with a fresh random prefix.
func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	ids := &requestIDs{}
	hex.Encode(ids.prefix[:], b[:])
	return ids
}

// id returns the client's X-Request-Id when it is short and plain, else a
// new id.
func (ids *requestIDs) id(in string) string {
	if in != "" && len(in) <= maxRequestIDLen && !strings.ContainsFunc(in, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':')
	}) {
		return in
	}
	var b [24]byte
	copy(b[:], ids.prefix[:])
	n := ids.n.Add(1)
	for i := len(b) - 1; i >= len(ids.prefix); i-- {
		b[i] = "0123456789abcdef"[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// endpoint names the route of a request for metrics and logs.
func (d *daemon) endpoint(route string) string {
	switch route {
	case d.cfg.NotificationPath:
		return "notifications"
	case d.cfg.LifecyclePath:
		return "lifecycle"
	case "/healthz":
		return "healthz"
	case "/readyz":
		return "readyz"
	case "/metrics":
		return "metrics"
	case "/status", "/status.json":
		return "status"
	}
	return "other"
}

// observe is the edge middleware: it sets the request id, counts and times
// the request, and writes its one Info line, with the batch's counts when
// it reached the Sink (the receiver's own per-request lines are at Debug).
// It logs the path only, never the query string (which carries the
// validationToken and whatever the subscription put in its
// notificationUrl), nor headers or bodies.
// Ids of requests without a usable X-Request-Id come from ids.
func (d *daemon) observe(ids *requestIDs) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return d.observeWith(ids, next) }
}

func (d *daemon) observeWith(ids *requestIDs, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		ctx := &noteCtx{Context: req.Context()}
		note := &ctx.note
		note.id = ids.id(req.Header.Get(echo.HeaderXRequestID))
		ctx.header[0] = note.id
		c.Response().Header()[echo.HeaderXRequestID] = ctx.header[:] // Header.Set, without its slice
		req = req.WithContext(ctx)
		c.SetRequest(req)
		d.metrics.inFlight.Inc()
		defer d.metrics.inFlight.Dec()

		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		ep := d.endpoint(c.Path())
		dur := time.Since(start)
		d.metrics.observe(ep, status, dur)

		level := slog.LevelInfo
		switch {
		case ep == "healthz" || ep == "readyz" || ep == "metrics" || ep == "status":
			level = slog.LevelDebug
		case status >= 500:
			level = slog.LevelWarn
		}
		if !d.log.Enabled(req.Context(), level) {
			return nil
		}
		attrs := []slog.Attr{ // request_id comes from the context (requestIDHandler)
			slog.String("method", req.Method),
			slog.String("path", truncate(req.URL.Path, 256)),
			slog.String("endpoint", ep),
			slog.Int("status", status),
			slog.Duration("duration", dur),
			slog.String("remote_ip", c.RealIP()),
			slog.Int64("bytes_in", req.ContentLength),
			slog.Int64("bytes_out", c.Response().Size),
		}
		if note.delivered.Load() {
			attrs = append(attrs, slog.Int64("accepted", note.accepted.Load()), slog.Int64("rejected", note.rejected.Load()))
		}
		if he, ok := errors.AsType[*echo.HTTPError](err); ok && he.Internal != nil {
			attrs = append(attrs, slog.String("error", he.Internal.Error()))
		} else if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		d.log.LogAttrs(req.Context(), level, "http request", attrs...)
		return nil
	}
}

// banner prints where the receiver listens and how to consume its events.
func (d *daemon) banner() {
	c := d.cfg
	scheme := "http"
	if d.certs != nil {
		scheme = "https"
	}
	base := scheme + "://" + displayAddr(d.ln.Addr())
	ops := base
	if d.opsLn != nil {
		ops = "http://" + displayAddr(d.opsLn.Addr())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "graphhook receiver %s is running.\n", version)
	fmt.Fprintf(&b, "  notifications: %s%s\n", base, c.NotificationPath)
	fmt.Fprintf(&b, "  lifecycle:     %s%s\n", base, c.LifecyclePath)
	fmt.Fprintf(&b, "  operations:    %s/healthz %s/readyz %s/metrics %s/status\n", ops, ops, ops, ops)
	if d.mgr != nil {
		fmt.Fprintf(&b, "  subscriptions: %d kept alive by the subscription manager, with their clientStates in the bucket %s (receiver subscriptions list); for other subscriptions:\n", len(d.subs.specs), subscriptions.DefaultBucket)
	}
	switch {
	case c.InsecureSkipClientState:
		fmt.Fprintf(&b, "  clientState:   NOT CHECKED (--insecure-skip-client-state)\n")
	case d.sec.clientStateFile != "" && d.sec.generated:
		fmt.Fprintf(&b, "  clientState:   generated in %s; use its content as the subscriptions' clientState\n", d.sec.clientStateFile)
	case d.sec.clientStateFile != "":
		fmt.Fprintf(&b, "  clientState:   %d value(s) from %s\n", len(d.sec.clientStates), d.sec.clientStateFile)
	default:
		fmt.Fprintf(&b, "  clientState:   %d value(s) from --client-state\n", len(d.sec.clientStates))
	}
	var natsURL, consumeURL string
	if d.ns != nil {
		natsURL = d.ns.ClientURL()
		// The token itself is never printed: the commands read its file.
		consumeURL = `"nats://$(cat ` + shellQuote(d.sec.natsTokenFile) + `)@` + strings.TrimPrefix(natsURL, "nats://") + `"`
		fmt.Fprintf(&b, "  NATS:          embedded server at %s, JetStream store in %s\n", natsURL, d.ns.JetStreamConfig().StoreDir)
		fmt.Fprintf(&b, "                 clients authenticate with the token in %s\n", d.sec.natsTokenFile)
	} else {
		natsURL = redactURLs(c.NATSURLs)
		consumeURL = natsURL
		fmt.Fprintf(&b, "  NATS:          %s\n", natsURL)
	}
	p := c.SubjectPrefix
	fmt.Fprintf(&b, "  streams:       %s (%s.notifications.>, %s.lifecycle.>), rejected items in %s and %s (%s.rejected.>)\n", c.Stream, p, p, c.QuarantineStream, c.UnverifiedStream, p)
	// The URL goes into the environment, not onto command lines, where
	// any local user could read the token (ps, /proc/*/cmdline).
	fmt.Fprintf(&b, "Consume the events (in another shell, from this directory):\n")
	fmt.Fprintf(&b, "  export NATS_URL=%s\n", consumeURL)
	fmt.Fprintf(&b, "  go run ./examples/consumer --stream %s    # follows the events; Ctrl-C stops\n", c.Stream)
	fmt.Fprintf(&b, "  nats stream info %s    # with the nats CLI; nats sub '%s.>' follows new events\n", c.Stream, p)
	reload := "the TLS certificate"
	if d.mgr != nil {
		reload += " and the desired subscriptions"
	}
	fmt.Fprintf(&b, "Stop with Ctrl-C or SIGTERM (graceful); SIGHUP reloads %s.\n", reload)
	_, _ = io.WriteString(d.stdout, b.String())

	d.log.Info("receiver started", "version", version, "listen", d.ln.Addr().String(), "tls", d.certs != nil,
		"notification_path", c.NotificationPath, "lifecycle_path", c.LifecyclePath, "nats", natsURL,
		"stream", c.Stream, "token_validation", d.tokens != nil, "keys", len(d.sec.keys), "rsa_backend", decrypt.Backend,
		"gomaxprocs", runtime.GOMAXPROCS(0))
}

// displayAddr shows a listener address the way a user would type it:
// "localhost:8080" for a wildcard address.
func displayAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", ta.Port)
	}
	return ta.AddrPort().String()
}

// shellQuote returns s as one word for a POSIX shell: unchanged when it
// holds only characters that need no quoting, else in single quotes.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+,@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// redactURLs joins URLs without any credentials they carry.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = u
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if s := strings.Index(u, "://"); s >= 0 && s < at {
				out[i] = u[:s+3] + "REDACTED" + u[at:]
			}
		}
	}
	return strings.Join(out, ",")
}

// truncate cuts s to at most n bytes, for values a client chose.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
