package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// envPrefix starts the name of every environment variable the receiver reads.
const envPrefix = "GRAPHHOOK_"

// config is the receiver's configuration after flags, environment and file
// were merged. Field meanings are in [settings].
type config struct {
	ConfigFile string
	Version    bool

	Listen           string
	OpsListen        string
	NotificationPath string
	LifecyclePath    string
	TLSCert          string
	TLSKey           string
	TrustedProxies   []string
	MaxBodyBytes     int64
	BatchTimeout     time.Duration
	ShutdownTimeout  time.Duration

	ClientStates            []string
	ClientStateFile         string
	InsecureSkipClientState bool

	Keys            []string
	KeyPassword     string
	KeyPasswordFile string

	AppIDs                      []string
	Tenants                     []string
	Cloud                       string
	JWKSURL                     string
	InsecureSkipTokenValidation bool

	NATSURLs           []string
	EmbeddedNATSListen string
	EmbeddedNATSToken  string // --embedded-nats-token-file
	DataDir            string
	Stream             string
	QuarantineStream   string
	StreamMaxAge       time.Duration
	DuplicateWindow    time.Duration
	SubjectPrefix      string
	PublishTimeout     time.Duration
	NATSCreds          string
	NATSNKey           string
	NATSUser           string
	NATSPassword       string
	NATSToken          string
	NATSTLSCA          string
	NATSTLSCert        string
	NATSTLSKey         string

	LogFormat string
	LogLevel  string

	// origin maps a setting name to how the user spelled it where its value
	// came from ("--key", "GRAPHHOOK_KEY", "receiver.yaml line 4: key"), so
	// problems name the setting the way the user wrote it.
	origin map[string]string
}

// where returns how the user set the setting name, or its flag spelling.
func (c *config) where(name string) string {
	if o, ok := c.origin[name]; ok {
		return o
	}
	return "--" + name
}

// kind is the type of a setting's value.
type kind int

const (
	kindString kind = iota
	kindList        // repeatable; a list in YAML
	kindBool
	kindDuration
	kindBytes
)

// setting describes one configuration setting. One table of settings drives
// the flags, the environment variables, the YAML keys and the README table.
type setting struct {
	name    string // flag name and YAML key; the env name is derived
	kind    kind
	def     string // default, as it would be written on the command line
	shown   string // the default as documented, when it is derived (def is then empty)
	usage   string // one sentence for --help and the README
	example string // a valid value, shown in error messages
	secret  bool   // the value is never shown
	split   bool   // a list that also accepts comma-separated values
	noFile  bool   // not read from the config file (--config, --version)
	noEnv   bool   // not read from the environment (--version)

	str  *string
	list *[]string
	b    *bool
	dur  *time.Duration
	i64  *int64
}

