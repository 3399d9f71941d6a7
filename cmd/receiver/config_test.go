package main

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/token"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEmptyListVariableIsRefused: an empty GRAPHHOOK_NATS_URL (an unfilled
// template value, say) must not silently switch to the embedded server.
func TestEmptyListVariableIsRefused(t *testing.T) {
	for _, name := range []string{"GRAPHHOOK_NATS_URL", "GRAPHHOOK_CLIENT_STATE"} {
		env := map[string]string{name: ""}
		_, err := loadConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%s=\"\": err = %v, want a line naming it as empty", name, err)
		}
	}
}

func TestPrecedenceFlagOverEnvOverFileOverDefault(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "receiver.yaml", `
listen: "127.0.0.1:1001"
stream: FROMFILE
log-level: debug
app-id:
  - 11111111-2222-3333-4444-555555555555
  - 22222222-2222-3333-4444-555555555555
shutdown-timeout: 3s
ops-listen: "127.0.0.1:9999"
trusted-proxy: [10.0.0.0/8]
`)
	env := map[string]string{
		"GRAPHHOOK_CONFIG":     file,
		"GRAPHHOOK_LISTEN":     "127.0.0.1:1002",
		"GRAPHHOOK_STREAM":     "FROMENV",
		"GRAPHHOOK_TENANT":     "84bd8158-6d4d-4958-8b9f-9d6445542f95, 94bd8158-6d4d-4958-8b9f-9d6445542f95",
		"GRAPHHOOK_OPS_LISTEN": "",
	}
	c, err := loadConfig([]string{"--listen", "127.0.0.1:1003"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"listen: flag wins", c.Listen, "127.0.0.1:1003"},
		{"stream: env beats file", c.Stream, "FROMENV"},
		{"log-level: file beats default", c.LogLevel, "debug"},
		{"ops-listen: an empty env var is set, and beats the file", c.OpsListen, ""},
		{"trusted-proxy: file", strings.Join(c.TrustedProxies, " "), "10.0.0.0/8"},
		{"data-dir: default", c.DataDir, "./data"},
		{"shutdown-timeout: file", c.ShutdownTimeout.String(), "3s"},
		{"app-id: YAML list", strings.Join(c.AppIDs, " "), "11111111-2222-3333-4444-555555555555 22222222-2222-3333-4444-555555555555"},
		{"tenant: comma list from env", strings.Join(c.Tenants, " "), "84bd8158-6d4d-4958-8b9f-9d6445542f95 94bd8158-6d4d-4958-8b9f-9d6445542f95"},
		{"max-body-bytes: default 4MiB", time.Duration(c.MaxBodyBytes).String(), time.Duration(4 << 20).String()},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if got := c.where("stream"); got != "GRAPHHOOK_STREAM" {
		t.Errorf("origin of stream: %q, want GRAPHHOOK_STREAM", got)
	}
	if got := c.where("log-level"); got != file+" line 4: log-level" {
		t.Errorf("origin of log-level: %q", got)
	}
	if got := c.where("ops-listen"); got != "GRAPHHOOK_OPS_LISTEN" {
		t.Errorf("origin of ops-listen: %q, want GRAPHHOOK_OPS_LISTEN", got)
	}
}

func TestRepeatableFlags(t *testing.T) {
	c, err := loadConfig([]string{
		"--client-state", "a,b", "--client-state", "c",
		"--app-id", "11111111-2222-3333-4444-555555555555,22222222-2222-3333-4444-555555555555",
		"--app-id", "33333333-2222-3333-4444-555555555555",
		"--insecure-skip-token-validation",
	}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ClientStates, []string{"a,b", "c"}) {
		t.Errorf("client states %q: a clientState may hold commas, so it is never split", c.ClientStates)
	}
	if len(c.AppIDs) != 3 {
		t.Errorf("app ids %q, want 3", c.AppIDs)
	}
	if !c.InsecureSkipTokenValidation {
		t.Error("bool flag without value not set")
	}
}

