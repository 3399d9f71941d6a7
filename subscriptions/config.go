package subscriptions

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultBucket = "graphhook-subscriptions"
	// MaxReplicas is JetStream's most replicas of a bucket or stream.
	MaxReplicas          = 5
	DefaultEventStream   = "GRAPH_SUBSCRIPTIONS"
	DefaultSubjectPrefix = "graph"
	DefaultGraphStream   = "GRAPH"
	DefaultConsumer      = "graphhook-subscriptions"
	DefaultOwner         = "graphhook"
	DefaultLeaseTTL      = 30 * time.Second
	DefaultLookupWait    = 500 * time.Millisecond
	// DefaultRetireAfter is how long an old encryption key is kept after
	// the last notification encrypted for it, and after the last
	// subscription moved off it: Graph retries a delivery for up to 4 h.
	DefaultRetireAfter = 4*time.Hour + 10*time.Minute
	// MaxClientStateLen is the longest clientState Graph accepts on a
	// subscription (protocol doc §4). Generated ones are 64 characters.
	MaxClientStateLen = 128
	// generatedClientStateBytes yields 64 base64url characters.
	generatedClientStateBytes = 48
)

// Spec declares one subscription the Manager keeps alive.
type Spec struct {
	// Resource is the watched resource path, e.g. "users/{id}/messages".
	// Required.
	Resource string
	// ChangeType is a comma list of created, updated, deleted. Required.
	ChangeType string
	// NotificationURL is the receiver's public HTTPS URL. Required.
	NotificationURL string
	// LifecycleNotificationURL receives lifecycle events. Optional, but
	// without it the Manager learns of removals only when a renewal fails;
	// required by Graph for Teams resources beyond an hour.
	LifecycleNotificationURL string
	// IncludeResourceData asks for rich notifications, encrypted for
	// Config.Key.
	IncludeResourceData bool
	// ClientState is the secret Graph echoes. Default: a random 64-character
	// value, generated once and kept in the bucket. At most 128 characters.
	ClientState string
	// MaxLifetime overrides the resource's lifetime cap ([MaxLifetime]).
	// Default: the table, lowered by what Graph's answers teach.
	MaxLifetime time.Duration
	// LatestSupportedTLSVersion is v1_0 to v1_3. Default Graph's, v1_2.
	LatestSupportedTLSVersion string
}

// key identifies a Spec in the bucket: Graph's 409 rule (resource and
// changeType) plus the notificationUrl.
func (s Spec) key() string {
	return specKey(s.Resource, s.ChangeType, s.NotificationURL)
}

// Config configures a Manager.
type Config struct {
	// Client calls Graph. Required.
	Client *Client
	// JetStream holds the state bucket, the lease, the event stream and
	// the lifecycle consumer. Required.
	JetStream jetstream.JetStream
	// Subscriptions are the desired subscriptions. Subscriptions the
	// Manager created that are no longer listed are deleted.
	Subscriptions []Spec
	// TenantID is the tenant of the subscriptions, used in event subjects
	// when an event does not carry one. Default "_".
	TenantID string
	// Key is the encryption key of rich subscriptions (its certificate and
	// ID go to Graph). Required when a Spec sets IncludeResourceData. Rotate
	// it with [Manager.RotateKey].
	Key *decrypt.Key
	// Bucket is the key-value bucket of state and lease. Default
	// "graphhook-subscriptions". It holds clientStates: restrict it with
	// NATS permissions as you would a secret store.
	Bucket string
	// Replicas is how many copies a NATS cluster keeps of the bucket and
	// the event stream, applied when they are created: an existing bucket
	// or stream keeps the replicas and limits its operator gave it. Default
	// 1; use 3 with the R3 streams of a cluster, or renewals have a single
	// point of failure.
	Replicas int
	// EventStream stores events on <prefix>.subscriptions.> and gaps on
	// <prefix>.gaps.>. Created if missing. Default "GRAPH_SUBSCRIPTIONS".
	EventStream string
	// SubjectPrefix is the first subject token. Default "graph".
	SubjectPrefix string
	// GraphStream is the stream the receiver publishes lifecycle events to
	// (natspub's Config.Stream). The lease holder consumes
	// <prefix>.lifecycle.> from it with the durable Consumer. Default
	// "GRAPH"; "-" disables consuming (call [Manager.HandleLifecycle]
	// yourself).
	GraphStream string
	// Consumer is the durable consumer name on GraphStream. Default
	// "graphhook-subscriptions".
	Consumer string
	// Owner marks the subscriptions this Manager creates; only those are
	// deleted when they leave Subscriptions. Default "graphhook".
	Owner string
	// Instance names this replica in the lease. Default: host name plus
	// a random suffix.
	Instance string
	// LeaseTTL bounds how long the replicas are without a lease holder
	// after the holder dies: the lease lasts LeaseTTL − Interval after each
	// refresh and the others try to take it every Interval. Default 30 s.
	LeaseTTL time.Duration
	// Interval is how often the background loop runs a pass. Default
	// LeaseTTL/3. Negative: no loop; call [Manager.Reconcile] yourself.
	Interval time.Duration
	// LookupWait is how long ClientStateLookup waits for the bucket when a
	// subscription is unknown (it may have been created a moment ago by
	// another replica). Default 500 ms.
	LookupWait time.Duration
	// RetireAfter is how long an old key stays in use after the last
	// notification encrypted for it. Default 4 h 10 min.
	RetireAfter time.Duration
	// Policy is the renewal policy. The zero value is the default.
	Policy Policy
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per action, never secrets. Nil discards.
	Logger *slog.Logger
}

