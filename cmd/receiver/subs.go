package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/status"
	"github.com/graphhook/graphhook/subscriptions"
)

// subsSection is the "subscriptions:" section of the config file: the
// Graph credentials of the subscription manager and the subscriptions it
// keeps alive. Its keys are Graph's camelCase names. Secrets come from
// files or the environment, never from the file itself.
type subsSection struct {
	// TenantID and ClientID are the directory (tenant) and application
	// (client) ids the manager signs in with.
	TenantID string `koanf:"tenantId"`
	ClientID string `koanf:"clientId"`
	// Credential is client-secret, client-certificate, managed-identity or
	// workload-identity. Default: from the fields given (see
	// subscriptions.CredentialConfig.Kind).
	Credential string `koanf:"credential"`
	// ClientSecretFile holds the client secret (or GRAPHHOOK_GRAPH_CLIENT_SECRET).
	ClientSecretFile string `koanf:"clientSecretFile"`
	// CertificateFile is a PEM or PKCS#12 file with the app's certificate
	// and key; CertificatePasswordFile (or
	// GRAPHHOOK_GRAPH_CERTIFICATE_PASSWORD) decrypts a PKCS#12 one.
	CertificateFile         string `koanf:"certificateFile"`
	CertificatePasswordFile string `koanf:"certificatePasswordFile"`
	// TokenFile is workload identity's federated token file. Default
	// AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string `koanf:"tokenFile"`
	// Cloud is global, usgov, usgovdod or china. Default global.
	Cloud string `koanf:"cloud"`
	// AuthorityHost and GraphURL override the cloud's Entra ID authority
	// and Graph v1.0 URL (graphsim: its https URL, and that plus /v1.0).
	AuthorityHost string `koanf:"authorityHost"`
	GraphURL      string `koanf:"graphUrl"`
	// CAFile is a PEM file of roots trusted, in addition to the system's,
	// for the authority and Graph (graphsim's CA).
	CAFile string `koanf:"caFile"`
	// LeaseTTL is how long the replicas are without a renewer after the
	// holder dies. Default 30s.
	LeaseTTL time.Duration `koanf:"leaseTtl"`
	// MinBackoff and MaxBackoff bound the wait after a failed Graph call
	// (subscriptions.Policy); it never ends before Graph's Retry-After.
	// Defaults 30s and 15m.
	MinBackoff time.Duration `koanf:"minBackoff"`
	MaxBackoff time.Duration `koanf:"maxBackoff"`
	// Desired are the subscriptions to keep alive.
	Desired []subsSpec `koanf:"desired"`
}

// subsSpec is one desired subscription (subscriptions.Spec).
type subsSpec struct {
	Resource                 string        `koanf:"resource"`
	ChangeType               string        `koanf:"changeType"`
	NotificationURL          string        `koanf:"notificationUrl"`
	LifecycleNotificationURL string        `koanf:"lifecycleNotificationUrl"`
	IncludeResourceData      bool          `koanf:"includeResourceData"`
	ClientState              string        `koanf:"clientState"`
	ClientStateFile          string        `koanf:"clientStateFile"`
	MaxLifetime              time.Duration `koanf:"maxLifetime"`
}

// subsDecodeText describes why the subscriptions section cannot be read:
// the keys involved, never a value (a clientState may be among them).
func subsDecodeText(err error) string {
	var keys []string
	var walk func(error)
	walk = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			keys = append(keys, strings.TrimSuffix("subscriptions."+de.Name(), "."))
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e := errors.Unwrap(err); e != nil {
			walk(e)
		}
	}
	walk(err)
	return fmt.Sprintf("%s: wrong kind of value (want a duration such as 48h, true or false, one text value, or for desired a list of subscriptions; example: see \"Keeping subscriptions alive\" in the README)", strings.Join(keys, ", "))
}