func TestEveryEnvNameIsDerivedFromTheFlag(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range settings() {
		if seen[s.name] {
			t.Errorf("setting %s twice", s.name)
		}
		seen[s.name] = true
		want := "GRAPHHOOK_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
		if s.envName() != want {
			t.Errorf("%s: env %s, want %s", s.name, s.envName(), want)
		}
		if s.usage == "" {
			t.Errorf("%s has no usage", s.name)
		}
		if !s.boolean() && s.example == "" {
			t.Errorf("%s has no example for error messages", s.name)
		}
	}
	// Every default must be accepted by validate.
	c, err := loadConfig(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if ps := c.validate(); len(ps) > 0 {
		t.Errorf("the defaults do not validate: %v", ps.err())
	}
}

// pfxFile writes a PKCS#12 file protected by password and returns its path.
func pfxFile(t *testing.T, dir, password string) string {
	t.Helper()
	k, err := decrypt.GenerateKey(2048, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pkcs12.Modern.Encode(k.Private, k.Certificate, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "key.pfx")
	if err := os.WriteFile(p, der, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadConfigurationIsOneClearLine calls run() with configurations the
// receiver must refuse. Each fails before serving, with one line naming
// the setting, and without echoing secrets.
func TestBadConfigurationIsOneClearLine(t *testing.T) {
	dir := t.TempDir()
	const pfxPassword = "right-pfx-password-42"
	pfx := pfxFile(t, dir, pfxPassword)
	garbage := writeFile(t, dir, "garbage.pfx", "\x30\x82\x01\x00not a pfx at all")
	emptyStates := writeFile(t, dir, "empty-states", "\n\n")
	longStates := writeFile(t, dir, "long-states", "ok-value\n"+strings.Repeat("s", 129)+"\n")
	badYAML := writeFile(t, dir, "bad.yaml", "listen: ':8080'\nclientstate: x\n")
	shortToken := writeFile(t, dir, "short-token", "tok-Zq81xK\n")
	urlToken := writeFile(t, dir, "url-token", "tok-Zq81xKp0wLmN3v@B7:x\n")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()

	for _, tc := range []struct {
		name       string
		args       []string
		wantErr    error
		wantPrefix string // the line starts with this
		secret     string // must not appear in the error
	}{
		{"missing key file", []string{"--key", filepath.Join(dir, "nope.pem") + ",id=k1", "--insecure-skip-token-validation"},
			fs.ErrNotExist, "--key: key file ", ""},
		{"PFX with wrong password", []string{"--key", pfx + ",id=k1", "--key-password", "wrong-password-17", "--insecure-skip-token-validation"},
			decrypt.ErrKeyPassword, "--key: cannot open PFX file ", "wrong-password-17"},
		{"PFX without password", []string{"--key", pfx, "--insecure-skip-token-validation"},
			decrypt.ErrKeyPassword, "--key: cannot open PFX file ", ""},
		{"unreadable PFX", []string{"--key", garbage + ",id=k1", "--insecure-skip-token-validation"},
			decrypt.ErrKeyFile, "--key: cannot use key file ", ""},
		{"key option typo", []string{"--key", pfx + ",ID=k1", "--insecure-skip-token-validation"},
			errConfig, "--key: ", ""},
		{"key without app id", []string{"--key", pfx, "--key-password", pfxPassword},
			errConfig, "--key: rich notifications need token validation", pfxPassword},
		{"bad NATS URL", []string{"--nats-url", "http://127.0.0.1:4222"},
			errConfig, "--nats-url: ", ""},
		{"NATS URL with password", []string{"--nats-url", "nats://user:hunter2-secret@127.0.0.1:4222"},
			errConfig, "--nats-url: carries credentials", "hunter2-secret"},
		{"NATS URL with password and wrong scheme", []string{"--nats-url", "http://user:hunter3-secret@127.0.0.1:4222"},
			errConfig, "--nats-url: ", "hunter3-secret"},
		{"bad JWKS URL", []string{"--app-id", exampleGUID, "--jwks-url", "keys.json"},
			errConfig, "--jwks-url: ", ""},
		{"bad app id", []string{"--app-id", "my-app"},
			errConfig, "--app-id: \"my-app\" is not an application id GUID", ""},
		{"clientState over 128", []string{"--client-state", strings.Repeat("c", 129)},
			errConfig, "--client-state: entry 1 is 129 characters, over Graph's limit of 128", strings.Repeat("c", 20)},
		{"clientState file line over 128", []string{"--client-state-file", longStates},
			errConfig, "--client-state-file: line 2 of ", strings.Repeat("s", 20)},
		{"clientState file with no value", []string{"--client-state-file", emptyStates},
			errConfig, "--client-state-file: ", ""},
		{"clientState file missing", []string{"--client-state-file", filepath.Join(dir, "absent")},
			fs.ErrNotExist, "--client-state-file: cannot read ", ""},
		{"port in use", []string{"--listen", busyAddr},
			syscall.EADDRINUSE, "--listen: cannot listen on " + busyAddr + ": address already in use", ""},
		{"embedded NATS port in use", []string{"--embedded-nats-listen", busyAddr},
			syscall.EADDRINUSE, "--embedded-nats-listen: cannot listen on " + busyAddr, ""},
		{"unknown flag", []string{"--client-sate", "x"},
			errUsage, "usage error: unknown flag --client-sate", ""},
		{"stray argument", []string{"serve"},
			errUsage, "usage error: unexpected argument \"serve\"", ""},
		{"one dash", []string{"-listen", "127.0.0.1:0"},
			errUsage, "usage error: unknown flag -listen; settings take two dashes (example: --listen)", ""},
		{"flag without value", []string{"--listen"},
			errUsage, "usage error: flag --listen needs a value", ""},
		{"bad duration", []string{"--shutdown-timeout", "10"},
			errConfig, "--shutdown-timeout: \"10\" is not a positive duration", ""},
		{"body limit above what NATS can carry", []string{"--max-body-bytes", "64MiB"},
			errConfig, "--max-body-bytes: 64MiB is above the largest supported body, 32MiB", ""},
		{"batch timeout over Graph's limit", []string{"--batch-timeout", "5s"},
			errConfig, "--batch-timeout: ", ""},
		{"bad log format", []string{"--log-format", "xml"},
			errConfig, "--log-format: \"xml\" is not text or json", ""},
		{"path without slash", []string{"--notification-path", "notifications"},
			errConfig, "--notification-path: \"notifications\" must start with /", ""},
		{"TLS cert without key", []string{"--tls-cert", pfx},
			errConfig, "--tls-key: is required with --tls-cert", ""},
		{"TLS files unusable", []string{"--tls-cert", garbage, "--tls-key", garbage},
			errConfig, "--tls-cert: cannot load the TLS certificate", ""},
		{"YAML typo", []string{"--config", badYAML},
			errConfig, "--config: config file " + badYAML + " line 2: unknown setting \"clientstate\"", ""},
		{"NATS token file too short", []string{"--embedded-nats-token-file", shortToken},
			errConfig, "--embedded-nats-token-file: " + shortToken + " holds a token shorter than 16 characters", "tok-Zq81xK"},
		{"NATS token file not fit for a URL", []string{"--embedded-nats-token-file", urlToken},
			errConfig, "--embedded-nats-token-file: " + urlToken + " holds characters other than", "Zq81xKp0wLmN3v"},
		{"NATS token file missing", []string{"--embedded-nats-token-file", filepath.Join(dir, "absent-token")},
			fs.ErrNotExist, "--embedded-nats-token-file: cannot read " + filepath.Join(dir, "absent-token"), ""},
		{"NATS token file with an external server", []string{"--nats-url", "nats://127.0.0.1:4222", "--embedded-nats-token-file", shortToken},
			errConfig, "--embedded-nats-token-file: applies to the embedded NATS server", ""},
		{"NATS credentials with embedded server", []string{"--nats-creds", pfx},
			errConfig, "--nats-creds: applies to an external NATS server", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(baseArgs(t.TempDir(), "--client-state", "a-long-enough-client-state-value"), tc.args...)
			if slices.Contains(tc.args, "--client-state-file") || slices.Contains(tc.args, "--client-state") {
				args = append(baseArgs(t.TempDir()), tc.args...)
			}
			var stdout, stderr testkit.SyncBuffer
			err := run(t.Context(), args, noEnv, &stdout, &stderr)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantErr)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines:\n%s", msg)
			}
			if !strings.HasPrefix(msg, tc.wantPrefix) {
				t.Errorf("error:\n%s\nwant it to start with:\n%s", msg, tc.wantPrefix)
			}
			if !strings.Contains(msg, "example") && !errors.Is(err, errUsage) {
				t.Errorf("error gives no example of a right value: %s", msg)
			}
			if tc.secret != "" && (strings.Contains(msg, tc.secret) || strings.Contains(stderr.String(), tc.secret)) {
				t.Errorf("a secret leaked into the error or the log: %s", msg)
			}
			if strings.Contains(stdout.String(), "is running") {
				t.Error("the receiver started")
			}
		})
	}
}

func TestSeveralProblemsAreReportedTogether(t *testing.T) {
	err := run(t.Context(), baseArgs(t.TempDir(), "--log-format", "xml", "--log-level", "loud", "--app-id", "x"),
		noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{})
	if !errors.Is(err, errConfig) {
		t.Fatalf("err = %v, want errConfig", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, one per problem:\n%s", err)
	}
	if got := indentLines(err.Error()); strings.Count(got, "receiver: ") != 2 {
		t.Errorf("indentLines: %q", got)
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"--version"}, {"help", "config"}} {
		var out testkit.SyncBuffer
		if err := run(t.Context(), args, noEnv, &out, &testkit.SyncBuffer{}); err != nil && !errors.Is(err, errHelp) {
			t.Errorf("%v: %v", args, err)
		}
		if out.String() == "" {
			t.Errorf("%v printed nothing", args)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"4194304": 4 << 20, "4MiB": 4 << 20, "512 KiB": 512 << 10, "1GiB": 1 << 30, "10B": 10, "2MB": 2e6} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "4TB", "lots", "1.5MiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestConfigFileSyntaxErrorsNeverQuoteTheFile checks that a config file the
// YAML parser rejects is reported by file and, where the parser gives one,
// line, and never with the parser's text, which can quote a secret (an
// alias's name).
func TestConfigFileSyntaxErrorsNeverQuoteTheFile(t *testing.T) {
	const secret = "Hunter2-secret"
	for _, tc := range []struct {
		name, file string
		wantErr    error
		wantLine   string // " line N: " after the path, or ": " when the parser gives no line
	}{
		{"alias as key-password", "listen: ':8080'\nkey-password: *" + secret + "\n", errConfigSyntax, ": "},
		{"alias as client-state", "client-state: *" + secret + "\n", errConfigSyntax, ": "},
		{"alias in a client-state list", "client-state:\n  - ok-value-one\n  - *" + secret + "\n", errConfigSyntax, ": "},
		{"alias as nats-password", "nats-url: nats://127.0.0.1:4222\nnats-user: u\nnats-password: *" + secret + "\n", errConfigSyntax, ": "},
		{"alias in a flow list as nats-token", "nats-token: [*" + secret + "]\n", errConfigSyntax, ": "},
		{"unclosed quote", "listen: ':8080'\nkey-password: \"" + secret + "\n", errConfigSyntax, " line 2: "},
		{"tab indentation", "client-state:\n\t- " + secret + "\n", errConfigSyntax, " line 2: "},
		{"reserved first character", "key-password: @" + secret + "\n", errConfigSyntax, ": "},
		{"colon in a value", "client-state: a: " + secret + "\n", errConfigSyntax, ": "},
		{"unclosed bracket", "client-state: [" + secret + "\n", errConfigSyntax, " line 1: "},
		{"unknown escape", "key-password: \"\\q" + secret + "\"\n", errConfigSyntax, ": "},
		{"not UTF-8", "\xff\xfe\x00" + secret, errConfigSyntax, ": "},
		{"a list, not a map", "- " + secret + "\n", errConfigSyntax, " line 1: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "receiver.yaml", tc.file)
			_, err := loadConfig([]string{"--config", path}, noEnv)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantErr)
			}
			msg := err.Error()
			if strings.Contains(msg, secret) || strings.Contains(msg, "Hunter2") {
				t.Fatalf("the error quotes the file's content: %s", msg)
			}
			if want := "--config: config file " + path + tc.wantLine + "not valid YAML"; !strings.HasPrefix(msg, want) {
				t.Errorf("error:\n%s\nwant it to start with:\n%s", msg, want)
			}
			if !strings.Contains(msg, "example") {
				t.Errorf("error %q lacks an example", msg)
			}
		})
	}
}

