package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/receiver"
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

// defaultClientStateFile is the file name, in --data-dir, of the clientState
// generated when none is configured.
const defaultClientStateFile = "client-state"

// defaultNATSTokenFile is the file name, in --data-dir, of the embedded
// NATS server's token when --embedded-nats-token-file is not set.
const defaultNATSTokenFile = "nats-token"

// minNATSTokenLen is the shortest token the embedded server accepts from a
// token file; a generated one is 43 characters.
const minNATSTokenLen = 16

// validate checks c without touching files or the network. Every problem is
// reported, not only the first.
func (c *config) validate() problems {
	var ps problems
	checkAddr := func(name, v string, allowEmpty bool) {
		if v == "" && allowEmpty {
			return
		}
		s := settingByName(name)
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			ps.add(c.where(name), nil, fmt.Sprintf("%q is not host:port (example: %s)", v, s.exampleArg()))
			return
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			ps.add(c.where(name), nil, fmt.Sprintf("port %q in %q is not a number from 0 to 65535 (example: %s)", port, v, s.exampleArg()))
			return
		}
		if strings.ContainsAny(host, " /") {
			ps.add(c.where(name), nil, fmt.Sprintf("host %q in %q is not a host name or IP address (example: %s)", host, v, s.exampleArg()))
		}
	}
	checkAddr("listen", c.Listen, false)
	checkAddr("ops-listen", c.OpsListen, true)
	if c.OpsListen != "" && c.OpsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		ps.add(c.where("ops-listen"), nil, fmt.Sprintf("equals --listen %q; leave it empty to serve /healthz, /readyz and /metrics on --listen (example: --ops-listen 127.0.0.1:9090)", c.Listen))
	}

	for _, name := range []string{"notification-path", "lifecycle-path"} {
		p := c.NotificationPath
		if name == "lifecycle-path" {
			p = c.LifecyclePath
		}
		switch {
		case !strings.HasPrefix(p, "/"):
			ps.add(c.where(name), nil, fmt.Sprintf("%q must start with / (example: %s)", p, settingByName(name).exampleArg()))
		case strings.ContainsAny(p, "?#*: \t") || strings.Contains(p, "//"):
			ps.add(c.where(name), nil, fmt.Sprintf("%q must be a plain URL path without ?, #, *, :, spaces or // (example: %s)", p, settingByName(name).exampleArg()))
		case c.OpsListen == "" && isOpsPath(p):
			ps.add(c.where(name), nil, fmt.Sprintf("%q is reserved for operations on --listen (example: %s)", p, settingByName(name).exampleArg()))
		}
	}

	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		ps.add(c.where("tls-key"), nil, "is required with --tls-cert (example: --tls-key /etc/graphhook/tls.key)")
	case c.TLSCert == "" && c.TLSKey != "":
		ps.add(c.where("tls-cert"), nil, "is required with --tls-key (example: --tls-cert /etc/graphhook/tls.crt)")
	}
	for _, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			if net.ParseIP(p) == nil {
				ps.add(c.where("trusted-proxy"), nil, fmt.Sprintf("%q is not a CIDR or IP address (example: --trusted-proxy 10.0.0.0/8)", p))
			}
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
	for _, id := range c.AppIDs {
		if !isGUID(id) {
			ps.add(c.where("app-id"), nil, fmt.Sprintf("%q is not an application id GUID (example: --app-id %s)", id, exampleGUID))
		}
	}
	for _, id := range c.Tenants {
		if !isGUID(id) {
			ps.add(c.where("tenant"), nil, fmt.Sprintf("%q is not a tenant id GUID (example: --tenant %s)", id, settingByName("tenant").example))
		}
	}
	if len(c.Tenants) > 0 && len(c.AppIDs) == 0 {
		ps.add(c.where("tenant"), nil, fmt.Sprintf("only applies to token validation, which needs --app-id (example: --app-id %s)", exampleGUID))
	}
	if len(c.AppIDs) > 0 {
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
	if len(c.NATSURLs) > 0 {
		if _, set := c.origin["embedded-nats-token-file"]; set {
			ps.add(c.where("embedded-nats-token-file"), nil, "applies to the embedded NATS server, but --nats-url is set; authenticate to that server with --nats-creds, --nats-nkey, --nats-user or GRAPHHOOK_NATS_TOKEN (example: --nats-creds /run/secrets/graphhook.creds)")
		}
	}
	if len(c.NATSURLs) == 0 {
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

	switch c.LogFormat {
	case "text", "json":
	default:
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

// isGUID reports whether s has the 8-4-4-4-12 hex form of a GUID.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// parseKeySpec splits "path[,id=ID]".
func parseKeySpec(spec string) (path, id string, err error) {
	path = spec
	if i := strings.LastIndex(spec, ","); i >= 0 {
		opt := spec[i+1:]
		v, ok := strings.CutPrefix(opt, "id=")
		if !ok {
			return "", "", fmt.Errorf("%q: unknown option %q after the path; the only option is id= (example: --key /etc/graphhook/key.pem,id=key-2025)", spec, opt)
		}
		if v == "" {
			return "", "", fmt.Errorf("%q: id= is empty (example: --key /etc/graphhook/key.pem,id=key-2025)", spec)
		}
		path, id = spec[:i], v
	}
	if path == "" {
		return "", "", fmt.Errorf("%q has no file path (example: --key /etc/graphhook/key.pem,id=key-2025)", spec)
	}
	return path, id, nil
}

// secrets holds what the configuration names by file, read at start.
type secrets struct {
	clientStates []string
	// clientStateFile is the file the client states came from, if any.
	clientStateFile string
	// generated is true when clientStateFile was created at this start.
	generated bool
	keys      []decrypt.Key

	// natsToken is the token of the embedded NATS server, read from
	// natsTokenFile; empty with --nats-url.
	natsToken     string
	natsTokenFile string
}

// loadSecrets reads client states and keys. It reports every problem; the
// messages name files but never their contents.
func (c *config) loadSecrets() (*secrets, problems) {
	var ps problems
	s := &secrets{clientStates: append([]string(nil), c.ClientStates...)}

	file := c.ClientStateFile
	if file == "" && len(c.ClientStates) == 0 && !c.InsecureSkipClientState {
		file = filepath.Join(c.DataDir, defaultClientStateFile)
		created, err := ensureClientStateFile(file)
		if err != nil {
			ps.add(c.where("client-state-file"), err, fmt.Sprintf("no clientState is configured and %s cannot be created: %v (example: --client-state-file /run/secrets/graph-client-state)", file, pathError(err)))
		}
		s.generated = created
	}
	if file != "" {
		s.clientStateFile = file
		states, err := readClientStates(file)
		switch {
		case err != nil:
			ps.add(c.where("client-state-file"), err, err.Error())
		case len(states) == 0:
			ps.add(c.where("client-state-file"), nil, fmt.Sprintf("%s holds no clientState; write one value per line (example: %s > %s)", file, exampleSecretGen, file))
		}
		s.clientStates = append(s.clientStates, states...)
	}

	password := c.KeyPassword
	if c.KeyPasswordFile != "" {
		b, err := readSmallFile(c.KeyPasswordFile)
		if err != nil {
			ps.add(c.where("key-password-file"), err, fmt.Sprintf("cannot read %s: %v (example: --key-password-file /run/secrets/pfx-password)", c.KeyPasswordFile, pathError(err)))
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	for _, spec := range c.Keys {
		path, id, err := parseKeySpec(spec)
		if err != nil {
			continue // reported by validate
		}
		k, err := decrypt.LoadFile(path, password)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ps.add(c.where("key"), err, fmt.Sprintf("key file %s does not exist (example: --key /etc/graphhook/key.pem,id=key-1; make one with: %s)", path, exampleKeygen))
			continue
		case errors.Is(err, decrypt.ErrKeyPassword):
			how := "set --key-password-file"
			if password != "" {
				how = "check --key-password-file or --key-password"
			}
			ps.add(c.where("key"), err, fmt.Sprintf("cannot open PFX file %s: wrong or missing password (%s, example: --key-password-file /run/secrets/pfx-password)", path, how))
			continue
		case err != nil:
			ps.add(c.where("key"), err, fmt.Sprintf("cannot use key file %s: %s (want a PEM private key with its certificate, or a PFX; example: %s)", path, keyErrorText(err, path), exampleKeygen))
			continue
		}
		k.ID = id
		if k.ID == "" && k.Certificate == nil {
			ps.add(c.where("key"), decrypt.ErrKeyFile, fmt.Sprintf("%s holds no certificate, so it needs an id (example: --key %s,id=key-1)", path, path))
			continue
		}
		s.keys = append(s.keys, k)
	}
	if len(s.keys) > 0 {
		if _, err := decrypt.NewKeyRing(s.keys...); err != nil {
			ps.add(c.where("key"), err, fmt.Sprintf("keys cannot be used together: %v (give each key file once; keys may share an id, as when a subscription's certificate is renewed under the same encryptionCertificateId, and are then told apart by certificate thumbprint, so such keys need their certificates; example: --key key-2025.pem,id=key-1 --key key-2026.pem,id=key-1)", err))
		}
	}

	if len(c.NATSURLs) == 0 {
		file, create := c.EmbeddedNATSToken, false
		if file == "" {
			file, create = filepath.Join(c.DataDir, defaultNATSTokenFile), true
		}
		s.natsTokenFile = file
		tok, err := loadNATSToken(file, create)
		if err != nil {
			ps.add(c.where("embedded-nats-token-file"), err, err.Error())
		}
		s.natsToken = tok
	}

	for _, f := range []struct{ name, path string }{
		{"nats-creds", c.NATSCreds}, {"nats-nkey", c.NATSNKey}, {"nats-tls-ca", c.NATSTLSCA},
		{"nats-tls-cert", c.NATSTLSCert}, {"nats-tls-key", c.NATSTLSKey},
	} {
		if f.path == "" {
			continue
		}
		if fh, err := os.Open(f.path); err != nil {
			ps.add(c.where(f.name), err, fmt.Sprintf("cannot read %s: %v (example: %s)", f.path, pathError(err), settingByName(f.name).exampleArg()))
		} else {
			fh.Close()
		}
	}
	return s, ps
}

// keyErrorText shortens decrypt's error text, which repeats the package and
// the path.
func keyErrorText(err error, path string) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decrypt: load key "+path+": ")
	return strings.ReplaceAll(msg, "decrypt: ", "")
}

// pathError returns the reason of a *fs.PathError without repeating the path.
func pathError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// maxSecretFileSize bounds the files holding secrets.
const maxSecretFileSize = 64 << 10

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxSecretFileSize)
	}
	return b, nil
}