// subsEnvSecret and subsEnvPassword carry the section's secrets when no
// file is named.
const (
	subsEnvSecret   = envPrefix + "GRAPH_CLIENT_SECRET"
	subsEnvPassword = envPrefix + "GRAPH_CERTIFICATE_PASSWORD"
)

// subsKeys maps a subscriptions.ConfigError field (after its index) to the
// section key the user wrote and an example of a right value.
var subsKeys = map[string][2]string{
	"Resource":                   {"resource", "resource: users/42/messages"},
	"ChangeType":                 {"changeType", "changeType: created,updated"},
	"NotificationURL":            {"notificationUrl", "notificationUrl: https://hooks.example.com/notifications"},
	"LifecycleNotificationURL":   {"lifecycleNotificationUrl", "lifecycleNotificationUrl: https://hooks.example.com/lifecycle"},
	"ClientState":                {"clientStateFile", "clientStateFile: /run/secrets/graph-client-state"},
	"MaxLifetime":                {"maxLifetime", "maxLifetime: 48h"},
	"Credential.TenantID":        {"tenantId", "tenantId: " + exampleGUID},
	"Credential.ClientID":        {"clientId", "clientId: " + exampleGUID},
	"Credential.ClientSecret":    {"clientSecretFile", "clientSecretFile: /run/secrets/graph-client-secret, or " + subsEnvSecret},
	"Credential.Certificate":     {"certificateFile", "certificateFile: /etc/graphhook/graph-app.pem"},
	"Credential.CertificateFile": {"certificateFile", "certificateFile: /etc/graphhook/graph-app.pem"},
	"Credential.TokenFile":       {"tokenFile", "tokenFile: /var/run/secrets/azure/tokens/azure-identity-token"},
	"Credential.Kind":            {"credential", "credential: client-certificate"},
	"Cloud":                      {"cloud", "cloud: usgov"},
	"BaseURL":                    {"graphUrl", "graphUrl: https://graph.microsoft.com/v1.0"},
	"LeaseTTL":                   {"leaseTtl", "leaseTtl: 30s"},
}

// subsProblem adds err, from the subscriptions package, under the key
// of the section (or the daemon setting) it names.
func (c *config) subsProblem(ps *problems, err error) {
	e, ok := errors.AsType[*subscriptions.ConfigError](err)
	if !ok {
		ps.add(c.where("subscriptions"), err, fmt.Sprintf("%v (example: see \"Keeping subscriptions alive\" in the README)", err))
		return
	}
	if e.Field == "Key" {
		ps.add(c.where("key"), err, fmt.Sprintf("rich subscriptions (includeResourceData: true) need a --key with its certificate (they use the one whose certificate is newest): %v (example: %s)", e.Err, exampleKeygen))
		return
	}
	field, prefix := e.Field, "subscriptions."
	if rest, ok := strings.CutPrefix(field, "Subscriptions["); ok {
		i, f, _ := strings.Cut(rest, "].")
		field, prefix = f, "subscriptions.desired["+i+"]."
	}
	key, ok := subsKeys[field]
	if !ok {
		key = [2]string{field, "see \"Keeping subscriptions alive\" in the README"}
	}
	ps.add(c.ConfigFile+": "+prefix+key[0], err, fmt.Sprintf("%v (example: %s)", e.Err, key[1]))
}

// subsSetup is the subscriptions section once its files are read.
type subsSetup struct {
	client *subscriptions.Client
	specs  []subscriptions.Spec
	key    *decrypt.Key // the newest --key, for rich subscriptions
}

