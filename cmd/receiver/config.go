package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	yamlv3 "go.yaml.in/yaml/v3"
)

// envPrefix starts the name of every environment variable the receiver reads.
const envPrefix = "GRAPHHOOK_"

// config is the receiver's configuration after flags, environment and file
// were merged, and the one declaration of its settings: each field's koanf
// tag is the setting's name (the flag, the YAML key and, upper-cased with
// GRAPHHOOK_, the environment variable); its other tags document it (see
// [setting]; opts lists secret, split, nofile, noenv). The field's type is
// the setting's kind: a string, a list, a boolean, a duration, a number
// (int), or (int64) a size in bytes.
type config struct {
	ConfigFile string `koanf:"config" example:"/etc/graphhook/receiver.yaml" opts:"nofile" usage:"YAML file with settings; its keys are the flag names (precedence: flag, then environment, then file, then default)"`

	Listen           string        `koanf:"listen" default:":8080" example:":8443" usage:"address of the notification endpoint (host:port)"`
	OpsListen        string        `koanf:"ops-listen" example:"127.0.0.1:9090" usage:"separate address for /healthz, /readyz, /metrics and /status; empty serves them on --listen when it is a loopback address, else on 127.0.0.1:9091 (so they are never public by default)"`
	NotificationPath string        `koanf:"notification-path" default:"/notifications" example:"/graph/notifications" usage:"URL path of the subscription's notificationUrl"`
	LifecyclePath    string        `koanf:"lifecycle-path" default:"/lifecycle" example:"/graph/lifecycle" usage:"URL path of the subscription's lifecycleNotificationUrl (may equal --notification-path)"`
	TLSCert          string        `koanf:"tls-cert" example:"/etc/graphhook/tls.crt" usage:"PEM certificate (chain) file: serve HTTPS (TLS 1.2+); reloaded on SIGHUP and when the file changes"`
	TLSKey           string        `koanf:"tls-key" example:"/etc/graphhook/tls.key" usage:"PEM private key file for --tls-cert"`
	TrustedProxies   []string      `koanf:"trusted-proxy" example:"10.0.0.0/8" opts:"split" usage:"CIDR of a reverse proxy whose X-Forwarded-For is trusted for client addresses in logs (repeatable)"`
	MaxBodyBytes     int64         `koanf:"max-body-bytes" lib:"receiver.MaxBodyBytes" default:"4MiB" example:"8MiB" usage:"largest notification body accepted (413 above), at most 32MiB; accepts B, KiB, MiB suffixes. The embedded NATS server's max_payload follows it; an external server's max_payload must exceed it by 64KiB"`
	BatchTimeout     time.Duration `koanf:"batch-timeout" lib:"receiver.Timeout" default:"2.5s" example:"2s" usage:"time budget for verifying and publishing one batch, within Graph's 3 s limit"`
	MaxInflightBytes int64         `koanf:"max-inflight-bytes" default:"32MiB" example:"64MiB" usage:"budget of notification body bytes being received or processed at once (a body counts with its Content-Length, or --max-body-bytes when unknown); a request over it is answered 503 with Retry-After at once, without reading its body. Up to a quarter is kept for bodies up to 256KiB, so slow large bodies cannot starve Graph's small batches. At least --max-body-bytes"`
	BodyTimeout      time.Duration `koanf:"body-timeout" default:"10s" example:"5s" usage:"how long a client may take to send a notification body once its headers are in; slower clients are cut (Graph sends its bodies at once)"`
	MaxConnections   int           `koanf:"max-connections" default:"1024" example:"4096" usage:"most client connections --listen keeps open at once; further ones wait to be accepted"`
	ShutdownTimeout  time.Duration `koanf:"shutdown-timeout" default:"10s" example:"30s" usage:"how long shutdown waits for in-flight requests and their publishes"`

	ClientStates            []string `koanf:"client-state" lib:"receiver.ClientStates" example:"--client-state-file /run/secrets/graph-client-state" opts:"secret" usage:"accepted clientState value, at most 128 characters (repeatable, for rotation); prefer --client-state-file"`
	ClientStateFile         string   `koanf:"client-state-file" example:"/run/secrets/graph-client-state" usage:"file with accepted clientState values, one per line; if neither this nor --client-state is set, <data-dir>/client-state is used and created with a random value"`
	InsecureSkipClientState bool     `koanf:"insecure-skip-client-state" usage:"WARNING: accept notifications without checking clientState; anyone who knows the URL can inject events. Tests only"`

	Keys            []string `koanf:"key" example:"/etc/graphhook/key.pem,id=key-2025" usage:"private key for rich notifications, PEM or PFX, as path[,id=encryptionCertificateId] (repeatable, for rotation)"`
	KeyPassword     string   `koanf:"key-password" example:"--key-password-file /run/secrets/pfx-password" opts:"secret" usage:"password of PFX key files; prefer --key-password-file (flags show in process listings)"`
	KeyPasswordFile string   `koanf:"key-password-file" example:"/run/secrets/pfx-password" usage:"file holding the password of PFX key files"`

	AppIDs                      []string `koanf:"app-id" lib:"token.AppIDs" example:"11111111-2222-3333-4444-555555555555" opts:"split" usage:"application (client) id the validationTokens of rich notifications must be issued for (repeatable or comma-separated); enables token validation"`
	Tenants                     []string `koanf:"tenant" lib:"token.TenantIDs" example:"84bd8158-6d4d-4958-8b9f-9d6445542f95" opts:"split" usage:"tenant id allowed to send rich notifications (repeatable or comma-separated); empty allows any tenant whose token is valid"`
	Cloud                       string   `koanf:"cloud" lib:"token.Cloud" default:"global" example:"usgov" usage:"Microsoft cloud the tokens come from: global, usgov or china"`
	JWKSURL                     string   `koanf:"jwks-url" lib:"token.JWKSURL" example:"https://login.microsoftonline.com/common/discovery/v2.0/keys" usage:"override the signing-key (JWKS) URL of --cloud"`
	InsecureSkipTokenValidation bool     `koanf:"insecure-skip-token-validation" usage:"WARNING: accept rich notifications without validating their validationTokens. Tests only"`

	NATSURLs           []string      `koanf:"nats-url" example:"nats://nats-1:4222,nats://nats-2:4222" opts:"split" usage:"NATS server URLs (repeatable or comma-separated); empty starts an embedded NATS server with JetStream"`
	EmbeddedNATSListen string        `koanf:"embedded-nats-listen" default:"127.0.0.1:4222" example:"0.0.0.0:4222" usage:"where the embedded NATS server listens for clients (host:port; port 0 picks a free one)"`
	EmbeddedNATSToken  string        `koanf:"embedded-nats-token-file" shown:"<data-dir>/nats-token" example:"/run/secrets/nats-token" usage:"file with the token every client of the embedded NATS server must present (nats://TOKEN@127.0.0.1:4222): letters, digits and -._~, at least 16. The default file is created with a random token (mode 0600) on first start; a file named here must exist"`
	DataDir            string        `koanf:"data-dir" default:"./data" example:"/var/lib/graphhook" usage:"directory for the embedded server's JetStream store (<data-dir>/jetstream) and the generated client-state and nats-token files"`
	Stream             string        `koanf:"stream" lib:"natspub.Stream" default:"GRAPH" example:"GRAPH" usage:"JetStream stream for notifications (created if missing; an existing one keeps its operator's replicas and limits)"`
	StreamReplicas     int           `koanf:"stream-replicas" lib:"natspub.Replicas" default:"1" example:"3" usage:"copies of --stream kept by a NATS cluster, applied when the stream is created (never lowered on an existing stream)"`
	QuarantineStream   string        `koanf:"quarantine-stream" lib:"natspub.QuarantineStream" default:"GRAPH_REJECTED" example:"GRAPH_REJECTED" usage:"JetStream stream for rejected items that passed the clientState check (bad or missing token, decrypt failure); they hold real clientStates and tokens: restrict access"`
	QuarantineReplicas int           `koanf:"quarantine-stream-replicas" lib:"natspub.QuarantineReplicas" shown:"--stream-replicas" example:"3" usage:"copies of --quarantine-stream and --unverified-stream, on create"`
	QuarantineMaxAge   time.Duration `koanf:"quarantine-max-age" default:"24h" example:"72h" usage:"how long --quarantine-stream keeps items"`
	QuarantineMaxBytes int64         `koanf:"quarantine-max-bytes" default:"64MiB" example:"256MiB" usage:"size bound of --quarantine-stream (oldest items dropped first)"`
	UnverifiedStream   string        `koanf:"unverified-stream" lib:"natspub.UnverifiedStream" default:"GRAPH_UNVERIFIED" example:"GRAPH_UNVERIFIED" usage:"JetStream stream for rejected items anyone can cause (wrong clientState, malformed), kept apart so a flood can never evict a genuine quarantined item"`
	UnverifiedMaxAge   time.Duration `koanf:"unverified-max-age" default:"24h" example:"6h" usage:"how long --unverified-stream keeps items (and so how long a flood can keep it full)"`
	UnverifiedMaxBytes int64         `koanf:"unverified-max-bytes" default:"64MiB" example:"16MiB" usage:"size bound of --unverified-stream; when full, new items are dropped and counted (graphhook_quarantine_dropped_total), still answered 202"`
	StreamMaxAge       time.Duration `koanf:"stream-max-age" default:"168h" example:"720h" usage:"how long --stream keeps events"`
	DuplicateWindow    time.Duration `koanf:"duplicate-window" default:"1h" example:"4h" usage:"how long the streams remember event ids, so Graph's redeliveries are stored once"`
	SubjectPrefix      string        `koanf:"subject-prefix" lib:"natspub.SubjectPrefix" default:"graph" example:"graph" usage:"first token(s) of the subjects events are published on"`
	PublishTimeout     time.Duration `koanf:"publish-timeout" default:"2s" example:"1500ms" usage:"how long one publish waits for JetStream's acknowledgement"`
	NATSCreds          string        `koanf:"nats-creds" example:"/run/secrets/graphhook.creds" usage:"NATS credentials (JWT + seed) file"`
	NATSNKey           string        `koanf:"nats-nkey" example:"/run/secrets/graphhook.nk" usage:"NATS NKey seed file"`
	NATSUser           string        `koanf:"nats-user" example:"graphhook" usage:"NATS user name"`
	NATSPassword       string        `koanf:"nats-password" example:"(set GRAPHHOOK_NATS_PASSWORD)" opts:"secret" usage:"NATS password, for --nats-user (prefer the environment variable: flags show in process listings)"`
	NATSToken          string        `koanf:"nats-token" example:"(set GRAPHHOOK_NATS_TOKEN)" opts:"secret" usage:"NATS authentication token (prefer the environment variable: flags show in process listings)"`
	NATSTLSCA          string        `koanf:"nats-tls-ca" example:"/etc/graphhook/nats-ca.pem" usage:"CA file to verify the NATS servers"`
	NATSTLSCert        string        `koanf:"nats-tls-cert" example:"/etc/graphhook/nats-client.pem" usage:"client certificate file for NATS (mutual TLS)"`
	NATSTLSKey         string        `koanf:"nats-tls-key" example:"/etc/graphhook/nats-client.key" usage:"client key file for --nats-tls-cert"`

	LogFormat string `koanf:"log-format" default:"text" example:"json" usage:"log format: text or json"`
	LogLevel  string `koanf:"log-level" default:"info" example:"debug" usage:"log level: debug, info, warn or error"`
	Version   bool   `koanf:"version" opts:"nofile,noenv" usage:"print the version and exit"`

	// Subscriptions is the YAML-only "subscriptions:" section: the
	// subscriptions the daemon keeps alive and the Graph credentials it
	// uses (see subsSection). Nil when the file has no such section.
	Subscriptions *subsSection `koanf:"subscriptions" opts:"section"`

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

// setting documents one configuration setting, as config's tags declare
// it: the flags, the environment variables, the YAML keys and the README
// table are all made from [settings].
type setting struct {
	name    string // flag name and YAML key; the env name is derived
	def     string // default, as it would be written on the command line
	shown   string // the default as documented, when it is derived (def is then empty)
	usage   string // one sentence for --help and the README
	example string // a valid value, shown in error messages
	lib     string // the library Config field it sets, "natspub.Stream" (see addLibrary)
	secret  bool   // the value is never shown
	split   bool   // a list that also accepts comma-separated values
	noFile  bool   // not read from the config file (--config, --version)
	noEnv   bool   // not read from the environment (--version)
	typ     reflect.Type
	field   int // the index of its field in config
}

// list and boolean report the setting's kind, from its field's type.
func (s setting) list() bool    { return s.typ == reflect.TypeFor[[]string]() }
func (s setting) boolean() bool { return s.typ == reflect.TypeFor[bool]() }

// envName returns the environment variable that sets s.
func (s setting) envName() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// exampleArg returns an example of a right value, as a flag when the
// example is a bare value.
func (s setting) exampleArg() string {
	if strings.HasPrefix(s.example, "--") || strings.HasPrefix(s.example, "(") {
		return s.example
	}
	return "--" + s.name + " " + s.example
}

// settings returns the documentation of every setting, from the tags of
// config's fields, in the order of --help and the README table.
func settings() []setting {
	t := reflect.TypeFor[config]()
	var set []setting
	for i := range t.NumField() {
		f := t.Field(i)
		opts := "," + f.Tag.Get("opts") + ","
		if f.Tag.Get("koanf") == "" || strings.Contains(opts, ",section,") {
			continue
		}
		set = append(set, setting{
			name: f.Tag.Get("koanf"), def: f.Tag.Get("default"), shown: f.Tag.Get("shown"),
			usage: f.Tag.Get("usage"), example: f.Tag.Get("example"), lib: f.Tag.Get("lib"),
			secret: strings.Contains(opts, ",secret,"), split: strings.Contains(opts, ",split,"),
			noFile: strings.Contains(opts, ",nofile,"), noEnv: strings.Contains(opts, ",noenv,"),
			typ: f.Type, field: i,
		})
	}
	return set
}

// settingByName returns the setting called name.
func settingByName(name string) setting {
	for _, s := range settings() {
		if s.name == name {
			return s
		}
	}
	panic("cmd/receiver: no setting " + name) // a programming error, caught by every test
}

// errUsage marks a command line that cannot be parsed.
var errUsage = errors.New("usage error")

// errHelp is returned for -h and --help.
var errHelp = pflag.ErrHelp

// newFlagSet returns the flags of set, with their defaults: koanf's
// posflag provider takes a flag's default for a setting neither the
// environment nor the file sets.
func newFlagSet(set []setting) *pflag.FlagSet {
	fs := pflag.NewFlagSet("receiver", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	for _, s := range set {
		usage := s.usage
		if s.shown != "" {
			usage += " (default " + s.shown + ")"
		}
		switch {
		case s.boolean():
			fs.Bool(s.name, false, usage)
		case s.list():
			fs.StringArray(s.name, nil, usage)
		default:
			fs.String(s.name, s.def, usage)
		}
	}
	return fs
}

// loadConfig merges the config file, the environment and args (in
// increasing precedence, over the flags' defaults) with koanf, which also
// types the values (see [decodeHook]). An environment variable that is
// set counts even when empty, as the flag with that value would
// (GRAPHHOOK_OPS_LISTEN= overrides a file's ops-listen), except that an
// empty list variable stops the start. It returns errHelp for -h, an error
// wrapping errUsage for a malformed command line, and problems (errConfig) for
// values that cannot be parsed. Semantic checks are done by validate.
func loadConfig(args []string, lookupEnv func(string) (string, bool)) (*config, error) {
	set := settings()
	fs := newFlagSet(set)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s (run with -h for the list of settings)", errUsage, flagErrorText(err))
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q (settings are flags, e.g. --listen :8080; subcommands are keygen, doctor, subscriptions, help config)", errUsage, fs.Arg(0))
	}

	c := &config{origin: map[string]string{}}
	k := koanf.New(".")
	file := fs.Lookup("config").Value.String()
	if file == "" {
		file, _ = lookupEnv(envPrefix + "CONFIG")
	}
	if file != "" {
		if err := loadConfigFile(k, file, set, c.origin); err != nil {
			return nil, &problem{setting: "--config", msg: err.Error(), err: err}
		}
	}

	var ps problems
	for _, s := range set {
		v, ok := lookupEnv(s.envName())
		switch {
		case !ok || s.noEnv:
		case v == "" && s.list():
			// An empty list variable is most likely a template value that
			// was never filled in; silently clearing --nats-url (embedded
			// server instead of the cluster) or --client-state (a random
			// one: everything quarantined) would be worse than stopping.
			ps.add(s.envName(), nil, "is set but empty; unset it to use the config file or the default, or give a value")
		default: // over the file's value, as koanf's env provider would
			_ = k.Set(s.name, v)
			c.origin[s.name] = s.envName()
		}
	}
	fs.Visit(func(f *pflag.Flag) { c.origin[f.Name] = "--" + f.Name })
	// Given flags win; the defaults fill what nothing else set.
	_ = k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		if !f.Changed && f.DefValue == "" {
			return "", nil
		}
		return f.Name, posflag.FlagVal(fs, f)
	}), nil)

	for _, s := range set {
		f := reflect.ValueOf(c).Elem().Field(s.field)
		if err := k.UnmarshalWithConf(s.name, f.Addr().Interface(), unmarshalConf(nil)); err != nil {
			ps.add(c.where(s.name), err, badValue(s, k.Get(s.name), err))
			continue
		}
		if s.split {
			var out []string
			for _, x := range f.Interface().([]string) {
				for part := range strings.SplitSeq(x, ",") {
					if part = strings.TrimSpace(part); part != "" {
						out = append(out, part)
					}
				}
			}
			f.Set(reflect.ValueOf(out))
		}
	}
	if k.Exists("subscriptions") {
		c.Subscriptions = &subsSection{}
		var md mapstructure.Metadata
		if err := k.UnmarshalWithConf("subscriptions", c.Subscriptions, unmarshalConf(&md)); err != nil {
			ps.add(c.where("subscriptions"), err, subsDecodeText(err))
		} else if len(md.Unused) > 0 {
			slices.Sort(md.Unused)
			ps.add(c.where("subscriptions"), nil, fmt.Sprintf("has keys the section does not know: %s (example: tenantId, clientId, clientSecretFile, desired; see \"Keeping subscriptions alive\" in the README)", strings.Join(md.Unused, ", ")))
		}
	}
	if len(ps) > 0 {
		return nil, ps.err()
	}
	return c, nil
}

