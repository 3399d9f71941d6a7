package status

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RefreshSeconds is how often the HTML page reloads itself.
const RefreshSeconds = 10

// Snapshot is everything the status page shows, as of GeneratedAt. Its JSON
// form is what /status.json serves.
type Snapshot struct {
	// GeneratedAt is when the snapshot was taken. Countdowns are relative
	// to it.
	GeneratedAt time.Time `json:"generatedAt"`
	// Ready is the receiver's readiness; Degraded names the cause when it
	// is not ready (for example "stream GRAPH is full").
	Ready    bool   `json:"ready"`
	Degraded string `json:"degraded,omitempty"`
	// Standing is the endpoint's standing with Graph, computed from our
	// own answers; nil when it is not tracked.
	Standing *Standing `json:"standing,omitempty"`
	// Subscriptions are the subscriptions the manager keeps; empty when
	// the subscription manager does not run.
	Subscriptions []Subscription `json:"subscriptions"`
	// Quarantine counts quarantined messages per reason.
	Quarantine []Quarantine `json:"quarantine"`
	// Streams describes the event and quarantine streams, with the lag of
	// each durable consumer.
	Streams []Stream `json:"streams"`
}

// Standing is the state Graph would put the endpoint in (normal, slow or
// drop) and the ratios it decides on, over its rolling window.
type Standing struct {
	State        string        `json:"state"`
	SlowRatio    float64       `json:"slowRatio"`
	FailureRatio float64       `json:"failureRatio"`
	Requests     int           `json:"requests"`
	Window       time.Duration `json:"window"`
}

// Subscription is one Graph subscription as the manager sees it.
type Subscription struct {
	ID               string    `json:"id"`
	Resource         string    `json:"resource"`
	ChangeTypes      []string  `json:"changeTypes"`
	ExpiresAt        time.Time `json:"expiresAt"`
	LastNotification time.Time `json:"lastNotification,omitzero"`
	LastRenewal      time.Time `json:"lastRenewal,omitzero"`
	// LastOutcome is the outcome of the last renewal or lifecycle action
	// ("ok", "throttled", "forbidden", ...).
	LastOutcome string  `json:"lastOutcome,omitempty"`
	Events      []Event `json:"events,omitempty"`
	Gaps        []Gap   `json:"gaps,omitempty"`
}

// Event is a lifecycle event received for a subscription, or an action the
// manager took.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
}

// Gap is a range of time in which notifications may be missing: a consumer
// fetches it with a delta query. End is zero while the gap is open.
type Gap struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	Reason string    `json:"reason"`
}

// Quarantine is the number of quarantined messages for one reason, with the
// subject of the latest one.
type Quarantine struct {
	Stream   string    `json:"stream"`
	Reason   string    `json:"reason"`
	Messages uint64    `json:"messages"`
	Latest   time.Time `json:"latest,omitzero"`
}

// Stream is one JetStream stream's size and its durable consumers.
type Stream struct {
	Name      string     `json:"name"`
	Messages  uint64     `json:"messages"`
	Bytes     uint64     `json:"bytes"`
	Replicas  int        `json:"replicas"`
	Consumers []Consumer `json:"consumers"`
}

// Consumer is a durable consumer and how far it is behind the stream.
type Consumer struct {
	Name string `json:"name"`
	// Pending is the number of stream messages not yet delivered to it.
	Pending uint64 `json:"pending"`
	// AckPending is the number delivered but not yet acknowledged.
	AckPending int `json:"ackPending"`
}

// Source gathers a snapshot. It is called once per page load.
type Source func(ctx context.Context) (*Snapshot, error)

//go:embed style.css
var css string

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"countdown": countdown,
	"ago":       ago,
	"stamp":     stamp,
	"pct":       func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"join":      strings.Join,
	"css":       func() template.CSS { return template.CSS(css) },
}).Parse(pageHTML))

// Handler serves the snapshot src gathers: as JSON when the request path
// ends in ".json", as HTML otherwise. A failing src is answered 503 with
// the error's text, which must not hold secrets.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		snap, err := src(r.Context())
		if err != nil {
			http.Error(w, "status unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if strings.HasSuffix(r.URL.Path, ".json") {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(snap)
			return
		}
		var buf bytes.Buffer
		if err := page.Execute(&buf, view{Snapshot: snap, Refresh: RefreshSeconds}); err != nil {
			http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(buf.Bytes())
	})
}

type view struct {
	*Snapshot
	Refresh int
}

// countdown says how long until t, from now: "in 2d 3h", "in 14m", or
// "expired 5m ago".
func countdown(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := t.Sub(now)
	if d < 0 {
		return "expired " + span(-d) + " ago"
	}
	return "in " + span(d)
}

// ago says how long ago t was, or "never".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return span(d) + " ago"
}

func span(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d " + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + "h"
	case d >= time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
	case d >= time.Minute:
		return strconv.Itoa(int(d/time.Minute)) + "m " + strconv.Itoa(int(d%time.Minute/time.Second)) + "s"
	default:
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
