package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/graphhook/graphhook/token"
)

// Examples used in messages.
const (
	exampleGUID      = "11111111-2222-3333-4444-555555555555"
	exampleKeygen    = "receiver keygen --out /etc/graphhook --id key-1"
	exampleSecretGen = "head -c 32 /dev/urandom | base64"
	exampleTokenGen  = "head -c 32 /dev/urandom | base64 | tr -d '=+/'"
)

// Body and message sizes. An accepted item is published as one NATS
// message whose body is at most the request body (a quarantine message
// holds the rejected items of one reason and the tokens once, also at most
// the request body) and whose headers (CloudEvents attributes, each value
// bounded) fit in natsHeaderRoom. nats-server refuses a max_payload above its 64 MiB
// max_pending, which bounds maxBodyLimit.
const (
	maxBodyLimit   = 32 << 20
	natsHeaderRoom = 64 << 10
)

// validate checks c without touching files or the network. Every problem is
// reported, not only the first.
func (c *config) validate() problems {
	var ps problems
	checkAddr := func(name, v string, allowEmpty bool) {
		if v == "" && allowEmpty {
			return
		}
		host, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
			ps.add(c.where(name), nil, fmt.Sprintf("%q is not host:port, with a host name or IP address (or none) and a port from 0 to 65535 (example: %s)", v, settingByName(name).exampleArg()))
		}
	}
	checkAddr("listen", c.Listen, false)
	checkAddr("ops-listen", c.OpsListen, true)
	if c.OpsListen != "" && c.OpsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		ps.add(c.where("ops-listen"), nil, fmt.Sprintf("equals --listen %q; leave it empty to serve /healthz, /readyz and /metrics on --listen (example: --ops-listen 127.0.0.1:9090)", c.Listen))
	}

	for _, path := range []struct{ name, p string }{{"notification-path", c.NotificationPath}, {"lifecycle-path", c.LifecyclePath}} {
		name, p, example := path.name, path.p, settingByName(path.name).exampleArg()
		switch {
		case !strings.HasPrefix(p, "/"):
			ps.add(c.where(name), nil, fmt.Sprintf("%q must start with / (example: %s)", p, example))
		case strings.ContainsAny(p, "?#*: \t") || strings.Contains(p, "//"):
			ps.add(c.where(name), nil, fmt.Sprintf("%q must be a plain URL path without ?, #, *, :, spaces or // (example: %s)", p, example))
		case c.OpsListen == "" && isOpsPath(p):
			ps.add(c.where(name), nil, fmt.Sprintf("%q is reserved for operations on --listen (example: %s)", p, example))
		}
	}

	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		ps.add(c.where("tls-key"), nil, "is required with --tls-cert (example: --tls-key /etc/graphhook/tls.key)")
	case c.TLSCert == "" && c.TLSKey != "":
		ps.add(c.where("tls-cert"), nil, "is required with --tls-key (example: --tls-cert /etc/graphhook/tls.crt)")
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			ps.add(c.where("trusted-proxy"), nil, fmt.Sprintf("%q is not a CIDR or IP address (example: --trusted-proxy 10.0.0.0/8)", p))
		}
	}
	if c.MaxBodyBytes > maxBodyLimit {
		ps.add(c.where("max-body-bytes"), nil, fmt.Sprintf("%s is above the largest supported body, %s: every item must fit in one NATS message (example: --max-body-bytes 8MiB)", formatBytes(c.MaxBodyBytes), formatBytes(maxBodyLimit)))
	} else if c.MaxInflightBytes < c.MaxBodyBytes {
		ps.add(c.where("max-inflight-bytes"), nil, fmt.Sprintf("%s is below --max-body-bytes %s, so a body of the largest size could never be taken (example: --max-inflight-bytes %s)", formatBytes(c.MaxInflightBytes), formatBytes(c.MaxBodyBytes), formatBytes(16*c.MaxBodyBytes)))
	}
	if c.BatchTimeout >= 3*time.Second {
		ps.add(c.where("batch-timeout"), nil, fmt.Sprintf("%v is not below Graph's 3 s delivery limit; Graph would count every slow batch as failed (example: --batch-timeout 2.5s)", c.BatchTimeout))
	}

	if c.InsecureSkipClientState && (len(c.ClientStates) > 0 || c.ClientStateFile != "") {
		ps.add(c.where("insecure-skip-client-state"), nil, "contradicts --client-state/--client-state-file; remove one of them (example: --client-state-file /run/secrets/graph-client-state)")
	}

	for _, spec := range c.Keys {
		if _, _, err := parseKeySpec(spec); err != nil {
			ps.add(c.where("key"), nil, err.Error())
		}
	}
	if c.KeyPassword != "" && c.KeyPasswordFile != "" {
		ps.add(c.where("key-password"), nil, "and --key-password-file are both set; keep one (example: --key-password-file /run/secrets/pfx-password)")
	}
	if len(c.Keys) > 0 && len(c.AppIDs) == 0 && !c.InsecureSkipTokenValidation {
		ps.add(c.where("key"), nil, fmt.Sprintf("rich notifications need token validation: set --app-id to the application id that creates the subscriptions (example: --app-id %s)", exampleGUID))
	}
	for _, ids := range []struct {
		name, what string
		ids        []string
	}{{"app-id", "an application id", c.AppIDs}, {"tenant", "a tenant id", c.Tenants}} {
		for _, id := range ids.ids {
			if !isGUID(id) {
				ps.add(c.where(ids.name), nil, fmt.Sprintf("%q is not %s GUID (example: %s)", id, ids.what, settingByName(ids.name).exampleArg()))
			}
		}
	}
	if len(c.AppIDs) > 0 || len(c.Tenants) > 0 { // token requires AppIDs: --tenant alone is reported
		ps.addLibrary(c, "token", c.tokenConfig().Validate())
	}
	if c.InsecureSkipTokenValidation && len(c.AppIDs) > 0 {
		ps.add(c.where("insecure-skip-token-validation"), nil, "contradicts --app-id, which turns token validation on; remove one of them")
	}

	for _, raw := range c.NATSURLs {
		u, err := url.Parse(raw)
		shown := redactURLs([]string{raw}) // never echo a password
		switch {
		case err != nil || u.Host == "" || u.Hostname() == "":
			ps.add(c.where("nats-url"), nil, fmt.Sprintf("%q is not a NATS URL (example: --nats-url nats://127.0.0.1:4222)", shown))
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			ps.add(c.where("nats-url"), nil, fmt.Sprintf("%q has scheme %q; want nats, tls, ws or wss (example: --nats-url nats://127.0.0.1:4222)", shown, u.Scheme))
		case u.User != nil:
			ps.add(c.where("nats-url"), nil, "carries credentials in the URL, which would show in process listings; use --nats-creds, --nats-user with GRAPHHOOK_NATS_PASSWORD, or GRAPHHOOK_NATS_TOKEN (example: --nats-url nats://127.0.0.1:4222)")
		}
	}
	if _, set := c.origin["embedded-nats-token-file"]; set && len(c.NATSURLs) > 0 {
		ps.add(c.where("embedded-nats-token-file"), nil, "applies to the embedded NATS server, but --nats-url is set; authenticate to that server with --nats-creds, --nats-nkey, --nats-user or GRAPHHOOK_NATS_TOKEN (example: --nats-creds /run/secrets/graphhook.creds)")
	} else if len(c.NATSURLs) == 0 {
		checkAddr("embedded-nats-listen", c.EmbeddedNATSListen, false)
		for _, name := range []string{"nats-creds", "nats-nkey", "nats-user", "nats-password", "nats-token", "nats-tls-ca", "nats-tls-cert", "nats-tls-key"} {
			if _, set := c.origin[name]; set {
				ps.add(c.where(name), nil, "applies to an external NATS server, but --nats-url is empty, so the embedded server is used (example: --nats-url nats://nats.example.com:4222)")
			}
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		ps.add(c.where("data-dir"), nil, "is empty (example: --data-dir /var/lib/graphhook)")
	}
	ps.addLibrary(c, "natspub", c.natspubConfig().Validate())
	if c.DuplicateWindow > c.StreamMaxAge {
		ps.add(c.where("duplicate-window"), nil, fmt.Sprintf("%v is longer than --stream-max-age %v (example: --duplicate-window 1h)", c.DuplicateWindow, c.StreamMaxAge))
	}
	if c.NATSTLSCert != "" && c.NATSTLSKey == "" || c.NATSTLSCert == "" && c.NATSTLSKey != "" {
		ps.add(c.where("nats-tls-cert"), nil, "--nats-tls-cert and --nats-tls-key go together (example: --nats-tls-cert client.pem --nats-tls-key client.key)")
	}

	if c.LogFormat != "text" && c.LogFormat != "json" {
		ps.add(c.where("log-format"), nil, fmt.Sprintf("%q is not text or json (example: --log-format json)", c.LogFormat))
	}
	if _, ok := parseLevel(c.LogLevel); !ok {
		ps.add(c.where("log-level"), nil, fmt.Sprintf("%q is not debug, info, warn or error (example: --log-level debug)", c.LogLevel))
	}
	return ps
}