// loadSubs reads the section's secret files and builds the Graph client.
// It does not call Graph. keys are the receiver's keys, in --key order.
func (c *config) loadSubs(lookupEnv func(string) (string, bool), keys []decrypt.Key) (*subsSetup, problems) {
	var ps problems
	s := c.Subscriptions
	where := func(key string) string { return c.ConfigFile + ": subscriptions." + key }
	readSecret := func(key, file, env, example string) string {
		if file == "" {
			v, _ := lookupEnv(env)
			return v
		}
		b, err := readSmallFile(file, maxSecretFileSize)
		if err != nil {
			ps.add(where(key), err, fmt.Sprintf("cannot read %s: %v (example: %s)", file, pathError(err), example))
		}
		return strings.TrimSpace(string(b))
	}
	cloud, err := subscriptions.ParseCloud(s.Cloud)
	if err != nil {
		ps.add(where("cloud"), err, fmt.Sprintf("%q is not global, usgov, usgovdod or china (example: cloud: usgov)", s.Cloud))
	}
	cc := subscriptions.CredentialConfig{
		Kind: s.Credential, TenantID: s.TenantID, ClientID: s.ClientID,
		ClientSecret:        readSecret("clientSecretFile", s.ClientSecretFile, subsEnvSecret, "clientSecretFile: /run/secrets/graph-client-secret"),
		CertificateFile:     s.CertificateFile,
		CertificatePassword: readSecret("certificatePasswordFile", s.CertificatePasswordFile, subsEnvPassword, "certificatePasswordFile: /run/secrets/graph-app-pfx-password"),
		TokenFile:           s.TokenFile, Cloud: cloud, AuthorityHost: s.AuthorityHost,
	}
	var hc *http.Client
	if s.CAFile != "" {
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(s.CAFile)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			ps.add(where("caFile"), err, fmt.Sprintf("%s holds no PEM certificate (example: caFile: /etc/graphhook/graphsim-ca.pem)", s.CAFile))
		}
		hc = &http.Client{Timeout: subscriptions.DefaultTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		cc.Transport = hc
	}
	setup := &subsSetup{}
	// Rich subscriptions use the key whose certificate is newest; with
	// equal dates, the first listed.
	for _, k := range keys {
		if k.Certificate != nil && (setup.key == nil || k.Certificate.NotBefore.After(setup.key.Certificate.NotBefore)) {
			setup.key = &k
		}
	}
	for i, d := range s.Desired {
		state := d.ClientState
		if d.ClientStateFile != "" {
			state = readSecret(fmt.Sprintf("desired[%d].clientStateFile", i), d.ClientStateFile, "", "clientStateFile: /run/secrets/graph-client-state")
		}
		setup.specs = append(setup.specs, subscriptions.Spec{
			Resource: d.Resource, ChangeType: d.ChangeType, NotificationURL: d.NotificationURL,
			LifecycleNotificationURL: d.LifecycleNotificationURL, IncludeResourceData: d.IncludeResourceData,
			ClientState: state, MaxLifetime: d.MaxLifetime,
		})
	}
	if len(ps) > 0 {
		return nil, ps
	}
	cred, err := subscriptions.NewCredential(cc)
	if err != nil {
		c.subsProblem(&ps, err)
		return nil, ps
	}
	if setup.client, err = subscriptions.NewClient(subscriptions.ClientConfig{Credential: cred, Cloud: cloud, BaseURL: s.GraphURL, HTTPClient: hc}); err != nil {
		c.subsProblem(&ps, err)
		return nil, ps
	}
	return setup, nil
}

// newManager starts the subscription manager on js. The CLI's runs no
// loop and consumes no lifecycle events (cli).
func (d *daemon) newManager(ctx context.Context, js jetstream.JetStream, cli bool) (*subscriptions.Manager, error) {
	c := d.cfg
	mc := subscriptions.Config{
		Client: d.subs.client, JetStream: js, Subscriptions: d.subs.specs, TenantID: c.Subscriptions.TenantID,
		Key: d.subs.key, SubjectPrefix: c.SubjectPrefix, GraphStream: c.Stream, LeaseTTL: c.Subscriptions.LeaseTTL,
		Policy:   subscriptions.Policy{MinBackoff: c.Subscriptions.MinBackoff, MaxBackoff: c.Subscriptions.MaxBackoff},
		Replicas: c.StreamReplicas, // the bucket and event stream follow --stream-replicas when created
		Logger:   d.log.With("component", "subscriptions"),
	}
	if cli {
		mc.Interval, mc.GraphStream = -1, "-"
	}
	mgr, err := subscriptions.New(ctx, mc)
	if err != nil {
		var ps problems
		c.subsProblem(&ps, err)
		return nil, ps.err()
	}
	return mgr, nil
}