// pemKeyFile writes a new key with its certificate as PEM and returns its path.
func pemKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	k, err := decrypt.GenerateKey(2048, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, string(b))
}

// TestKeysMayShareAnID checks the rotation Graph allows: a renewed
// certificate under the same encryptionCertificateId. Two such keys load;
// the same key twice is refused with advice that matches (keys are told
// apart by thumbprint, not by an id the operator cannot choose).
func TestKeysMayShareAnID(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := pemKeyFile(t, dir, "key-2025.pem"), pemKeyFile(t, dir, "key-2026.pem")
	for _, tc := range []struct {
		name     string
		keys     []string
		wantErr  error
		wantKeys int
	}{
		{"renewed certificate, same id", []string{oldKey + ",id=key-1", newKey + ",id=key-1"}, nil, 2},
		{"same key twice", []string{oldKey + ",id=key-1", oldKey + ",id=key-2"}, decrypt.ErrDuplicateKey, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--insecure-skip-token-validation", "--client-state", "a-long-enough-client-state-value", "--data-dir", t.TempDir()}
			for _, k := range tc.keys {
				args = append(args, "--key", k)
			}
			c, err := loadConfig(args, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			sec, ps := c.loadSecrets()
			err = ps.err()
			if tc.wantErr == nil {
				if err != nil || len(sec.keys) != tc.wantKeys {
					t.Fatalf("err = %v, %d keys; want nil, %d keys", err, len(sec.keys), tc.wantKeys)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantErr)
			}
			msg := err.Error()
			if strings.Contains(msg, "its own id") || !strings.Contains(msg, "told apart by certificate thumbprint") || !strings.Contains(msg, "example: --key") {
				t.Errorf("advice does not match how keys are told apart: %s", msg)
			}
		})
	}
}

