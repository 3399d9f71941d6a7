package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/net/netutil"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/standing"
	"github.com/graphhook/graphhook/subscriptions"
	"github.com/graphhook/graphhook/token"
)

// Timeouts of the start-up and shutdown steps that have no setting.
const (
	natsConnectTimeout = 30 * time.Second
	readyCheckTimeout  = 2 * time.Second
	minDrainTimeout    = 5 * time.Second
	// tracingShutdownTimeout bounds the flush of the last spans at exit.
	tracingShutdownTimeout = 5 * time.Second
)

// run is the whole command: main only adds the signal context and the exit
// status. lookupEnv reads the environment (os.LookupEnv). It returns when
// ctx is done and shutdown has finished (nil), or with the reason the
// receiver could not start or stopped.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	// SIGHUP reloads the TLS certificate once the receiver serves. Catch it
	// from the start, so that one sent while the receiver starts (a
	// certificate deploy hook, systemctl reload) waits in hup instead of
	// killing the process, which is SIGHUP's default action.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if len(args) > 0 {
		switch args[0] {
		case "keygen":
			return keygen(args[1:], stdout)
		case "doctor":
			return doctorCmd(ctx, args[1:], lookupEnv, stdout)
		case "subscriptions":
			return subscriptionsCmd(ctx, args[1:], lookupEnv, stdout, stderr)
		case "help":
			if len(args) == 2 && args[1] == "config" {
				return writeConfigTable(stdout)
			}
			writeUsage(stdout)
			return nil
		}
	}
	c, err := loadConfig(args, lookupEnv)
	if errors.Is(err, errHelp) {
		writeUsage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	if c.Version {
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	if ps := c.validate(); len(ps) > 0 {
		return ps.err()
	}
	log := newLogger(c, stderr)
	// Tracing follows the standard OTEL_* environment; off, tp is a no-op
	// provider and the libraries start no spans.
	tp, shutdownTracing, err := setupTracing(ctx, func(k string) string { v, _ := lookupEnv(k); return v })
	if err != nil {
		return err // names the OTEL_* variable and what it accepts, never a header value
	}
	// Deferred before d.run's own shutdown, so it runs after the HTTP
	// server and NATS have stopped and flushes the last batches' spans.
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownTimeout)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("tracing: flushing the last spans failed; they are lost", "error", err)
		}
	}()
	_, tracingOff := tp.(noop.TracerProvider)
	if !tracingOff {
		log = slog.New(traceLogHandler(log.Handler()))
		// Export failures otherwise go to stderr through the standard log
		// package; the exporter's errors name the endpoint, never a header.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: OpenTelemetry reported an error (usually an export that failed: check OTEL_EXPORTER_OTLP_ENDPOINT and that the collector runs)", "component", "otel", "error", err)
		}))
	}
	sec, ps := c.loadSecrets()
	var certs *certReloader
	if c.TLSCert != "" {
		certs, err = newCertReloader(c.TLSCert, c.TLSKey, log.With("component", "tls"))
		if err != nil {
			ps.add(c.where("tls-cert"), err, fmt.Sprintf("cannot load the TLS certificate and key: %v (want PEM files, example: --tls-cert /etc/graphhook/tls.crt --tls-key /etc/graphhook/tls.key)", pathError(err)))
		}
	}
	d := &daemon{cfg: c, log: log, stdout: stdout, sec: sec, certs: certs, metrics: newMetrics(), hup: hup, budget: newBodyBudget(c.MaxInflightBytes, c.MaxBodyBytes),
		args: args, lookupEnv: lookupEnv, tp: tp, tracing: !tracingOff}
	if c.Subscriptions != nil {
		var sps problems
		d.subs, sps = c.loadSubs(lookupEnv, sec.keys)
		ps = append(ps, sps...)
	}
	if len(ps) == 0 {
		// The receiver's rules are checked before anything starts; its
		// real Sink and keys come once NATS is up.
		rc := d.receiverConfig(nil)
		rc.Sink = receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil })
		ps.addLibrary(c, "receiver", rc.Validate())
	}
	if len(ps) > 0 {
		return ps.err()
	}
	d.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "graphhook_inflight_body_bytes",
		Help: "Notification body bytes reserved by requests being received or processed (budget: --max-inflight-bytes).",
	}, func() float64 { return float64(d.budget.used.Load()) }))
	return d.run(ctx)
}