// Validate reports the first invalid field as a [*ConfigError].
func (c Config) Validate() error {
	if c.Client == nil {
		return &ConfigError{Field: "Client", Err: ErrRequired}
	}
	if c.JetStream == nil {
		return &ConfigError{Field: "JetStream", Err: ErrRequired}
	}
	seen := map[string]int{}
	for i, s := range c.Subscriptions {
		f := func(name string) string { return fmt.Sprintf("Subscriptions[%d].%s", i, name) }
		if strings.TrimSpace(s.Resource) == "" {
			return &ConfigError{Field: f("Resource"), Err: ErrRequired}
		}
		if strings.TrimSpace(s.ChangeType) == "" {
			return &ConfigError{Field: f("ChangeType"), Err: ErrRequired}
		}
		for t := range strings.SplitSeq(s.ChangeType, ",") {
			switch strings.TrimSpace(t) {
			case "created", "updated", "deleted":
			default:
				return &ConfigError{Field: f("ChangeType"), Err: fmt.Errorf("%w: %q is not created, updated or deleted", ErrBadValue, strings.TrimSpace(t))}
			}
		}
		for _, u := range []struct{ name, v string }{{"NotificationURL", s.NotificationURL}, {"LifecycleNotificationURL", s.LifecycleNotificationURL}} {
			if u.v == "" {
				if u.name == "NotificationURL" {
					return &ConfigError{Field: f(u.name), Err: ErrRequired}
				}
				continue
			}
			pu, err := url.Parse(u.v)
			if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
				return &ConfigError{Field: f(u.name), Err: fmt.Errorf("%w: want an absolute https URL", ErrBadValue)}
			}
		}
		if utf8.RuneCountInString(s.ClientState) > MaxClientStateLen {
			return &ConfigError{Field: f("ClientState"), Err: fmt.Errorf("%w: longer than %d characters", ErrOutOfRange, MaxClientStateLen)}
		}
		if s.MaxLifetime < 0 {
			return &ConfigError{Field: f("MaxLifetime"), Err: fmt.Errorf("%w: negative", ErrOutOfRange)}
		}
		if s.IncludeResourceData && (c.Key == nil || c.Key.Certificate == nil) {
			return &ConfigError{Field: "Key", Err: fmt.Errorf("%w with a certificate: Subscriptions[%d] sets IncludeResourceData", ErrRequired, i)}
		}
		if j, dup := seen[s.key()]; dup {
			return &ConfigError{Field: f("Resource"), Err: fmt.Errorf("%w: same resource, changeType and notificationUrl as Subscriptions[%d]", ErrBadValue, j)}
		}
		seen[s.key()] = i
	}
	if c.LeaseTTL < 0 {
		return &ConfigError{Field: "LeaseTTL", Err: fmt.Errorf("%w: negative", ErrOutOfRange)}
	}
	if c.Replicas < 0 || c.Replicas > MaxReplicas {
		return &ConfigError{Field: "Replicas", Err: fmt.Errorf("%w: 0 to %d", ErrBadValue, MaxReplicas)}
	}
	if c.Bucket != "" && !validName(c.Bucket) {
		return &ConfigError{Field: "Bucket", Err: fmt.Errorf("%w: letters, digits, - and _ only", ErrBadValue)}
	}
	return nil
}

func validName(s string) bool {
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

func (c Config) withDefaults() Config {
	c.Subscriptions = append([]Spec(nil), c.Subscriptions...)
	c.TenantID = cmp.Or(c.TenantID, "_")
	c.Bucket = cmp.Or(c.Bucket, DefaultBucket)
	c.EventStream = cmp.Or(c.EventStream, DefaultEventStream)
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, DefaultSubjectPrefix)
	c.GraphStream = cmp.Or(c.GraphStream, DefaultGraphStream)
	c.Consumer = cmp.Or(c.Consumer, DefaultConsumer)
	c.Owner = cmp.Or(c.Owner, DefaultOwner)
	if c.Instance == "" {
		h, _ := os.Hostname()
		c.Instance = h + "-" + randomString(6)
	}
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.Interval = cmp.Or(c.Interval, c.LeaseTTL/3)
	if c.LookupWait <= 0 {
		c.LookupWait = DefaultLookupWait
	}
	if c.RetireAfter <= 0 {
		c.RetireAfter = DefaultRetireAfter
	}
	c.Policy = c.Policy.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Key != nil {
		k := *c.Key
		c.Key = &k
	}
	return c
}

// randomString returns n random bytes as base64url.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewClientState returns a random clientState of 64 characters (384 bits),
// within Graph's 128.
func NewClientState() string { return randomString(generatedClientStateBytes) }
