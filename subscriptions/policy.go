package subscriptions

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Defaults of Policy.
const (
	DefaultMinBackoff = 30 * time.Second
	DefaultMaxBackoff = 15 * time.Minute
	// MinMargin is the smallest gap kept between a requested lifetime and
	// the resource's cap: Graph checks the cap when the request arrives, a
	// few seconds after we computed it (protocol doc §11).
	MinMargin = 2 * time.Minute
	// MinGraphLifetime is how far ahead Graph raises a shorter expiration.
	MinGraphLifetime = 45 * time.Minute
	// ReauthorizeQuiet is the window in which a subscription gets at most
	// one PATCH or reauthorize (protocol doc §7).
	ReauthorizeQuiet = 10 * time.Minute
)

// Policy is the renewal policy. The zero value is the default policy.
//
// A subscription is requested with lifetime L = cap − margin, where cap is
// the resource's maximum lifetime (the table of protocol doc §8, a cap
// learned from Graph's lifetime-limit answer, or Spec.MaxLifetime) and the
// margin is the larger of [MinMargin] and cap/20. It is renewed when a
// third of L remains, plus a random jitter of up to a tenth of L, so
// renewals land between 0.57·L and 0.67·L after the previous one and at
// least two attempts (with backoff) fit before expiry.
type Policy struct {
	// MinBackoff is the first wait after a transient failure; it doubles
	// per failure up to MaxBackoff, and never ends before a Retry-After.
	// Defaults 30 s and 15 min.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// NoJitter turns the renewal jitter off (tests that want exact times).
	// Default false.
	NoJitter bool
}

func (p Policy) withDefaults() Policy {
	if p.MinBackoff <= 0 {
		p.MinBackoff = DefaultMinBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.MaxBackoff < p.MinBackoff {
		p.MaxBackoff = p.MinBackoff
	}
	return p
}

// Lifetime returns the lifetime requested under cap.
func (p Policy) Lifetime(cap time.Duration) time.Duration {
	margin := max(MinMargin, cap/20)
	return max(cap-margin, time.Minute)
}

// RenewAt returns when a subscription expiring at exp, requested with
// lifetime l, is renewed.
func (p Policy) RenewAt(exp time.Time, l time.Duration) time.Time {
	lead := l / 3
	if !p.NoJitter {
		lead += rand.N(l/10 + 1)
	}
	return exp.Add(-lead)
}

// Backoff returns the wait after the n-th consecutive failure (n ≥ 1),
// at least retryAfter.
func (p Policy) Backoff(n int, retryAfter time.Duration) time.Duration {
	d := p.MinBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if !p.NoJitter {
		d = d/2 + rand.N(d/2+1)
	}
	return max(d, retryAfter)
}

// MaxLifetime returns the maximum subscription lifetime of resource, from
// the table of protocol doc §8 (current values; Outlook with resource data
// 1,440 minutes). Unknown resources get 4,230 minutes, the oldest and
// smallest common cap.
func MaxLifetime(resource string, includeResourceData bool) time.Duration {
	m := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	segs := strings.Split(normalizeResource(resource), "/")
	has := func(names ...string) bool {
		for _, s := range segs {
			for _, n := range names {
				if s == n {
					return true
				}
			}
		}
		return false
	}
	first := segs[0]
	switch {
	case has("presence", "presences"):
		return m(60)
	case first == "communications" && has("callrecords"):
		return m(4230)
	case has("schedule") && has("shifts", "openshiftchangerequests", "swapshiftschangerequests", "offershiftrequests", "timeoffrequests"):
		return m(360)
	case first == "teams" || first == "chats" || has("chats", "channels", "getallmessages", "onlinemeetings", "installedapps", "getallrecordings", "getalltranscripts"):
		return m(4320)
	case first == "copilot" || has("aiinteractionhistory", "interactionhistory"):
		return m(4320)
	case first == "security" && has("alerts", "alerts_v2"):
		return m(43200)
	case has("approval", "approvals", "approvalitems"):
		return m(43200)
	case first == "groups" && has("conversations", "threads"):
		return m(4230)
	case has("drive", "drives", "root"), first == "sites" && has("lists"), has("healthmonitoring"):
		return m(42300)
	case has("messages", "mailfolders", "events", "calendar", "calendars", "contacts", "contactfolders"):
		if includeResourceData {
			return m(1440)
		}
		return m(10080)
	case first == "users" && len(segs) <= 2, first == "groups" && len(segs) <= 2,
		first == "directory", first == "serviceprincipals", first == "applications", first == "devices", first == "organization":
		return m(41760)
	}
	return m(4230)
}

// normalizeResource lower-cases a resource path and drops a leading slash,
// a query and OData key syntax: teams('a')/channels('b') becomes
// teams/a/channels/b, as Graph compares them for 409.
func normalizeResource(r string) string {
	if i := strings.IndexByte(r, '?'); i >= 0 {
		r = r[:i]
	}
	r = strings.ToLower(strings.Trim(strings.TrimSpace(r), "/"))
	var b strings.Builder
	for _, c := range r {
		switch c {
		case '(':
			b.WriteByte('/')
		case ')', '\'':
		default:
			b.WriteRune(c)
		}
	}
	return strings.Trim(b.String(), "/")
}

// normalizeChangeType sorts and deduplicates a changeType list.
func normalizeChangeType(ct string) string {
	var have [3]bool
	for t := range strings.SplitSeq(ct, ",") {
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "created":
			have[0] = true
		case "updated":
			have[1] = true
		case "deleted":
			have[2] = true
		}
	}
	var out []string
	for i, n := range []string{"created", "updated", "deleted"} {
		if have[i] {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}