// envName returns the environment variable that sets s.
func (s *setting) envName() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// settings returns the setting table bound to c's fields.
func settings(c *config) []*setting {
	return []*setting{
		{name: "config", str: &c.ConfigFile, noFile: true, example: "/etc/graphhook/receiver.yaml",
			usage: "YAML file with settings; its keys are the flag names (precedence: flag, then environment, then file, then default)"},
		{name: "listen", str: &c.Listen, def: ":8080", example: ":8443",
			usage: "address of the notification endpoint (host:port)"},
		{name: "ops-listen", str: &c.OpsListen, example: "127.0.0.1:9090",
			usage: "separate address for /healthz, /readyz and /metrics; empty serves them on --listen"},
		{name: "notification-path", str: &c.NotificationPath, def: "/notifications", example: "/graph/notifications",
			usage: "URL path of the subscription's notificationUrl"},
		{name: "lifecycle-path", str: &c.LifecyclePath, def: "/lifecycle", example: "/graph/lifecycle",
			usage: "URL path of the subscription's lifecycleNotificationUrl (may equal --notification-path)"},
		{name: "tls-cert", str: &c.TLSCert, example: "/etc/graphhook/tls.crt",
			usage: "PEM certificate (chain) file: serve HTTPS (TLS 1.2+); reloaded on SIGHUP and when the file changes"},
		{name: "tls-key", str: &c.TLSKey, example: "/etc/graphhook/tls.key",
			usage: "PEM private key file for --tls-cert"},
		{name: "trusted-proxy", kind: kindList, list: &c.TrustedProxies, split: true, example: "10.0.0.0/8",
			usage: "CIDR of a reverse proxy whose X-Forwarded-For is trusted for client addresses in logs (repeatable)"},
		{name: "max-body-bytes", kind: kindBytes, i64: &c.MaxBodyBytes, def: "4MiB", example: "8MiB",
			usage: "largest notification body accepted (413 above), at most 32MiB; accepts B, KiB, MiB suffixes. The embedded NATS server's max_payload follows it; an external server's max_payload must exceed it by 64KiB"},
		{name: "batch-timeout", kind: kindDuration, dur: &c.BatchTimeout, def: "2.5s", example: "2s",
			usage: "time budget for verifying and publishing one batch, within Graph's 3 s limit"},
		{name: "shutdown-timeout", kind: kindDuration, dur: &c.ShutdownTimeout, def: "10s", example: "30s",
			usage: "how long shutdown waits for in-flight requests and their publishes"},

		{name: "client-state", kind: kindList, list: &c.ClientStates, secret: true, example: "--client-state-file /run/secrets/graph-client-state",
			usage: "accepted clientState value, at most 128 characters (repeatable, for rotation); prefer --client-state-file"},
		{name: "client-state-file", str: &c.ClientStateFile, example: "/run/secrets/graph-client-state",
			usage: "file with accepted clientState values, one per line; if neither this nor --client-state is set, <data-dir>/client-state is used and created with a random value"},
		{name: "insecure-skip-client-state", kind: kindBool, b: &c.InsecureSkipClientState,
			usage: "WARNING: accept notifications without checking clientState; anyone who knows the URL can inject events. Tests only"},

		{name: "key", kind: kindList, list: &c.Keys, example: "/etc/graphhook/key.pem,id=key-2025",
			usage: "private key for rich notifications, PEM or PFX, as path[,id=encryptionCertificateId] (repeatable, for rotation)"},
		{name: "key-password", str: &c.KeyPassword, secret: true, example: "--key-password-file /run/secrets/pfx-password",
			usage: "password of PFX key files; prefer --key-password-file (flags show in process listings)"},
		{name: "key-password-file", str: &c.KeyPasswordFile, example: "/run/secrets/pfx-password",
			usage: "file holding the password of PFX key files"},

		{name: "app-id", kind: kindList, list: &c.AppIDs, split: true, example: "11111111-2222-3333-4444-555555555555",
			usage: "application (client) id the validationTokens of rich notifications must be issued for (repeatable or comma-separated); enables token validation"},
		{name: "tenant", kind: kindList, list: &c.Tenants, split: true, example: "84bd8158-6d4d-4958-8b9f-9d6445542f95",
			usage: "tenant id allowed to send rich notifications (repeatable or comma-separated); empty allows any tenant whose token is valid"},
		{name: "cloud", str: &c.Cloud, def: "global", example: "usgov",
			usage: "Microsoft cloud the tokens come from: global, usgov or china"},
		{name: "jwks-url", str: &c.JWKSURL, example: "https://login.microsoftonline.com/common/discovery/v2.0/keys",
			usage: "override the signing-key (JWKS) URL of --cloud"},
		{name: "insecure-skip-token-validation", kind: kindBool, b: &c.InsecureSkipTokenValidation,
			usage: "WARNING: accept rich notifications without validating their validationTokens. Tests only"},

		{name: "nats-url", kind: kindList, list: &c.NATSURLs, split: true, example: "nats://nats-1:4222,nats://nats-2:4222",
			usage: "NATS server URLs (repeatable or comma-separated); empty starts an embedded NATS server with JetStream"},
		{name: "embedded-nats-listen", str: &c.EmbeddedNATSListen, def: "127.0.0.1:4222", example: "0.0.0.0:4222",
			usage: "where the embedded NATS server listens for clients (host:port; port 0 picks a free one)"},
		{name: "embedded-nats-token-file", str: &c.EmbeddedNATSToken, shown: "<data-dir>/nats-token", example: "/run/secrets/nats-token",
			usage: "file with the token every client of the embedded NATS server must present (nats://TOKEN@127.0.0.1:4222): letters, digits and -._~, at least 16. The default file is created with a random token (mode 0600) on first start; a file named here must exist"},
		{name: "data-dir", str: &c.DataDir, def: "./data", example: "/var/lib/graphhook",
			usage: "directory for the embedded server's JetStream store (<data-dir>/jetstream) and the generated client-state and nats-token files"},
		{name: "stream", str: &c.Stream, def: "GRAPH", example: "GRAPH",
			usage: "JetStream stream for notifications (created if missing)"},
		{name: "quarantine-stream", str: &c.QuarantineStream, def: "GRAPH_REJECTED", example: "GRAPH_REJECTED",
			usage: "JetStream stream for rejected items (forged clientState, bad token, decrypt failure), kept for inspection"},
		{name: "stream-max-age", kind: kindDuration, dur: &c.StreamMaxAge, def: "168h", example: "720h",
			usage: "how long --stream keeps events"},
		{name: "duplicate-window", kind: kindDuration, dur: &c.DuplicateWindow, def: "1h", example: "4h",
			usage: "how long the streams remember event ids, so Graph's redeliveries are stored once"},
		{name: "subject-prefix", str: &c.SubjectPrefix, def: "graph", example: "graph",
			usage: "first token(s) of the subjects events are published on"},
		{name: "publish-timeout", kind: kindDuration, dur: &c.PublishTimeout, def: "2s", example: "1500ms",
			usage: "how long one publish waits for JetStream's acknowledgement"},
		{name: "nats-creds", str: &c.NATSCreds, example: "/run/secrets/graphhook.creds",
			usage: "NATS credentials (JWT + seed) file"},
		{name: "nats-nkey", str: &c.NATSNKey, example: "/run/secrets/graphhook.nk",
			usage: "NATS NKey seed file"},
		{name: "nats-user", str: &c.NATSUser, example: "graphhook",
			usage: "NATS user name"},
		{name: "nats-password", str: &c.NATSPassword, secret: true, example: "(set GRAPHHOOK_NATS_PASSWORD)",
			usage: "NATS password, for --nats-user (prefer the environment variable: flags show in process listings)"},
		{name: "nats-token", str: &c.NATSToken, secret: true, example: "(set GRAPHHOOK_NATS_TOKEN)",
			usage: "NATS authentication token (prefer the environment variable: flags show in process listings)"},
		{name: "nats-tls-ca", str: &c.NATSTLSCA, example: "/etc/graphhook/nats-ca.pem",
			usage: "CA file to verify the NATS servers"},
		{name: "nats-tls-cert", str: &c.NATSTLSCert, example: "/etc/graphhook/nats-client.pem",
			usage: "client certificate file for NATS (mutual TLS)"},
		{name: "nats-tls-key", str: &c.NATSTLSKey, example: "/etc/graphhook/nats-client.key",
			usage: "client key file for --nats-tls-cert"},

		{name: "log-format", str: &c.LogFormat, def: "text", example: "json",
			usage: "log format: text or json"},
		{name: "log-level", str: &c.LogLevel, def: "info", example: "debug",
			usage: "log level: debug, info, warn or error"},
		{name: "version", kind: kindBool, b: &c.Version, noFile: true, noEnv: true,
			usage: "print the version and exit"},
	}
}