// unmarshalConf is how koanf types the merged values: mapstructure builds
// the lists and the subscriptions section (a scalar where a list is
// wanted is a list of one), decodeHook parses the scalars, and md, if not
// nil, receives the keys no field took.
func unmarshalConf(md *mapstructure.Metadata) koanf.UnmarshalConf {
	return koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: decodeHook, WeaklyTypedInput: true, Metadata: md, TagName: "koanf",
	}}
}

// wanted is decodeHook's error: what a setting takes. The daemon's
// message (badValue) says it, without the value of a secret.
type wanted string

func (w wanted) Error() string { return "not " + string(w) }

// decodeHook parses the scalars of every setting the same way, wherever
// the value came from (a YAML number, a flag's string): durations and
// whole numbers must be positive, a size takes B, KiB, MiB suffixes, and
// a boolean is true or false. A list or a map where one value is wanted
// is refused; lists and the subscriptions section are mapstructure's.
func decodeHook(_, to reflect.Type, v any) (any, error) {
	want, parse := "", func(s string) (any, bool) { return s, true }
	switch to {
	case reflect.TypeFor[time.Duration]():
		want, parse = "a positive duration", func(s string) (any, bool) { d, err := time.ParseDuration(s); return d, err == nil && d > 0 }
	case reflect.TypeFor[int64](): // sizes
		want, parse = "a positive size", func(s string) (any, bool) { n, err := parseBytes(s); return n, err == nil }
	case reflect.TypeFor[int]():
		want, parse = "a positive whole number", func(s string) (any, bool) { n, err := strconv.Atoi(s); return n, err == nil && n > 0 }
	case reflect.TypeFor[bool]():
		want, parse = "a boolean", func(s string) (any, bool) { b, err := strconv.ParseBool(s); return b, err == nil }
	case reflect.TypeFor[string]():
	default:
		return v, nil
	}
	str, ok := scalar(v)
	if !ok {
		return nil, wanted("one value")
	}
	if out, ok := parse(str); ok {
		return out, nil
	}
	return nil, wanted(want)
}