// isOpsPath reports whether p is one of the operations endpoints.
func isOpsPath(p string) bool {
	switch strings.TrimSuffix(p, "/") {
	case "/healthz", "/readyz", "/metrics", "/status", "/status.json":
		return true
	}
	return false
}

// isGUID reports whether s has the 8-4-4-4-12 hex form of a GUID, the
// form Entra ID writes application and tenant ids in.
func isGUID(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }

// parseKeySpec splits "path[,id=ID]" at its last comma.
func parseKeySpec(spec string) (path, id string, err error) {
	path = spec
	if i := strings.LastIndex(spec, ","); i >= 0 {
		opt, ok := strings.CutPrefix(spec[i+1:], "id=")
		if !ok || opt == "" {
			return "", "", fmt.Errorf("%q: after the path, the only option is id= with an id (example: --key /etc/graphhook/key.pem,id=key-2025)", spec)
		}
		path, id = spec[:i], opt
	}
	if path == "" {
		return "", "", fmt.Errorf("%q has no file path (example: --key /etc/graphhook/key.pem,id=key-2025)", spec)
	}
	return path, id, nil
}

// tokenConfig returns the token validator's configuration (without
// Logger) from the settings.
func (c *config) tokenConfig() token.Config {
	return token.Config{AppIDs: c.AppIDs, TenantIDs: c.Tenants, Cloud: c.Cloud, JWKSURL: c.JWKSURL}
}
