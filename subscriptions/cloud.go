package subscriptions

import (
	"fmt"
	"net/url"
	"strings"
)

// Cloud names a Microsoft cloud: its Graph endpoint and its Microsoft
// Entra ID authority host (protocol doc §6, "National clouds").
type Cloud string

// The clouds graphhook knows. The zero value means CloudGlobal.
const (
	CloudGlobal   Cloud = "global"   // graph.microsoft.com, login.microsoftonline.com
	CloudUSGov    Cloud = "usgov"    // graph.microsoft.us (GCC High), login.microsoftonline.us
	CloudUSGovDoD Cloud = "usgovdod" // dod-graph.microsoft.us (DoD), login.microsoftonline.us
	CloudChina    Cloud = "china"    // microsoftgraph.chinacloudapi.cn (21Vianet), login.chinacloudapi.cn
)

// Graph API base URLs (v1.0) and authority hosts of the clouds.
const (
	GlobalGraphURL   = "https://graph.microsoft.com/v1.0"
	USGovGraphURL    = "https://graph.microsoft.us/v1.0"
	USGovDoDGraphURL = "https://dod-graph.microsoft.us/v1.0"
	ChinaGraphURL    = "https://microsoftgraph.chinacloudapi.cn/v1.0"

	GlobalAuthorityHost = "https://login.microsoftonline.com/"
	USGovAuthorityHost  = "https://login.microsoftonline.us/"
	ChinaAuthorityHost  = "https://login.chinacloudapi.cn/"
)

// ParseCloud returns the Cloud named s (global, usgov, usgovdod, china;
// case-insensitive; "" is global).
func ParseCloud(s string) (Cloud, error) {
	c := Cloud(strings.ToLower(strings.TrimSpace(s)))
	if c == "" {
		return CloudGlobal, nil
	}
	switch c {
	case CloudGlobal, CloudUSGov, CloudUSGovDoD, CloudChina:
		return c, nil
	}
	return "", fmt.Errorf("subscriptions: cloud %q: %w: use global, usgov, usgovdod or china", s, ErrBadValue)
}

// GraphURL returns the cloud's Graph v1.0 base URL.
func (c Cloud) GraphURL() string {
	switch c {
	case CloudUSGov:
		return USGovGraphURL
	case CloudUSGovDoD:
		return USGovDoDGraphURL
	case CloudChina:
		return ChinaGraphURL
	}
	return GlobalGraphURL
}

// AuthorityHost returns the cloud's Microsoft Entra ID authority host.
func (c Cloud) AuthorityHost() string {
	switch c {
	case CloudUSGov, CloudUSGovDoD:
		return USGovAuthorityHost
	case CloudChina:
		return ChinaAuthorityHost
	}
	return GlobalAuthorityHost
}

// scopeFor returns the ".default" scope of the Graph service at baseURL:
// its origin plus "/.default".
func scopeFor(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%w: not an absolute URL", ErrBadValue)
	}
	return u.Scheme + "://" + u.Host + "/.default", nil
}