// TestLibraryRulesAreReportedUnderTheirSetting checks settings whose rules
// a library keeps: the daemon reports the library's reason under the
// setting the user wrote, one line, with an example.
func TestLibraryRulesAreReportedUnderTheirSetting(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    error
		wantPrefix string
	}{
		{"stream name with a dot", []string{"--stream", "GRAPH.V2"}, nil, natspub.ErrInvalidConfig, "--stream: "},
		{"quarantine stream equals the stream", nil, map[string]string{"GRAPHHOOK_QUARANTINE_STREAM": "GRAPH"}, natspub.ErrInvalidConfig, "GRAPHHOOK_QUARANTINE_STREAM: "},
		{"wildcard subject prefix", []string{"--subject-prefix", "graph.*"}, nil, natspub.ErrInvalidConfig, "--subject-prefix: "},
		{"too many replicas", []string{"--stream-replicas", "7"}, nil, natspub.ErrInvalidConfig, "--stream-replicas: "},
		{"unknown cloud", []string{"--app-id", exampleGUID, "--cloud", "mars"}, nil, token.ErrConfig, "--cloud: "},
		{"JWKS URL with credentials", []string{"--app-id", exampleGUID, "--jwks-url", "https://user:pw@keys.example.com/keys"}, nil, token.ErrConfig, "--jwks-url: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			err = c.validate().err()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want errors.Is %v", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "user:pw") {
				t.Errorf("the error quotes the URL's credentials: %v", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.wantPrefix) || strings.Contains(msg, "\n") || !strings.Contains(msg, "example: --") {
				t.Errorf("error %q: want one line starting %q with an example", msg, tc.wantPrefix)
			}
		})
	}
}
