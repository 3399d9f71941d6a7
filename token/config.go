package token

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Limits enforced by [Config.Validate].
const (
	// MaxClockSkew is the largest accepted Config.ClockSkew. Validation
	// tokens live 1 to 24 hours; a larger tolerance would make their
	// lifetime meaningless.
	MaxClockSkew = time.Hour

	// MaxCacheSize is the largest accepted Config.CacheSize (an entry is
	// about 150 bytes, so about 150 MB).
	MaxCacheSize = 1_000_000
)

// ConfigError reports an invalid [Config] field. errors.Is(err, ErrConfig)
// holds for it. Its text never quotes a URL (which may carry credentials)
// or an id; it names the field and what is wrong.
type ConfigError struct {
	// Field is the Config field's Go name, e.g. "AppIDs" or "JWKSURL".
	Field string
	// Err is what is wrong.
	Err error
}

// Error returns "token: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "token: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// Validate checks c as [New] does, without starting anything. It returns
// nil, or one [*ConfigError] per invalid field joined with [errors.Join]
// (find the first with errors.As; errors.Is(err, ErrConfig) holds).
//
// The rules: AppIDs is required and, like TenantIDs, holds no empty
// entries and none with surrounding white space (they could never match a
// token). Cloud is "", "global", "usgov" or "china". JWKSURL, when set, is
// an absolute http or https URL with a host and no user information.
// Issuers each contain [TenantPlaceholder] and, with it filled in, are
// absolute http or https URLs. ClockSkew is 0 to [MaxClockSkew]; the
// other durations are not negative; CacheSize is at most [MaxCacheSize]
// (negative disables the cache).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	if len(c.AppIDs) == 0 {
		bad("AppIDs", "required: the application (client) id of the app that created the subscriptions")
	}
	checkIDs := func(field string, ids []string) {
		for i, id := range ids {
			switch {
			case id == "":
				bad(field, "entry %d is empty", i+1)
			case strings.TrimSpace(id) != id:
				bad(field, "entry %d has leading or trailing white space", i+1)
			}
		}
	}
	checkIDs("AppIDs", c.AppIDs)
	checkIDs("TenantIDs", c.TenantIDs)
	if _, ok := cloudFor(c.Cloud); !ok {
		bad("Cloud", "unknown cloud %q (want global, usgov or china)", clipValue(c.Cloud))
	}
	if c.JWKSURL != "" {
		if err := checkURL(c.JWKSURL); err != nil {
			bad("JWKSURL", "%w", err)
		}
	}
	for i, iss := range c.Issuers {
		if !strings.Contains(iss, TenantPlaceholder) {
			bad("Issuers", "entry %d lacks %s", i+1, TenantPlaceholder)
			continue
		}
		if err := checkURL(strings.ReplaceAll(iss, TenantPlaceholder, "tenant")); err != nil {
			bad("Issuers", "entry %d: %w", i+1, err)
		}
	}
	switch {
	case c.ClockSkew < 0:
		bad("ClockSkew", "negative")
	case c.ClockSkew > MaxClockSkew:
		bad("ClockSkew", "%v is more than %v", c.ClockSkew, MaxClockSkew)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"MinRefreshInterval", c.MinRefreshInterval},
		{"RefreshInterval", c.RefreshInterval},
		{"RetryInterval", c.RetryInterval},
	} {
		if d.v < 0 {
			bad(d.field, "negative")
		}
	}
	if c.CacheSize > MaxCacheSize {
		bad("CacheSize", "%d is more than %d", c.CacheSize, MaxCacheSize)
	}
	return errors.Join(errs...)
}

// checkURL reports why s is not an absolute http(s) URL with a host and
// without user information. The error never contains s.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an absolute http(s) URL")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not contain user information")
	}
	return nil
}

// clipValue bounds a non-secret configuration value quoted in an error.
func clipValue(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// jwksURLWarning returns why a valid JWKSURL deserves an operator's
// attention ("" if it does not): plain http, or a host that is not one of
// Microsoft's. Such settings are right for a simulator and wrong in
// production, where whoever controls that host can sign tokens we accept.
func jwksURLWarning(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	var why []string
	if u.Scheme != "https" {
		why = append(why, "is plain http")
	}
	switch strings.ToLower(u.Hostname()) {
	case "login.microsoftonline.com", "login.microsoftonline.us", // the hosts of cloudFor's key sets
		"login.chinacloudapi.cn", "login.partner.microsoftonline.cn":
	default:
		why = append(why, "is not a Microsoft identity host")
	}
	return strings.Join(why, " and ")
}