// badValue says what s wants instead of v (decoding failed with err),
// showing v unless s is secret.
func badValue(s setting, v any, err error) string {
	w, ok := errors.AsType[wanted](err)
	switch {
	case s.list():
		return fmt.Sprintf("must be a value or a list of values (example: %s)", s.exampleArg())
	case !ok || w == "one value":
		return fmt.Sprintf("takes one value, not a list (example: %s)", s.exampleArg())
	}
	shown, example := "the value", s.exampleArg()
	if str, ok := scalar(v); ok && !s.secret {
		shown = strconv.Quote(str)
	}
	if s.boolean() {
		example = "true or false"
	}
	return fmt.Sprintf("%s is %v (example: %s)", shown, w, example)
}

// scalar returns a YAML scalar as the string it was written as.
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v), true
	}
	return "", false
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

// flagErrorText says what pflag's typed errors report, in the --flag
// style used everywhere else.
func flagErrorText(err error) string {
	if e, ok := errors.AsType[*pflag.NotExistError](err); ok {
		if short := e.GetSpecifiedShortnames(); short != "" {
			return "unknown flag -" + short + "; settings take two dashes (example: --" + short + ")"
		}
		return "unknown flag --" + e.GetSpecifiedName()
	}
	if e, ok := errors.AsType[*pflag.ValueRequiredError](err); ok {
		return "flag --" + e.GetSpecifiedName() + " needs a value"
	}
	return err.Error()
}