// readClientStates reads one clientState per line; surrounding white space
// and blank lines are ignored. Errors name lines, never their contents.
func readClientStates(path string) ([]string, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w (example: --client-state-file /run/secrets/graph-client-state)", path, pathError(err))
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if n := utf8.RuneCountInString(line); n > receiver.MaxClientStateLen {
			return nil, fmt.Errorf("line %d of %s is %d characters; Graph allows at most %d (example: %s > %s)", i+1, path, n, receiver.MaxClientStateLen, exampleSecretGen, path)
		}
		out = append(out, line)
	}
	return out, nil
}

// loadNATSToken returns the embedded NATS server's token from path. With
// create, a missing file is created with a random token (mode 0600). The
// token must be usable in a URL (nats://TOKEN@host:port), so it may hold
// only letters, digits and -._~. Errors name the file, never its content.
func loadNATSToken(path string, create bool) (string, error) {
	example := fmt.Sprintf("example: %s > %s", exampleTokenGen, path)
	if create {
		if _, err := ensureSecretFile(path); err != nil {
			return "", fmt.Errorf("%s cannot be created: %w (example: --data-dir /var/lib/graphhook)", path, pathError(err))
		}
	}
	b, err := readSmallFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w (example: --embedded-nats-token-file /run/secrets/nats-token)", path, pathError(err))
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(tok) < minNATSTokenLen:
		return "", fmt.Errorf("%s holds a token shorter than %d characters (%s)", path, minNATSTokenLen, example)
	case strings.ContainsFunc(tok, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~')
	}):
		return "", fmt.Errorf("%s holds characters other than letters, digits and -._~, which a nats:// URL cannot carry as they are (%s)", path, example)
	}
	return tok, nil
}

// ensureClientStateFile creates path with a random clientState (mode 0600)
// unless it exists. It reports whether it created the file.
func ensureClientStateFile(path string) (bool, error) {
	return ensureSecretFile(path)
}

// ensureSecretFile creates path with a random value (32 bytes, base64url:
// 43 characters that need no quoting in a URL or a shell) and mode 0600,
// unless it exists. It reports whether it created the file.
func ensureSecretFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil // created concurrently; use it
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(base64.RawURLEncoding.EncodeToString(b[:]) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}

// tokenConfig returns the token validator's configuration (without
// Logger) from the settings.
func (c *config) tokenConfig() token.Config {
	return token.Config{AppIDs: c.AppIDs, TenantIDs: c.Tenants, Cloud: c.Cloud, JWKSURL: c.JWKSURL}
}