// set stores vals (one for scalars, any number for lists) in s's field.
// The returned error describes the value without repeating it when s is
// secret.
func (s *setting) set(vals []string) error {
	v := "" // a scalar given several times takes the last value, as with the flag package
	if len(vals) > 0 {
		v = vals[len(vals)-1]
	}
	switch s.kind {
	case kindString:
		*s.str = v
	case kindList:
		var out []string
		for _, x := range vals {
			if s.split {
				for _, p := range strings.Split(x, ",") {
					if p = strings.TrimSpace(p); p != "" {
						out = append(out, p)
					}
				}
				continue
			}
			out = append(out, x)
		}
		*s.list = out
	case kindBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (example: true or false)", v)
		}
		*s.b = b
	case kindDuration:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration (example: %s)", v, s.exampleArg())
		}
		*s.dur = d
	case kindBytes:
		n, err := parseBytes(v)
		if err != nil {
			return fmt.Errorf("%q is not a positive size (example: %s)", v, s.exampleArg())
		}
		*s.i64 = n
	}
	return nil
}

// exampleArg returns an example of a right value, as a flag when the
// example is a bare value.
func (s *setting) exampleArg() string {
	if strings.HasPrefix(s.example, "--") || strings.HasPrefix(s.example, "(") {
		return s.example
	}
	return "--" + s.name + " " + s.example
}

