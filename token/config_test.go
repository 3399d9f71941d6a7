package token_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/token"
)

func TestConfigValidate(t *testing.T) {
	ok := token.Config{AppIDs: []string{appID}}
	with := func(f func(*token.Config)) token.Config {
		c := ok
		f(&c)
		return c
	}
	const secretish = "https://user:s3cr3t@keys.example/keys"
	tests := []struct {
		name      string
		cfg       token.Config
		wantField string // "" means valid
	}{
		{"minimal", ok, ""},
		{"everything set", with(func(c *token.Config) {
			c.TenantIDs, c.Cloud, c.JWKSURL = []string{tenantA}, "usgov", "http://127.0.0.1:8080/keys"
			c.Issuers = []string{"https://sts.windows.net/{tenantid}/"}
			c.ClockSkew, c.CacheSize = token.MaxClockSkew, token.MaxCacheSize
		}), ""},
		{"cache disabled", with(func(c *token.Config) { c.CacheSize = -1 }), ""},
		{"no app ids", token.Config{}, "AppIDs"},
		{"empty app id", with(func(c *token.Config) { c.AppIDs = []string{appID, ""} }), "AppIDs"},
		{"app id with a trailing space", with(func(c *token.Config) { c.AppIDs = []string{appID + " "} }), "AppIDs"},
		{"empty tenant", with(func(c *token.Config) { c.TenantIDs = []string{""} }), "TenantIDs"},
		{"tenant with a newline", with(func(c *token.Config) { c.TenantIDs = []string{tenantA + "\n"} }), "TenantIDs"},
		{"unknown cloud", with(func(c *token.Config) { c.Cloud = "mars" }), "Cloud"},
		{"relative JWKS URL", with(func(c *token.Config) { c.JWKSURL = "/keys" }), "JWKSURL"},
		{"ftp JWKS URL", with(func(c *token.Config) { c.JWKSURL = "ftp://127.0.0.1/keys" }), "JWKSURL"},
		{"JWKS URL without host", with(func(c *token.Config) { c.JWKSURL = "https:///keys" }), "JWKSURL"},
		{"JWKS URL with credentials", with(func(c *token.Config) { c.JWKSURL = secretish }), "JWKSURL"},
		{"issuer without placeholder", with(func(c *token.Config) { c.Issuers = []string{"https://sts.windows.net/"} }), "Issuers"},
		{"issuer not a URL", with(func(c *token.Config) { c.Issuers = []string{"sts.windows.net/{tenantid}/"} }), "Issuers"},
		{"negative skew", with(func(c *token.Config) { c.ClockSkew = -time.Second }), "ClockSkew"},
		{"skew above the limit", with(func(c *token.Config) { c.ClockSkew = token.MaxClockSkew + time.Second }), "ClockSkew"},
		{"negative refresh interval", with(func(c *token.Config) { c.RefreshInterval = -time.Second }), "RefreshInterval"},
		{"negative min refresh interval", with(func(c *token.Config) { c.MinRefreshInterval = -time.Second }), "MinRefreshInterval"},
		{"negative retry interval", with(func(c *token.Config) { c.RetryInterval = -time.Second }), "RetryInterval"},
		{"cache above the limit", with(func(c *token.Config) { c.CacheSize = token.MaxCacheSize + 1 }), "CacheSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ce *token.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %v, want a *token.ConfigError", err)
			}
			if ce.Field != tc.wantField {
				t.Fatalf("Field = %q, want %q (%v)", ce.Field, tc.wantField, err)
			}
			if !errors.Is(err, token.ErrConfig) {
				t.Errorf("errors.Is(%v, ErrConfig) = false", err)
			}
			if want := "token: Config." + tc.wantField + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err, want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("Error() = %q quotes the URL", err)
			}
			// New refuses the same config with the same error.
			if _, nerr := token.New(t.Context(), tc.cfg); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("New() = %v, want %v", nerr, err)
			}
		})
	}
}

func TestConfigValidateReportsEveryField(t *testing.T) {
	err := token.Config{Cloud: "mars", ClockSkew: -1}.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *token.ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("%v is not a *ConfigError", e)
		}
		fields = append(fields, ce.Field)
	}
	if got := strings.Join(fields, ","); got != "AppIDs,Cloud,ClockSkew" {
		t.Fatalf("fields = %s, want AppIDs,Cloud,ClockSkew", got)
	}
}

// A key set that is not Microsoft's is right for a simulator only: New
// says so in the log (issue: --jwks-url accepted http and any host silently).
func TestNewWarnsAboutANonMicrosoftJWKSURL(t *testing.T) {
	srv := newJWKSServer(t, newSigner(t, "kid-1"))
	var logs testkit.SyncBuffer
	newValidator(t, t.Context(), srv, token.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	out := logs.String()
	for _, want := range []string{"level=WARN", "is plain http and is not a Microsoft identity host", "jwks_url=" + srv.keysURL()} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// Check a configuration before starting anything, for example when a
// daemon maps each field back to its own flag name.
func ExampleConfig_Validate() {
	err := token.Config{AppIDs: []string{"11111111-2222-3333-4444-555555555555"}, Cloud: "mars"}.Validate()
	var ce *token.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field)
		fmt.Println(err)
	}
	// Output:
	// Cloud
	// token: Config.Cloud: unknown cloud "mars" (want global, usgov or china)
}