// indentLines prefixes every line after the first with "receiver: ", so
// that each problem of a configuration error is one complete line.
func indentLines(s string) string {
	return strings.ReplaceAll(s, "\n", "\nreceiver: ")
}

// daemon is a running receiver and everything it owns.
type daemon struct {
	cfg     *config
	log     *slog.Logger
	stdout  io.Writer
	sec     *secrets
	certs   *certReloader
	metrics *metrics
	budget  *bodyBudget
	hup     <-chan os.Signal     // SIGHUPs, caught since run started
	tp      trace.TracerProvider // from setupTracing; a no-op one when tracing is off
	tracing bool                 // tp exports spans

	args      []string // the command line and environment, read again on SIGHUP
	lookupEnv func(string) (string, bool)

	ln, opsLn   net.Listener
	ns          *server.Server
	nc          *nats.Conn
	pub         *natspub.Publisher
	tokens      *token.Validator
	subs        *subsSetup // the subscriptions section, if any
	mgr         *subscriptions.Manager
	standing    *standing.Monitor
	rcv         *receiver.Receiver
	srv, opsSrv *http.Server

	grace    *drainer // the notification server's drain grace
	opsAuto  bool     // the operations endpoints were moved to defaultOpsListen
	draining atomic.Bool
	closed   bool // close has run; only the run goroutine reads or sets it
}

// run starts everything, serves until ctx is done, and shuts down.
func (d *daemon) run(ctx context.Context) (err error) {
	c := d.cfg
	defer d.close() // releases whatever a failed start left open
	defer func() {
		if err != nil && ctx.Err() != nil && d.srv == nil {
			err = nil // interrupted while starting: a requested stop, not a failure
		}
	}()

	if err := d.listen(); err != nil {
		return err
	}
	if len(c.NATSURLs) == 0 {
		if err := d.startEmbeddedNATS(); err != nil {
			return err
		}
	}
	if err := d.connect(ctx); err != nil {
		return err
	}
	if len(c.AppIDs) > 0 {
		tc := c.tokenConfig()
		tc.Logger = d.log.With("component", "token")
		d.tokens, err = token.New(ctx, tc)
		if err != nil {
			return &problem{setting: c.where("app-id"), err: err, msg: fmt.Sprintf("cannot set up token validation: %v", err)}
		}
	}
	var keys *decrypt.KeyRing
	if len(d.sec.keys) > 0 {
		keys, err = decrypt.NewKeyRing(d.sec.keys...)
		if err != nil {
			return &problem{setting: c.where("key"), err: err, msg: err.Error()}
		}
	}
	rc := d.receiverConfig(keys)
	rc.Sink = d.metrics.timedSink(d.pub)
	if d.subs != nil {
		// The manager's first pass creates the subscriptions; Graph's
		// handshakes wait in the listener's backlog until the server runs.
		js, err := jetstream.New(d.nc)
		if err != nil {
			return fmt.Errorf("subscriptions: %w", err)
		}
		if d.mgr, err = d.newManager(ctx, js, false); err != nil {
			return err
		}
		if err := registerAll(d.metrics.reg, d.mgr.Collectors()); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		// A clientState is checked against the bucket first, then, for a
		// subscription the manager does not know, against --client-state.
		rc.ClientStateLookup = d.mgr.ClientStateLookup
		rc.Sink = d.metrics.timedSink(d.mgr.Observe(d.pub))
		d.log.Info("subscription manager started", "subscriptions", len(d.subs.specs))
	}
	if d.rcv, err = receiver.New(rc); err != nil {
		return fmt.Errorf("receiver: %w", err)
	}
	if err := d.metrics.registerStats(d.rcv, d.pub); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// Graph's view of the endpoint, from our own answers (graphhook_standing_*).
	if d.standing, err = standing.New(standing.Config{}); err != nil {
		return fmt.Errorf("standing: %w", err)
	}
	if err := d.metrics.reg.Register(d.standing); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	d.warnings()
	if d.tracing {
		d.log.Info("tracing is on: a span per batch goes to the OTLP endpoint of OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, and each NATS message carries its traceparent")
	} else {
		d.log.Info("tracing is off (set OTEL_EXPORTER_OTLP_ENDPOINT to export a span per batch)")
	}

	serveErr := make(chan error, 2)
	paths := map[string]string{c.NotificationPath: "notifications"}
	if c.LifecyclePath != c.NotificationPath {
		paths[c.LifecyclePath] = "lifecycle"
	}
	// Outermost, so that it times what Graph times, refusals included.
	d.grace = &drainer{draining: &d.draining}
	d.srv = d.newServer(d.grace.wrap(d.standing.MiddlewareByPath(paths)(d.admit(d.newApp(d.opsLn == nil)))), "http")
	d.srv.ConnState = func(c net.Conn, st http.ConnState) { d.grace.connState(c, st) }
	go func() { serveErr <- d.serve(d.srv, d.ln, d.certs) }()
	if d.opsLn != nil {
		d.opsSrv = d.newServer(d.newOpsApp(), "ops")
		go func() { serveErr <- d.serve(d.opsSrv, d.opsLn, nil) }()
	}
	d.banner()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down", "cause", context.Cause(ctx))
			break loop
		case err := <-serveErr:
			runErr = err
			d.log.Error("server stopped", "error", err)
			break loop
		case <-d.hup:
			if d.mgr != nil {
				d.reloadSubscriptions()
			}
			if d.certs == nil {
				if d.mgr == nil {
					d.log.Info("SIGHUP: nothing to reload (no --tls-cert); clientState and key changes need a restart")
				}
				continue
			}
			if d.certs.Reload() == nil {
				d.log.Info("SIGHUP: TLS certificate reloaded")
			}
		}
	}
	d.shutdown()
	return runErr
}

