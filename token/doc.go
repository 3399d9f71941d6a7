// Package token validates the validationTokens that Microsoft Graph sends
// with rich change notifications (those carrying encryptedContent).
//
// A validation token is a JWT issued by the Microsoft identity platform. It
// proves that the batch was sent by Microsoft Graph, for our application,
// on behalf of a given tenant. Graph sends one token per distinct
// (app, tenant) pair in the batch. If any token fails, the whole batch is
// suspect: none of its items may reach the normal sink.
//
//	v, err := token.New(ctx, token.Config{AppIDs: []string{appID}})
//	...
//	err = v.Validate(ctx, batch.ValidationTokens, distinctTenantIDs)
//	switch {
//	case err == nil:                            // deliver
//	case errors.Is(err, token.ErrUnavailable): // answer 503: Graph retries
//	default:                                    // answer 202, quarantine the batch
//	}
//
// # What is checked
//
// Every token must pass all of these checks:
//
//   - Signature: RS256 only. The algorithm is fixed on our side, not read
//     from the token header. Tokens with "alg":"none", HS256 (including the
//     classic HMAC keyed with the RSA public key), RS512 or PS256 are
//     rejected. The key is chosen by the header's kid among the keys that
//     the Microsoft identity platform publishes (Config.Cloud or
//     Config.JWKSURL). Only RSA signing keys of at least 2048 bits are used.
//   - Lifetime: exp (required), nbf and iat, with Config.ClockSkew
//     (default 5 minutes) of tolerance.
//   - Audience: aud must be one of Config.AppIDs.
//   - Issuer: tid must be present and, if Config.TenantIDs is set, be one
//     of them. iss must be the v1.0 issuer (https://sts.windows.net/{tid}/)
//     or the v2.0 issuer (https://login.microsoftonline.com/{tid}/v2.0) of
//     that same tid. The issuer therefore cannot name one tenant while tid
//     names another.
//   - Publisher: the token must have been issued to Microsoft Graph Change
//     Tracking ([GraphChangeTrackingAppID]). For ver "1.0" the appid claim
//     must match, for ver "2.0" the azp claim. Without a known ver, every
//     claim of the two that is present must match, and at least one must
//     be present. Microsoft's .NET helper (ITokenValidableExtension) skips
//     this check. Without it, any application able to get a token for our
//     app id (any app in a tenant where our app has a service principal)
//     holds a Microsoft-signed token with the right aud, iss and tid, and
//     could forge notifications. We do not skip it.
//
// Then every tenant in the tenantIDs argument must be the tid of at least
// one valid token. This stops a valid token for tenant A from vouching for
// items that claim tenant B.
//
// # Keys
//
// Keys come from a jwk.Cache (github.com/lestrrat-go/jwx/v3, backed by
// httprc). Only the configured URL is fetched, and redirects are not
// followed by the default client. The cache is refetched in the background
// every Config.RefreshInterval (default 1 hour). Keys are never fetched on
// the request path, with one exception: a token whose kid is not in the
// cached set triggers one refresh, then one retry. That refresh happens at
// most once per Config.MinRefreshInterval (default 5 minutes), and
// concurrent callers wait for it instead of starting their own. A flood of
// forged kids therefore costs the key endpoint at most one request per
// interval. A kid that is still unknown after the refresh gives
// [ErrSignature]. If the refresh itself cannot reach the endpoint, the
// result is [ErrUnavailable]: Microsoft may have rotated keys and we cannot
// see the new key yet, so Graph should retry.
//
// Within the interval nothing is fetched, and an unknown kid is answered
// by what we know about it. A kid known to be absent (withdrawn from the
// key set, the one the last refresh was made for, or in a batch that
// arrived before the last refresh began) gives [ErrSignature]. Any other
// kid may be a key Microsoft published since the last refresh, so it gives
// [ErrUnavailable]: Graph retries, and the retry after the interval
// triggers the refresh that settles it. A genuine rotation is therefore
// never quarantined for arriving early; the price is that forged kids
// within the interval are answered 503 instead of being quarantined.
//
// [New] never fails because the key endpoint is down. It starts fetching in
// the background and retries with back-off (Config.RetryInterval, default
// 250ms, doubling up to [MaxRetryInterval], 1s), so it is ready within
// about a second of the endpoint answering again. Until the first key set
// arrives, Validate returns [ErrUnavailable] (fail closed, answer 503), and
// [Validator.Ready] reports false. [Validator.WaitReady] waits for the keys.
//
// # Caching
//
// The result of a valid token is cached under the SHA-256 of the token
// string until the token's exp (plus skew), in a cache bounded by
// Config.CacheSize (default 10,000). When the cache is full, expired
// entries are removed first, then the entry that expires soonest. A batch
// of 1,000 notifications that share one token costs one signature check,
// and later batches with the same token cost none. Only valid tokens are
// cached, and only their tid, exp and kid are kept, never the token.
// Tenant coverage is evaluated on every call. Each result remembers the kid of
// the key that signed its token: once Microsoft withdraws that key from
// its key set and the set is refreshed, the result is dropped and the
// token fails with [ErrSignature], although it has not expired.
//
// # Clouds
//
// Config.Cloud selects the authority: "global" (the default), "usgov" or
// "china". National-cloud issuer strings are best known but UNCONFIRMED by
// Microsoft's Graph documentation:
//
//   - usgov: https://sts.windows.net/{tenantid}/ and
//     https://login.microsoftonline.us/{tenantid}/v2.0, keys at
//     login.microsoftonline.us.
//   - china: https://sts.chinacloudapi.cn/{tenantid}/,
//     https://login.chinacloudapi.cn/{tenantid}/v2.0 and
//     https://login.partner.microsoftonline.cn/{tenantid}/v2.0, keys at
//     login.chinacloudapi.cn.
//
// It is also unconfirmed whether the publisher app id is the same in the
// national clouds. Set Config.Issuers and Config.JWKSURL if yours differ.
//
// # Errors and logs
//
// Validate returns an [*Error]. Its Kind is one of the sentinels in this
// package, and errors.Is matches it. Error text names the failed check and
// never contains the token. The Config.Logger receives operator messages
// only, such as "JWKS fetch failed", "JWKS loaded" or, at start, a warning
// that the JWKS URL is plain http or not a Microsoft identity host; never
// tokens. Configuration errors are [*ConfigError] values naming the field
// (see [Config.Validate]).
package token