// parseBytes parses a size such as 4194304, 512KiB, 4MiB or 1GiB.
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(v)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, errors.New("bad size")
	}
	return n * mult, nil
}

// formatBytes writes n the way parseBytes reads it: in MiB or KiB when it
// is a whole number of them, else in bytes.
func formatBytes(n int64) string {
	switch {
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// flagValue collects the raw values given for one flag.
type flagValue struct {
	isBool bool
	vals   []string
}

func (f *flagValue) String() string { return "" }
func (f *flagValue) Set(v string) error {
	f.vals = append(f.vals, v)
	return nil
}
func (f *flagValue) IsBoolFlag() bool { return f.isBool }

// errUsage marks a command line that cannot be parsed.
var errUsage = errors.New("usage error")

// loadConfig merges defaults, the config file, the environment and args
// (in increasing precedence). An environment variable that is set counts
// even when empty, as the flag with that value would, except that an
// empty list variable clears the list: GRAPHHOOK_OPS_LISTEN= overrides a
// file's ops-listen. It returns flag.ErrHelp for -h, an error wrapping
// errUsage for a malformed command line, and a *configError for values
// that cannot be parsed. Semantic checks are done by validate.
func loadConfig(args []string, lookupEnv func(string) (string, bool)) (*config, error) {
	c := &config{origin: map[string]string{}}
	set := settings(c)

	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	raw := make(map[string]*flagValue, len(set))
	for _, s := range set {
		fv := &flagValue{isBool: s.kind == kindBool}
		raw[s.name] = fv
		fs.Var(fv, s.name, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s (run with -h for the list of settings)", errUsage, flagErrorText(err))
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (settings are flags, e.g. --listen :8080; subcommands are keygen, help config)", errUsage, fs.Arg(0))
	}

	var problems []problem
	for _, s := range set {
		if s.def != "" {
			if err := s.set([]string{s.def}); err != nil {
				// A broken default is a programming error; report it like any problem.
				problems = append(problems, problem{setting: "--" + s.name, msg: "default: " + err.Error()})
			}
		}
	}

	// Where is the file? Flag, then environment.
	cfgFile := ""
	if v := raw["config"].vals; len(v) > 0 {
		cfgFile = v[len(v)-1]
	} else {
		cfgFile, _ = lookupEnv(envPrefix + "CONFIG")
	}
	var fileVals map[string]fileValue
	if cfgFile != "" {
		var err error
		fileVals, err = readConfigFile(cfgFile, set)
		if err != nil {
			return nil, &configError{problems: []problem{{setting: "--config", msg: err.Error(), err: err}}}
		}
	}

	for _, s := range set {
		var (
			vals   []string
			origin string
		)
		env, inEnv := "", false
		if !s.noEnv {
			env, inEnv = lookupEnv(s.envName())
		}
		switch {
		case len(raw[s.name].vals) > 0:
			vals, origin = raw[s.name].vals, "--"+s.name
		case inEnv && env == "" && s.kind == kindList:
			// An empty list variable is most likely a template value that
			// was never filled in; silently clearing --nats-url (embedded
			// server instead of the cluster) or --client-state (a random
			// one: everything quarantined) would be worse than stopping.
			problems = append(problems, problem{setting: s.envName(), msg: "is set but empty; unset it to use the config file or the default, or give a value"})
			continue
		case inEnv:
			vals, origin = []string{env}, s.envName()
		case !s.noFile && fileVals[s.name].vals != nil:
			fv := fileVals[s.name]
			vals, origin = fv.vals, fmt.Sprintf("%s line %d: %s", cfgFile, fv.line, s.name)
		default:
			continue
		}
		c.origin[s.name] = origin
		if err := s.set(vals); err != nil {
			problems = append(problems, problem{setting: origin, msg: err.Error()})
		}
	}
	if len(problems) > 0 {
		return nil, &configError{problems: problems}
	}
	return c, nil
}

// flagErrorText rewrites the flag package's messages in the --flag style
// used everywhere else.
func flagErrorText(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag --" + strings.TrimLeft(name, "-")
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "flag --" + strings.TrimLeft(name, "-") + " needs a value"
	}
	return msg
}

// fileValue is a setting's raw value(s) from the config file and its line.
type fileValue struct {
	vals []string
	line int
}

// maxConfigFileSize bounds what readConfigFile reads.
const maxConfigFileSize = 1 << 20

// readConfigFile reads a YAML mapping of setting names to scalars or lists
// of scalars. Unknown keys are errors, so that typos do not pass silently.
func readConfigFile(path string, set []*setting) (map[string]fileValue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read config file %s: %w", path, err)
	}
	if len(data) > maxConfigFileSize {
		return nil, fmt.Errorf("config file %s is larger than %d bytes", path, maxConfigFileSize)
	}
	out := map[string]fileValue{}
	if len(bytes.TrimSpace(data)) == 0 {
		return out, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(path, data, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s line %d: want a mapping of setting names to values (example: \"listen: ':8443'\")", path, root.Line)
	}
	byName := make(map[string]*setting, len(set))
	for _, s := range set {
		byName[s.name] = s
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		s, ok := byName[k.Value]
		if !ok || s.noFile {
			hint := `example: listen: ":8443"; the keys are the flag names, listed by "receiver help config"`
			if alt := closestSetting(k.Value, set); alt != nil {
				ex := alt.example
				if strings.HasPrefix(ex, "--") || strings.HasPrefix(ex, "(") {
					ex = "<value>"
				}
				hint = fmt.Sprintf("did you mean %q? example: %s: %s", alt.name, alt.name, ex)
			}
			return nil, fmt.Errorf("config file %s line %d: unknown setting %q (%s)", path, k.Line, k.Value, hint)
		}
		if _, dup := out[s.name]; dup {
			return nil, fmt.Errorf("config file %s line %d: %s is set twice", path, k.Line, s.name)
		}
		var vals []string
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue
			}
			vals = []string{v.Value}
		case yaml.SequenceNode:
			if s.kind != kindList {
				return nil, fmt.Errorf("config file %s line %d: %s takes one value, not a list (example: %s: %s)", path, v.Line, s.name, s.name, s.example)
			}
			vals = []string{}
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("config file %s line %d: %s: list items must be plain values", path, e.Line, s.name)
				}
				vals = append(vals, e.Value)
			}
		default:
			return nil, fmt.Errorf("config file %s line %d: %s must be a value or a list of values", path, v.Line, s.name)
		}
		out[s.name] = fileValue{vals: vals, line: k.Line}
	}
	return out, nil
}