// maxConfigFileSize bounds what loadConfigFile reads.
const maxConfigFileSize = 1 << 20

// yamlLineRe finds the line number in a YAML parser message; the rest of
// the message is never shown, since it can quote the file.
var yamlLineRe = regexp.MustCompile(`^yaml: (?:unmarshal errors:\s+)?line ([0-9]+):`)

// loadConfigFile loads the YAML file path into k and records in origin
// where each top-level key is ("receiver.yaml line 4: key"). Unknown keys
// are errors, so that typos do not pass silently. Errors name the file and
// the line, never its content: the file may hold secrets.
func loadConfigFile(k *koanf.Koanf, path string, set []setting, origin map[string]string) error {
	data, err := readSmallFile(path, maxConfigFileSize)
	if err != nil {
		return fmt.Errorf("cannot read config file %s: %w", path, pathError(err))
	}
	if err := k.Load(rawbytes.Provider(data), yaml.Parser()); err != nil {
		where := "config file " + path
		if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
			where += " line " + m[1]
		}
		return fmt.Errorf("%s: %w; the parser's message is not shown, since it may quote the file (quote values that start with * & ! @ or `, indent with spaces; example of a valid file: \"listen: ':8443'\")", where, errConfigSyntax)
	}
	// The parser succeeded, so this does too; it only gives the lines.
	var doc yamlv3.Node
	_ = yamlv3.Unmarshal(data, &doc)
	lines := map[string]int{}
	if len(doc.Content) > 0 {
		for i, root := 0, doc.Content[0]; i+1 < len(root.Content); i += 2 {
			lines[root.Content[i].Value] = root.Content[i].Line
		}
	}
	for key, v := range k.Raw() {
		known := key == "subscriptions"
		for _, s := range set {
			known = known || s.name == key && !s.noFile
		}
		switch {
		case !known:
			return fmt.Errorf("config file %s line %d: unknown setting %q (example: listen: \":8443\"; the keys are the flag names, listed by \"receiver help config\", and the subscriptions section)", path, lines[key], key)
		case v == nil: // "key:" with no value: as if absent
			k.Delete(key)
		default:
			origin[key] = fmt.Sprintf("%s line %d: %s", path, lines[key], key)
		}
	}
	return nil
}