// listen opens the HTTP listeners, so that a busy port fails the start
// before anything else is set up.
func (d *daemon) listen() error {
	c := d.cfg
	var err error
	if d.ln, err = net.Listen("tcp", c.Listen); err != nil {
		return listenError(c.where("listen"), c.Listen, err, "--listen :8081")
	}
	d.ln = &onceCloseListener{Listener: netutil.LimitListener(d.ln, c.MaxConnections)}
	ops := c.OpsListen
	if ops == "" && !isLoopbackAddr(c.Listen) {
		// /metrics and /readyz tell a stranger about the deployment and
		// the load: with a public --listen they stay on loopback unless
		// --ops-listen says otherwise.
		ops = defaultOpsListen
		if _, port, _ := net.SplitHostPort(c.Listen); port == "0" {
			ops = "127.0.0.1:0"
		}
		d.opsAuto = true
	}
	if ops != "" {
		if d.opsLn, err = net.Listen("tcp", ops); err != nil {
			if d.opsAuto {
				return listenError(c.where("ops-listen"), ops, err, "--ops-listen 127.0.0.1:9092; --listen is not a loopback address, so /healthz, /readyz and /metrics go to "+defaultOpsListen+" unless --ops-listen names another address")
			}
			return listenError(c.where("ops-listen"), ops, err, "--ops-listen 127.0.0.1:9091")
		}
	}
	return nil
}

// defaultOpsListen is where the operations endpoints go when --listen is
// not a loopback address and --ops-listen is empty.
const defaultOpsListen = "127.0.0.1:9091"

// isLoopbackAddr reports whether the host of addr (host:port) is
// localhost or a loopback IP address; an empty host means every address.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// listenError is the one-line problem for an address that cannot be used.
func listenError(setting, addr string, err error, example string) error {
	reason := err
	if errors.Is(err, syscall.EADDRINUSE) {
		reason = errors.New("address already in use")
	} else if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
		reason = oe.Err
		if se, ok := errors.AsType[*os.SyscallError](oe.Err); ok {
			reason = se.Err
		}
	}
	return &problem{setting: setting, err: err,
		msg: fmt.Sprintf("cannot listen on %s: %v (example: %s)", addr, reason, example)}
}

