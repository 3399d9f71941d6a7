package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/graphhook/graphhook/graphsim"
)

// errUsage means the command line was wrong; usage has been printed.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const usage = `graphsim: a local Microsoft Graph change-notification simulator.

Usage:
  graphsim serve      [--listen 127.0.0.1:9090] [flags]   run the simulator
  graphsim token      [--sim URL] [--app-id ID]           print a bearer access token
  graphsim subscribe  --notification-url URL [flags]      create a subscription (with handshake)
  graphsim change     [--subscription ID] [--count N]     generate changes and deliver them
  graphsim lifecycle  --subscription ID --event E         send a lifecycle notification
  graphsim deliveries [--json]                            show delivery attempts and endpoint states
  graphsim advance    --by 30d                            move the simulated clock (expirations, lifecycle fire)
  graphsim load       --url URL [--rate N | --concurrency C] [--duration D] [--rich --cert F] [--batch B] [--json]

Commands that talk to a running simulator use --sim (default $GRAPHSIM_URL
or https://127.0.0.1:9090) and trust the CA that "graphsim serve" wrote to
--ca-file (default $GRAPHSIM_CA or graphsim-ca.pem). Run "graphsim COMMAND -h"
for a command's flags.
`

// run executes one graphsim command. It is main without the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	simURL := cmp.Or(getenv("GRAPHSIM_URL"), "https://127.0.0.1:9090")
	caFile := cmp.Or(getenv("GRAPHSIM_CA"), defaultCAFile)
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr, simURL: simURL, caFile: caFile, getenv: getenv}
	switch cmd {
	case "serve":
		return c.serve(rest)
	case "token":
		return c.token(rest)
	case "subscribe":
		return c.subscribe(rest)
	case "change":
		return c.change(rest)
	case "lifecycle":
		return c.lifecycle(rest)
	case "deliveries":
		return c.deliveries(rest)
	case "advance":
		return c.advance(rest)
	case "load":
		return c.load(rest)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "graphsim: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// defaultCAFile is where "graphsim serve" writes its CA and where the
// other commands read it.
const defaultCAFile = "graphsim-ca.pem"

type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	simURL         string
	caFile         string
	getenv         func(string) string
	client         *http.Client
}

// simFlags registers the flags of commands that talk to a running
// simulator.
func (c *cli) simFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.simURL, "sim", c.simURL, "simulator base URL")
	fs.StringVar(&c.caFile, "ca-file", c.caFile, "CA certificate (PEM) that graphsim serve wrote, trusted for https simulator URLs")
}

// httpClient returns a client that trusts the simulator's CA for https
// URLs (read from --ca-file once).
func (c *cli) httpClient(u string) (*http.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	if !strings.HasPrefix(u, "https://") {
		return http.DefaultClient, nil
	}
	pemBytes, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("read the simulator's CA: %w; pass --ca-file (or set GRAPHSIM_CA) to the file graphsim serve printed", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate; pass --ca-file to the file graphsim serve printed", c.caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.client = &http.Client{Transport: tr}
	return c.client, nil
}

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("graphsim "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// missing reports that command cmd lacks its required flag --name (with
// an example, when given) and returns errUsage.
func (c *cli) missing(cmd, name, example string) error {
	fmt.Fprintf(c.stderr, "graphsim %s: --%s is required", cmd, name)
	if example != "" {
		fmt.Fprintf(c.stderr, ", e.g. %s", example)
	}
	fmt.Fprintln(c.stderr)
	return errUsage
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has printed the error or, for -h, the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}

func (c *cli) serve(args []string) error {
	fs := c.flags("serve")
	listen := fs.String("listen", "127.0.0.1:9090", "address to listen on")
	tenant := fs.String("tenant", graphsim.DefaultTenantID, "tenant id")
	appID := fs.String("app-id", graphsim.DefaultAppID, "client app id for subscriptions created without a token")
	secret := fs.String("client-secret", "", "secret of the default app --app-id (default $GRAPHSIM_CLIENT_SECRET, else generated and written to --secret-file)")
	secretFile := fs.String("secret-file", defaultSecretFile, "where to write the generated secret of the default app (mode 0600)")
	var apps appFlag
	fs.Var(&apps, "app", "register an app CLIENT_ID:SECRET[:ROLE,ROLE...] (repeatable; default roles: every permission)")
	appsFile := fs.String("apps-file", "", "JSON list of app registrations with secrets, certificate files and roles")
	tokenVersion := fs.String("token-version", "2.0", "validationToken shape: 2.0 or 1.0")
	maxBatch := fs.Int("max-batch", graphsim.DefaultMaxBatch, "notifications per delivery POST")
	timeScale := fs.Float64("time-scale", 1, "multiplier of retry backoff, retry window and slow-endpoint delay")
	requireHTTPS := fs.Bool("require-https", false, "reject http notification URLs, as Graph does")
	tokenLifetime := fs.Duration("access-token-lifetime", graphsim.DefaultAccessTokenLifetime, "lifetime of issued access tokens (and of a subscription's authorization)")
	useTLS := fs.Bool("tls", true, "serve HTTPS with a generated CA and certificate for 127.0.0.1/localhost")
	insecureHTTP := fs.Bool("insecure-http", false, "serve plain HTTP instead of HTTPS (demos only; azidentity needs https)")
	caFile := fs.String("ca-file", c.caFile, "where to write the generated CA certificate (PEM) for clients to trust")
	stateFile := fs.String("state-file", "", "keep subscriptions in this file across restarts (mode 0600: it holds clientStates)")
	wording := fs.String("expiration-wording", "minutes", "answer to an expiration beyond the maximum: minutes or timespan (both seen from Graph)")
	lifetimes := lifetimeFlag{}
	fs.Var(lifetimes, "max-lifetime", "override a resource kind's maximum lifetime, KIND=DURATION, e.g. message=4230m (repeatable)")
	var throttle graphsim.Throttle
	fs.IntVar(&throttle.List, "throttle-list", 0, "GET /subscriptions per 20 s per app and tenant (default 40; -1 unlimited)")
	fs.IntVar(&throttle.Write, "throttle-write", 0, "POST/PATCH/DELETE per 20 s per app and tenant (default 1000; -1 unlimited)")
	var quotas graphsim.Quotas
	fs.IntVar(&quotas.PerMailbox, "quota-mailbox", 0, "Outlook subscriptions per mailbox (default 1000; -1 unlimited)")
	fs.IntVar(&quotas.DirectoryPerTenant, "quota-directory-tenant", 0, "directory subscriptions per tenant (default 1000)")
	fs.IntVar(&quotas.DirectoryPerApp, "quota-directory-app", 0, "directory subscriptions per app and tenant (default 100)")
	fs.IntVar(&quotas.TeamsPerTenant, "quota-teams", 0, "Teams subscriptions per organisation (default 10000)")
	revokedAfter := fs.Duration("revoked-remove-after", graphsim.DefaultRevokedRemoveAfter, "remove subscriptions this long after their app's consent is revoked")
	logJSON := fs.Bool("log-json", false, "log JSON instead of text")
	verbose := fs.Bool("v", false, "log every delivery attempt")
	if err := parse(fs, args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	var h slog.Handler = slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})
	if *logJSON {
		h = slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: level})
	}
	if *secret == "" {
		*secret = c.getenv("GRAPHSIM_CLIENT_SECRET") // not the flag's default: -h would print it
	}
	if *appsFile != "" {
		more, err := readAppsFile(*appsFile)
		if err != nil {
			return err
		}
		apps = append(apps, more...)
	}
	generated := *secret == "" && len(apps) == 0
	var sim *graphsim.Sim
	sim, err := graphsim.New(graphsim.Config{
		AdminHandlers: map[string]http.Handler{"POST /_sim/load": loadHandler(func() *graphsim.Sim { return sim })},
		Apps:          apps,
		TenantID:      *tenant, AppID: *appID, ClientSecret: *secret, TokenVersion: *tokenVersion,
		MaxBatch: *maxBatch, TimeScale: *timeScale, RequireHTTPS: *requireHTTPS,
		StateFile: *stateFile, ExpirationWording: *wording, MaxLifetimes: lifetimes, Throttle: throttle, Quotas: quotas,
		RevokedRemoveAfter:  *revokedAfter,
		AccessTokenLifetime: *tokenLifetime, Logger: slog.New(h),
	})
	if err != nil {
		return err
	}
	if generated {
		if err := os.WriteFile(*secretFile, []byte(sim.Config().ClientSecret+"\n"), 0o600); err != nil {
			sim.Close()
			return fmt.Errorf("write the default app's secret: %w; pass --secret-file with a writable path or --client-secret", err)
		}
	}
	var u string
	if *useTLS && !*insecureHTTP {
		caPEM, perr := sim.CACertPEM()
		if perr == nil {
			perr = os.WriteFile(*caFile, caPEM, 0o644)
		}
		if perr != nil {
			sim.Close()
			return fmt.Errorf("write the CA certificate: %w; pass --ca-file with a writable path", perr)
		}
		u, _, err = sim.StartTLS(*listen)
	} else {
		u, err = sim.Start(*listen)
	}
	if err != nil {
		sim.Close()
		return err
	}
	fmt.Fprintf(c.stdout, "graphsim listening on %s\n  graph:  %s\n  token:  %s\n  jwks:   %s\n  admin:  %s/_sim/\n",
		u, sim.GraphURL(), sim.TokenURL(""), sim.JWKSURL(), u)
	if strings.HasPrefix(u, "https://") {
		abs, _ := filepath.Abs(*caFile)
		fmt.Fprintf(c.stdout, "  ca:     %s (curl --cacert %s; GRAPHSIM_CA=%s for graphsim commands)\n", abs, abs, abs)
	}
	for _, a := range sim.Config().Apps {
		fmt.Fprintf(c.stdout, "  app:    %s, %d permissions\n", a, len(a.Roles))
	}
	if generated {
		abs, _ := filepath.Abs(*secretFile)
		fmt.Fprintf(c.stdout, "  secret: of app %s, in %s (GRAPHSIM_CLIENT_SECRET for graphsim commands)\n", *appID, abs)
	}
	<-c.ctx.Done()
	fmt.Fprintln(c.stdout, "graphsim: shutting down")
	return sim.Close()
}

// accessToken gets a token from the simulator's token endpoint.
func (c *cli) accessToken(appID, secret string) (string, error) {
	if secret == "" {
		secret = c.getenv("GRAPHSIM_CLIENT_SECRET")
	}
	if secret == "" {
		b, err := os.ReadFile(defaultSecretFile)
		if err != nil {
			return "", errors.New("no client secret: pass --client-secret, set GRAPHSIM_CLIENT_SECRET, or run from the directory where graphsim serve wrote " + defaultSecretFile)
		}
		secret = strings.TrimSpace(string(b))
	}
	resp, err := c.do(c.ctx, "POST", c.simURL+"/common/oauth2/v2.0/token", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret},
			"scope": {"https://graph.microsoft.com/.default"}}.Encode()), "")
	if err != nil {
		return "", err
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(resp, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: no access_token in answer")
	}
	return tr.AccessToken, nil
}

func (c *cli) token(args []string) error {
	fs := c.flags("token")
	c.simFlags(fs)
	appID := fs.String("app-id", graphsim.DefaultAppID, "client id")
	secret := fs.String("client-secret", "", "client secret (default $GRAPHSIM_CLIENT_SECRET or the file graphsim serve wrote)")
	if err := parse(fs, args); err != nil {
		return err
	}
	tok, err := c.accessToken(*appID, *secret)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, tok)
	return nil
}

func (c *cli) subscribe(args []string) error {
	fs := c.flags("subscribe")
	c.simFlags(fs)
	appID := fs.String("app-id", graphsim.DefaultAppID, "client id the subscription belongs to")
	secret := fs.String("client-secret", "", "client secret (default $GRAPHSIM_CLIENT_SECRET or the file graphsim serve wrote)")
	var req graphsim.SubscriptionRequest
	fs.StringVar(&req.NotificationURL, "notification-url", "", "receiver URL (required)")
	fs.StringVar(&req.LifecycleNotificationURL, "lifecycle-url", "", "lifecycle notification URL")
	fs.StringVar(&req.Resource, "resource", "users/alex@contoso.com/mailFolders('Inbox')/messages", "resource to watch (me/... needs a delegated token, which graphsim does not issue)")
	fs.StringVar(&req.ChangeType, "change-type", "created,updated,deleted", "comma list of changeTypes")
	fs.StringVar(&req.ClientState, "client-state", "", "clientState (default $GRAPH_CLIENT_STATE)")
	fs.StringVar(&req.NotificationURLAppID, "notification-url-app-id", "", "app id validationTokens are issued for")
	expires := fs.Duration("expires", time.Hour, "lifetime of the subscription")
	certFile := fs.String("cert", "", "certificate for rich notifications: PEM file or base64 DER file")
	fs.StringVar(&req.EncryptionCertificateID, "cert-id", "graphsim", "encryptionCertificateId")
	if err := parse(fs, args); err != nil {
		return err
	}
	if req.NotificationURL == "" {
		return c.missing("subscribe", "notification-url", "")
	}
	req.ClientState = cmp.Or(req.ClientState, c.getenv("GRAPH_CLIENT_STATE"))
	req.ExpirationDateTime = time.Now().Add(*expires)
	if *certFile != "" {
		cert, err := readCertificate(*certFile)
		if err != nil {
			return err
		}
		req.IncludeResourceData, req.EncryptionCertificate = true, cert
	}
	tok, err := c.accessToken(*appID, *secret)
	if err != nil {
		return err
	}
	out, err := c.postJSON(c.ctx, c.simURL+"/v1.0/subscriptions", req, tok)
	if err != nil {
		return err
	}
	return writeIndented(c.stdout, out)
}

func (c *cli) change(args []string) error {
	fs := c.flags("change")
	c.simFlags(fs)
	var req graphsim.ChangeRequest
	fs.StringVar(&req.SubscriptionID, "subscription", "", "only this subscription")
	fs.StringVar(&req.Resource, "resource", "", "only subscriptions on (or containing) this resource")
	fs.StringVar(&req.ChangeType, "change-type", "created", "created, updated or deleted")
	fs.IntVar(&req.Count, "count", 1, "changes per matching subscription")
	content := fs.String("content", "", "resource JSON for rich notifications (inline, or @file)")
	wait := fs.Duration("wait", 0, "wait up to this long for the deliveries to finish")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *content != "" {
		b := []byte(*content)
		if name, ok := strings.CutPrefix(*content, "@"); ok {
			var err error
			if b, err = os.ReadFile(name); err != nil {
				return err
			}
		}
		req.Content = b
	}
	out, err := c.postJSON(c.ctx, c.simURL+"/_sim/changes", req, "")
	if err != nil {
		return err
	}
	var rep graphsim.ChangeReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return fmt.Errorf("change: bad answer: %w", err)
	}
	if len(rep.Subscriptions) == 0 {
		if !rep.Persistent {
			return errors.New("no subscription matched: graphsim keeps subscriptions in memory; subscribe again (graphsim subscribe), or serve with --state-file to keep them across restarts")
		}
		return errors.New("no subscription matched; list them with curl $GRAPHSIM_URL/_sim/subscriptions or subscribe again")
	}
	fmt.Fprintf(c.stdout, "queued %d notifications in %d batches for %d subscriptions", rep.Notifications, rep.Batches, len(rep.Subscriptions))
	if rep.Paused > 0 {
		fmt.Fprintf(c.stdout, " (%d lost: subscription needs reauthorization)", rep.Paused)
	}
	fmt.Fprintln(c.stdout)
	if *wait > 0 {
		if _, err := c.do(c.ctx, "POST", c.simURL+"/_sim/wait?timeout="+wait.String(), "", nil, ""); err != nil {
			return err
		}
		return c.printDeliveries(false, rep.Deliveries)
	}
	return nil
}

func (c *cli) lifecycle(args []string) error {
	fs := c.flags("lifecycle")
	c.simFlags(fs)
	var req graphsim.LifecycleRequest
	fs.StringVar(&req.SubscriptionID, "subscription", "", "subscription id (required)")
	fs.StringVar(&req.Event, "event", graphsim.EventReauthorizationRequired, "subscriptionRemoved, reauthorizationRequired or missed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if req.SubscriptionID == "" {
		return c.missing("lifecycle", "subscription", "")
	}
	if _, err := c.postJSON(c.ctx, c.simURL+"/_sim/lifecycle", req, ""); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "queued %s for %s\n", req.Event, req.SubscriptionID)
	return nil
}

func (c *cli) advance(args []string) error {
	fs := c.flags("advance")
	c.simFlags(fs)
	by := fs.String("by", "", "how far: a duration (90m, 36h) or days (30d) (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *by == "" {
		return c.missing("advance", "by", "--by 30d")
	}
	out, err := c.postJSON(c.ctx, c.simURL+"/_sim/advance", graphsim.AdvanceRequest{By: *by}, "")
	if err != nil {
		return err
	}
	var rep graphsim.ClockReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return fmt.Errorf("advance: bad answer: %w", err)
	}
	fmt.Fprintf(c.stdout, "simulated time is now %s\n", graphsim.FormatDateTime(rep.Now))
	return nil
}

func (c *cli) deliveries(args []string) error {
	fs := c.flags("deliveries")
	c.simFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.printDeliveries(*asJSON, nil)
}

// printDeliveries prints the deliveries (only those in ids, if given) and
// the endpoint states.
func (c *cli) printDeliveries(asJSON bool, ids []int64) error {
	out, err := c.do(c.ctx, "GET", c.simURL+"/_sim/deliveries", "", nil, "")
	if err != nil {
		return err
	}
	if asJSON {
		return writeIndented(c.stdout, out)
	}
	var rep graphsim.DeliveriesReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return fmt.Errorf("deliveries: bad answer: %w", err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tITEMS\tSTATE\tATTEMPTS\tLAST STATUS\tLAST LATENCY\tURL")
	for _, d := range rep.Deliveries {
		if ids != nil && !slices.Contains(ids, d.ID) {
			continue
		}
		kind := "change"
		if d.Lifecycle {
			kind = "lifecycle"
		}
		status, lat := "-", "-"
		if n := len(d.Attempts); n > 0 {
			a := d.Attempts[n-1]
			status = fmt.Sprint(a.Status)
			if a.Error != "" {
				status = a.Error
			}
			lat = a.Latency.Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", d.ID, kind, d.Items, d.State, len(d.Attempts), status, lat, d.URL)
	}
	tw.Flush()
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSTATE\tATTEMPTS\tDELIVERED\tFAILED\tDROPPED\tSLOW/WINDOW\tTIMEDOUT/WINDOW")
	for _, e := range rep.Endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d/%d\t%d/%d\n", e.URL, e.State, e.Attempts, e.Delivered, e.Failed, e.Dropped, e.Slow, e.Window, e.TimedOut, e.Window)
	}
	return tw.Flush()
}

func (c *cli) load(args []string) error {
	fs := c.flags("load")
	var cfg LoadConfig
	fs.StringVar(&cfg.URL, "url", "", "receiver notification URL (required)")
	fs.IntVar(&cfg.Rate, "rate", 0, "notifications per second (open loop); 0 = closed loop")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "workers (closed loop, default 4) or max in flight (rate mode, default 64)")
	fs.DurationVar(&cfg.Duration, "duration", DefaultLoadDuration, "how long to send")
	fs.IntVar(&cfg.Requests, "requests", 0, "stop after this many POSTs (0 = run for --duration)")
	fs.IntVar(&cfg.Batch, "batch", 1, "notifications per POST")
	fs.BoolVar(&cfg.Rich, "rich", false, "send encrypted notifications with validationTokens (needs --cert)")
	certFile := fs.String("cert", "", "receiver certificate: PEM file or base64 DER file")
	fs.StringVar(&cfg.EncryptionCertificateID, "cert-id", "graphsim", "encryptionCertificateId")
	fs.StringVar(&cfg.ClientState, "client-state", "", "clientState in every item (default $GRAPH_CLIENT_STATE)")
	fs.StringVar(&cfg.SubscriptionID, "subscription-id", "", "subscriptionId in every item (default random)")
	fs.StringVar(&cfg.TenantID, "tenant", "", "tenantId in every item")
	fs.StringVar(&cfg.AppID, "app-id", "", "aud of the validationTokens")
	fs.DurationVar(&cfg.Timeout, "timeout", graphsim.DefaultTimeout, "budget of one POST")
	sim := fs.String("sim", "", "run the load inside this simulator, so its JWKS signs the validationTokens")
	fs.StringVar(&c.caFile, "ca-file", c.caFile, "CA certificate (PEM) of an https --sim")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	metricsURL := fs.String("metrics-url", "", "the receiver's Prometheus metrics URL: report how many items it stored and rejected (202 does not say)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.URL == "" {
		return c.missing("load", "url", "")
	}
	cfg.ClientState = cmp.Or(cfg.ClientState, c.getenv("GRAPH_CLIENT_STATE"))
	if cfg.ClientState == "" {
		// A receiver answers 202 to items it quarantines (forged or unknown
		// clientState), so a run without one "succeeds" while storing nothing.
		fmt.Fprintln(c.stderr, "graphsim load: warning: no --client-state (or GRAPH_CLIENT_STATE): a receiver that checks clientState quarantines every item and still answers 202")
	}
	var before map[string]float64
	if *metricsURL != "" {
		var err error
		if before, err = scrapeOutcomes(c.ctx, http.DefaultClient, *metricsURL); err != nil {
			return err
		}
	}
	if *certFile != "" {
		cert, err := readCertificate(*certFile)
		if err != nil {
			return err
		}
		cfg.EncryptionCertificate = cert
	}
	var rep LoadReport
	if *sim != "" {
		ctx, cancel := context.WithTimeout(c.ctx, cfg.Duration+time.Minute)
		defer cancel()
		out, err := c.postJSON(ctx, strings.TrimRight(*sim, "/")+"/_sim/load", cfg, "")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			return fmt.Errorf("load: bad answer: %w", err)
		}
	} else {
		var err error
		if rep, err = Load(c.ctx, cfg); err != nil {
			return err
		}
	}
	var outcome *receiverOutcome
	if *metricsURL != "" {
		after, err := scrapeOutcomes(c.ctx, http.DefaultClient, *metricsURL)
		if err != nil {
			return err
		}
		o := diffOutcomes(before, after)
		outcome = &o
	}
	if *asJSON {
		b, _ := rep.MarshalIndent()
		if outcome != nil {
			var m map[string]any
			json.Unmarshal(b, &m)
			m["receiver"] = outcome
			b, _ = json.MarshalIndent(m, "", "  ")
		}
		_, err := fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	fmt.Fprint(c.stdout, rep.String())
	if outcome != nil {
		fmt.Fprintln(c.stdout, outcome.String())
		if outcome.Stored < float64(rep.Notifications) {
			fmt.Fprintf(c.stdout, "warning: the receiver stored %.0f of %d notifications sent; check --client-state and the receiver's log\n", outcome.Stored, rep.Notifications)
		}
	}
	return nil
}

// readCertificate reads a PEM certificate or a base64 DER file and returns
// base64 DER, the encryptionCertificate form.
func readCertificate(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
			return base64.StdEncoding.EncodeToString(blk.Bytes), nil
		}
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%s: neither a PEM certificate nor base64 DER", name)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// httpDo sends a request and returns the body of a 2xx answer; other
// answers become errors carrying Graph's error message.
// postJSON POSTs v as JSON to u and returns the answer's body; bearer,
// when set, is sent as the access token.
func (c *cli) postJSON(ctx context.Context, u string, v any, bearer string) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, "POST", u, "application/json", bytes.NewReader(body), bearer)
}

func (c *cli) do(ctx context.Context, method, u, contentType string, body io.Reader, bearer string) ([]byte, error) {
	client, err := c.httpClient(u)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, redact(u), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var ge struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			Description string `json:"error_description"`
		}
		json.Unmarshal(out, &ge)
		msg := ge.Error.Message
		if msg == "" {
			msg = ge.Description
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, redact(u), resp.Status, msg)
	}
	return out, nil
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func writeIndented(w io.Writer, b []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		_, err = w.Write(b)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// lifetimeFlag collects --max-lifetime KIND=DURATION.
type lifetimeFlag map[string]time.Duration

func (l lifetimeFlag) String() string { return fmt.Sprint(map[string]time.Duration(l)) }

func (l lifetimeFlag) Set(v string) error {
	kind, dur, ok := strings.Cut(v, "=")
	d, err := time.ParseDuration(dur)
	if !ok || kind == "" || err != nil || d <= 0 {
		return errors.New("want KIND=DURATION, e.g. message=4230m or chatMessage=60m")
	}
	l[kind] = d
	return nil
}