// Bounds of the status page's read of the event stream.
const (
	statusMaxEvents    = 500
	statusConsumerIdle = 5 * time.Second
)

// subscriptionStatus returns the manager's subscriptions for /status:
// the bucket's records, with the latest event of each action and the
// latest gap, read from the event stream.
func (d *daemon) subscriptionStatus(ctx context.Context, js jetstream.JetStream) []status.Subscription {
	prefix := d.cfg.SubjectPrefix
	events, gaps := map[string][]status.Event{}, map[string][]status.Gap{}
	// One short-lived consumer per page: the latest message of each
	// subject, that is the latest event of each action and the latest gap.
	var batch jetstream.MessageBatch
	cons, err := js.OrderedConsumer(ctx, subscriptions.DefaultEventStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{prefix + ".subscriptions.>", prefix + ".gaps.>"},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: statusConsumerIdle,
	})
	if err == nil {
		batch, err = cons.FetchNoWait(statusMaxEvents)
	}
	if err == nil {
		for m := range batch.Messages() {
			if strings.HasPrefix(m.Subject(), prefix+".gaps.") {
				var g subscriptions.Gap
				if json.Unmarshal(m.Data(), &g) == nil {
					gaps[g.SubscriptionID] = append(gaps[g.SubscriptionID], status.Gap{Start: g.Start, End: g.End, Reason: g.Reason})
				}
				continue
			}
			var e subscriptions.Event
			if json.Unmarshal(m.Data(), &e) == nil {
				kind := e.Action + " " + e.Outcome
				if e.Trigger != "" {
					kind += " (" + e.Trigger + ")"
				}
				events[e.SubscriptionID] = append(events[e.SubscriptionID], status.Event{At: e.Time, Kind: kind})
			}
		}
	}
	var out []status.Subscription
	for _, r := range d.mgr.Records() {
		s := status.Subscription{ID: r.ID, Resource: r.Resource, ChangeTypes: strings.Split(r.ChangeType, ","),
			ExpiresAt: r.Expiration, LastNotification: r.LastNotification, LastRenewal: r.LastRenewal,
			LastOutcome: r.LastOutcome, Events: events[r.ID], Gaps: gaps[r.ID]}
		if !r.GapStart.IsZero() {
			s.Gaps = append(s.Gaps, status.Gap{Start: r.GapStart, Reason: r.GapReason})
		}
		slices.SortFunc(s.Events, func(a, b status.Event) int { return b.At.Compare(a.At) })
		out = append(out, s)
	}
	return out
}

// reloadSubscriptions reads the configuration again and gives the
// manager the desired subscriptions it now lists (SIGHUP). Credentials,
// keys and the other settings need a restart; a bad section keeps the
// previous subscriptions.
func (d *daemon) reloadSubscriptions() {
	c, err := loadConfig(d.args, d.lookupEnv)
	var ps problems
	switch {
	case err != nil:
	case c.Subscriptions == nil:
		err = errors.New("the configuration has no subscriptions section any more; restart to stop the subscription manager")
	default:
		var setup *subsSetup
		if setup, ps = c.loadSubs(d.lookupEnv, d.sec.keys); len(ps) == 0 {
			if err = d.mgr.SetSubscriptions(setup.specs); err != nil {
				c.subsProblem(&ps, err)
			} else {
				d.log.Info("SIGHUP: subscriptions reloaded", "subscriptions", len(setup.specs))
				return
			}
		}
		err = ps.err()
	}
	d.log.Warn("SIGHUP: subscriptions not reloaded; the manager keeps the previous ones", "error", err.Error())
}