// startEmbeddedNATS starts the in-process NATS server with JetStream.
func (d *daemon) startEmbeddedNATS() error {
	c := d.cfg
	host, portStr, _ := net.SplitHostPort(c.EmbeddedNATSListen) // checked by validate
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = -1 // a free port
	}
	serverLog := d.log.With("component", "nats-server")
	if level, _ := parseLevel(c.LogLevel); level > slog.LevelDebug {
		// The server's start-up notices are many; show them with debug only.
		serverLog = slog.New(minLevelHandler{Handler: serverLog.Handler(), min: slog.LevelWarn})
	}
	storeDir := c.DataDir // nats-server keeps JetStream in <data-dir>/jetstream
	// Room for the largest item and its headers, and never below the
	// natspub default; validate keeps it within nats-server's limits.
	maxPayload := max(int32(natspub.DefaultServerMaxPayload), int32(c.MaxBodyBytes+natsHeaderRoom))
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: storeDir, Host: host, Port: port, MaxPayload: maxPayload, Token: d.sec.natsToken, Logger: serverLog})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &problem{setting: c.where("embedded-nats-listen"), err: err,
				msg: fmt.Sprintf("cannot listen on %s: address already in use; is another NATS server running? (example: --embedded-nats-listen 127.0.0.1:4223, or use that server with --nats-url nats://%s)", c.EmbeddedNATSListen, c.EmbeddedNATSListen)}
		}
		return &problem{setting: c.where("data-dir"), err: err,
			msg: fmt.Sprintf("cannot start the embedded NATS server with its store in %s: %v (example: --data-dir /var/lib/graphhook)", storeDir, err)}
	}
	d.ns = ns
	return nil
}

// connect connects to NATS and sets up the streams.
func (d *daemon) connect(ctx context.Context) error {
	c := d.cfg
	urls := c.NATSURLs
	if d.ns != nil {
		urls = []string{d.ns.ClientURL()}
	}
	if err := d.dialNATS(ctx, urls, natsConnectTimeout, "graphhook-receiver"); err != nil {
		return err
	}
	nc := d.nc
	if mp := nc.MaxPayload(); mp > 0 && c.MaxBodyBytes+natsHeaderRoom > mp {
		fit := (mp - natsHeaderRoom) &^ (1<<10 - 1)
		hint := "lower --max-body-bytes"
		if fit > 0 {
			hint = fmt.Sprintf("lower it (example: --max-body-bytes %s)", formatBytes(fit))
		}
		return &problem{setting: c.where("max-body-bytes"),
			msg: fmt.Sprintf("%s plus %s for headers is more than the NATS server's max_payload of %s, so a notification that large could never be published; raise max_payload on the server (example: max_payload: %s in its configuration file) or %s",
				formatBytes(c.MaxBodyBytes), formatBytes(natsHeaderRoom), formatBytes(mp), natsSize(c.MaxBodyBytes+natsHeaderRoom), hint)}
	}
	pc := c.natspubConfig()
	pc.Conn, pc.Logger, pc.TracerProvider = nc, d.log.With("component", "natspub"), d.tp
	var err error
	if d.pub, err = natspub.New(ctx, pc); err != nil {
		return &problem{setting: c.where("stream"), err: err, msg: fmt.Sprintf("cannot set up the streams: %v", err)}
	}
	return nil
}

// dialNATS connects d.nc to urls (with the embedded server's token when
// --nats-url is empty) and waits up to timeout for the connection.
func (d *daemon) dialNATS(ctx context.Context, urls []string, timeout time.Duration, name string) error {
	c := d.cfg
	token := c.NATSToken
	if len(c.NATSURLs) == 0 {
		token = d.sec.natsToken
	}
	cc := natsConnConfig{
		URLs:         urls,
		CredsFile:    c.NATSCreds,
		NKeySeedFile: c.NATSNKey,
		User:         c.NATSUser,
		Password:     c.NATSPassword,
		Token:        token,
		TLSCAFile:    c.NATSTLSCA,
		TLSCertFile:  c.NATSTLSCert,
		TLSKeyFile:   c.NATSTLSKey,
		Name:         name,
		Logger:       d.log.With("component", "nats"),
	}
	if d.ns != nil {
		cc.InProcess = d.ns // the embedded server: no loopback TCP per publish
	}
	nc, err := connectNATS(cc)
	if err != nil {
		return &problem{setting: c.where("nats-url"), err: err, msg: fmt.Sprintf("cannot connect: %v", err)}
	}
	d.nc = nc
	// Connect returns a connection that keeps trying; wait a while for it.
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	if !nc.IsConnected() {
		d.log.Info("waiting for NATS", "url", redactURLs(urls), "timeout", timeout)
	}
	for !nc.IsConnected() {
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &problem{setting: c.where("nats-url"), err: nats.ErrNoServers,
				msg: fmt.Sprintf("no NATS server reachable at %s after %v (example: --nats-url nats://127.0.0.1:4222, or leave it empty for the embedded server)", strings.Join(urls, ","), timeout)}
		case <-tick.C:
		}
	}
	return nil
}