// closestSetting returns the file setting whose name equals key once case,
// dashes and underscores are ignored, or nil.
func closestSetting(key string, set []*setting) *setting {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
	}
	for _, s := range set {
		if !s.noFile && norm(s.name) == norm(key) {
			return s
		}
	}
	return nil
}

// yamlProblems describes the YAML parser's errors by kind, in fixed words:
// the parser's own text may quote the file's content (an alias's name,
// for one), and the file may hold secrets. The first entry whose key the
// parser's message contains applies.
var yamlProblems = []struct {
	key, desc string
	noLine    bool // the message's position is not a line of the file
}{
	{key: "unknown anchor", desc: "a value starting with * is read as an alias of an anchor (&name) that is not defined; put such a value in quotes (example: key: '*.pem')"},
	{key: "UTF-8", desc: "the file is not UTF-8 text", noLine: true},
	{key: "UTF-16", desc: "the file is not UTF-8 text", noLine: true},
	{key: "Unicode", desc: "the file is not UTF-8 text", noLine: true},
	{key: "control characters", desc: "the file holds control characters; it must be UTF-8 text", noLine: true},
	{key: "tab character", desc: "a line is indented with a tab; indent with spaces"},
	{key: "cannot start any token", desc: "a value starts with a character YAML reserves (such as @ or `), or a line is indented with a tab; quote the value, indent with spaces"},
	{key: "mapping values are not allowed", desc: "a value holds \": \" or is indented under another value; quote it"},
	{key: "unexpected end of stream", desc: "a quoted value or a bracket is not closed"},
	{key: "did not find expected", desc: "unbalanced quotes, brackets or indentation"},
	{key: "escape", desc: "a double-quoted value holds an unknown \\ escape; use single quotes"},
	{key: "tag", desc: "a value starting with ! is read as a YAML tag; put it in quotes"},
}