// receiverConfig returns the receiver's configuration (without Sink) from
// the settings and the secrets read at start.
func (d *daemon) receiverConfig(keys *decrypt.KeyRing) receiver.Config {
	c := d.cfg
	rc := receiver.Config{
		ClientStates:                d.sec.clientStates,
		InsecureSkipClientState:     c.InsecureSkipClientState,
		InsecureSkipTokenValidation: c.InsecureSkipTokenValidation,
		MaxBodyBytes:                c.MaxBodyBytes,
		Timeout:                     c.BatchTimeout,
		Logger:                      slog.New(infoAsDebug{d.log.Handler()}).With("component", "receiver"),
		TracerProvider:              d.tp,
	}
	if keys != nil {
		rc.Keys = keys
	}
	if d.tokens != nil {
		rc.Tokens = d.tokens
	}
	return rc
}

// natspubConfig returns the publisher's configuration (without Conn and
// Logger) from the settings.
func (c *config) natspubConfig() natspub.Config {
	return natspub.Config{
		SubjectPrefix:      c.SubjectPrefix,
		Stream:             c.Stream,
		Replicas:           c.StreamReplicas,
		MaxAge:             c.StreamMaxAge,
		DuplicateWindow:    c.DuplicateWindow,
		QuarantineStream:   c.QuarantineStream,
		QuarantineReplicas: c.QuarantineReplicas,
		QuarantineMaxAge:   c.QuarantineMaxAge,
		QuarantineMaxBytes: c.QuarantineMaxBytes,
		UnverifiedStream:   c.UnverifiedStream,
		UnverifiedMaxAge:   c.UnverifiedMaxAge,
		UnverifiedMaxBytes: c.UnverifiedMaxBytes,
		PublishTimeout:     c.PublishTimeout,
	}
}

// natsSize writes a max_payload of at least n in nats-server's
// configuration syntax, rounded up to whole megabytes.
func natsSize(n int64) string {
	return strconv.FormatInt((n+1<<20-1)>>20, 10) + "MB"
}

// warnings logs configurations that work but deserve attention.
func (d *daemon) warnings() {
	c := d.cfg
	if c.InsecureSkipClientState {
		d.log.Warn("clientState checks are OFF (--insecure-skip-client-state): anyone who knows the URL can inject notifications")
	}
	if c.InsecureSkipTokenValidation {
		d.log.Warn("token validation is OFF (--insecure-skip-token-validation): rich notifications are trusted on clientState alone")
	}
	if len(c.AppIDs) > 0 && len(d.sec.keys) == 0 {
		d.log.Warn("--app-id is set but no --key: rich notifications will be rejected as undecryptable")
	}
	for _, s := range d.sec.clientStates {
		if len(s) < 16 {
			d.log.Warn("a configured clientState is shorter than 16 characters; use a long random value", "length", len(s))
		}
	}
	for _, k := range d.sec.keys {
		if k.Certificate == nil {
			d.log.Info("decryption key loaded", "key", k)
			continue
		}
		d.log.Info("decryption key loaded", "key", k, "not_after", k.Certificate.NotAfter)
		if left := time.Until(k.Certificate.NotAfter); left < 30*24*time.Hour {
			d.log.Warn("decryption key certificate expires soon; rotate it (receiver keygen, then a second --key)", "key", k, "not_after", k.Certificate.NotAfter)
		}
	}
	if d.opsAuto {
		d.log.Info("operations endpoints (/healthz, /readyz, /metrics, /status) are served on loopback only, since --listen is not a loopback address and --ops-listen is empty; set --ops-listen to expose them elsewhere",
			"ops_listen", d.opsLn.Addr().String(), "listen", c.Listen)
	}
	if d.ns != nil && c.EmbeddedNATSListen != "" {
		if host, _, _ := net.SplitHostPort(c.EmbeddedNATSListen); host == "" || !net.ParseIP(host).IsLoopback() && host != "localhost" {
			d.log.Warn("the embedded NATS server listens beyond loopback without TLS: its token and the events cross the network in clear", "listen", c.EmbeddedNATSListen)
		}
	}
}

// newServer returns an http.Server with production timeouts.
func (d *daemon) newServer(h http.Handler, name string) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.log.With("component", name).Handler(), slog.LevelInfo),
	}
}

// serve runs srv on ln until Shutdown; it returns nil after a shutdown.
func (d *daemon) serve(srv *http.Server, ln net.Listener, certs *certReloader) error {
	var err error
	if certs != nil {
		srv.TLSConfig = certs.TLSConfig()
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops in order: stop accepting and let in-flight requests (and
// their publishes) finish, within --shutdown-timeout; close the publisher;
// drain the NATS connection; stop the embedded server last.
func (d *daemon) shutdown() {
	c := d.cfg
	d.draining.Store(true)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if d.srv != nil {
		// No new connections (a client is refused, not cut), and answers
		// from now on say Connection: close: a client learns at its next
		// answer that its connection ends, so that Shutdown finds no idle
		// keep-alive connection a request may be arriving on.
		_ = d.ln.Close()
		d.grace.wait(min(drainGrace, c.ShutdownTimeout/2))
		d.srv.SetKeepAlivesEnabled(false)
		if err := d.srv.Shutdown(ctx); err != nil {
			d.log.Warn("requests still running at --shutdown-timeout were cut; Graph redelivers them", "timeout", c.ShutdownTimeout, "error", err)
			_ = d.srv.Close()
		}
	}
	if d.opsSrv != nil {
		if err := d.opsSrv.Shutdown(ctx); err != nil {
			_ = d.opsSrv.Close()
		}
	}
	d.log.Info("HTTP server stopped", "duration", time.Since(start))
	d.close()
	d.log.Info("shutdown complete", "duration", time.Since(start))
}

// close releases the NATS side in order; it is safe after a failed start
// and a second call does nothing. It leaves the fields set: handlers cut
// by a timed-out shutdown may still be running and read them (/readyz
// then reports the closed publisher).
func (d *daemon) close() {
	if d.closed {
		return
	}
	d.closed = true
	if d.mgr != nil {
		_ = d.mgr.Close() // releases the lease at once, before the connection goes
	}
	if d.pub != nil {
		_ = d.pub.Close()
	}
	if d.tokens != nil {
		_ = d.tokens.Close()
	}
	if d.nc != nil {
		d.drain(d.nc)
	}
	if d.ns != nil {
		d.ns.Shutdown()
		d.ns.WaitForShutdown()
		d.log.Info("embedded NATS server stopped")
	}
	for _, ln := range []net.Listener{d.ln, d.opsLn} {
		if ln != nil {
			_ = ln.Close() // a no-op after the server closed it
		}
	}
}

// drain drains nc and waits until it is closed, so that every pending
// acknowledgement and flush has happened before the server goes away.
func (d *daemon) drain(nc *nats.Conn) {
	closed := make(chan struct{})
	prev := nc.Opts.ClosedCB
	nc.SetClosedHandler(func(nc *nats.Conn) {
		if prev != nil {
			prev(nc)
		}
		close(closed)
	})
	if nc.IsClosed() {
		return
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	timeout := max(d.cfg.ShutdownTimeout, minDrainTimeout)
	select {
	case <-closed:
		d.log.Info("NATS connection drained")
	case <-time.After(timeout):
		d.log.Warn("NATS drain did not finish; closing", "timeout", timeout)
		nc.Close()
	}
}

// registerAll registers every collector of cs.
func registerAll(reg *prometheus.Registry, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// minLevelHandler drops records below min.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}