// yamlLineRe finds the line number in a YAML parser message.
var yamlLineRe = regexp.MustCompile(`^yaml: line ([0-9]+): `)

// yamlAliasRe finds the alias name in an "unknown anchor" message.
var yamlAliasRe = regexp.MustCompile(`unknown anchor '(.*)' referenced`)

// yamlError returns the error for a config file the YAML parser rejected:
// the file, the line when known, and a fixed description of the kind of
// problem, never the parser's text. It wraps [errConfigSyntax].
func yamlError(path string, data []byte, err error) error {
	msg := err.Error()
	desc, noLine := "", true
	for _, p := range yamlProblems {
		if strings.Contains(msg, p.key) {
			desc, noLine = p.desc, p.noLine
			break
		}
	}
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	} else if m := yamlAliasRe.FindStringSubmatch(msg); m != nil {
		line = aliasLine(data, m[1])
	} else if desc != "" && !noLine {
		line = 1 // the parser leaves out the number of the first line
	}
	where := "config file " + path
	if line > 0 && !noLine {
		where += fmt.Sprintf(" line %d", line)
	}
	if desc == "" {
		return fmt.Errorf("%s: %w (example of a valid file: \"listen: ':8443'\")", where, errConfigSyntax)
	}
	return fmt.Errorf("%s: %w: %s (example of a valid file: \"listen: ':8443'\")", where, errConfigSyntax, desc)
}

// aliasLine returns the number of the first line of data that uses the
// alias *name, or 0.
func aliasLine(data []byte, name string) int {
	if name == "" {
		return 0
	}
	for i, line := range strings.Split(string(data), "\n") {
		for rest := line; ; {
			j := strings.Index(rest, "*"+name)
			if j < 0 {
				break
			}
			rest = rest[j+1+len(name):]
			if rest == "" || strings.ContainsRune(" \t\r,]}#", rune(rest[0])) {
				return i + 1
			}
		}
	}
	return 0
}
