package standing

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Graph's throttling rule (graph-protocol.md §3).
const (
	// DefaultWindow is the rolling window Graph evaluates an endpoint over.
	DefaultWindow = 10 * time.Minute
	// DefaultMinSamples is the number of responses in the window before
	// Graph classifies an endpoint (its older documentation: "evaluated
	// after 100 notifications").
	DefaultMinSamples = 100
	// DefaultSlowAfter is Graph's budget for a first delivery attempt.
	DefaultSlowAfter = 3 * time.Second
	// DefaultTimeoutAfter is Graph's budget for a retried delivery.
	DefaultTimeoutAfter = 10 * time.Second
	// SlowPercent: more than this share of responses over SlowAfter marks
	// the endpoint slow.
	SlowPercent = 10
	// DropPercent: more than this share of responses over TimeoutAfter
	// marks the endpoint drop.
	DropPercent = 15
	// slots is the number of steps the window advances in.
	slots = 120
)

// Buckets returns request-duration histogram buckets, in seconds, with
// boundaries at Graph's 3 s and 10 s budgets. Each call returns a new slice.
func Buckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 2.5, 3, 5, 10, 30}
}

// State is the state Graph puts an endpoint in.
type State string

// The states of Graph's throttling (graph-protocol.md §3).
const (
	StateNormal State = "normal" // notifications are delivered at once
	StateSlow   State = "slow"   // new notifications are delivered 10 minutes late
	StateDrop   State = "drop"   // new notifications are dropped
)

// Config configures a [Monitor]. The zero value applies Graph's documented
// rule.
type Config struct {
	// Window is the rolling window the ratios are computed over. It
	// advances in steps of Window/120. Default 10 minutes.
	Window time.Duration
	// MinSamples is the number of responses in the window before an
	// endpoint can be classified slow or drop. Default 100.
	MinSamples int
	// SlowAfter is the budget of a first delivery attempt: an answer later
	// than this, or a client that gave up before the answer, counts as
	// slow. Default 3 s.
	SlowAfter time.Duration
	// TimeoutAfter is the budget of a retried delivery: an answer later
	// than this, or a client that gave up closer to this budget than to
	// SlowAfter, counts as timed out. It must exceed SlowAfter. Default
	// 10 s.
	TimeoutAfter time.Duration
	// Now is the clock that places responses in the window. Default
	// time.Now. Durations are always measured on the monotonic clock.
	Now func() time.Time
}

// Validate reports the first invalid field as a [*ConfigError].
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c Config) withDefaults() (Config, error) {
	bad := func(field, format string, args ...any) (Config, error) {
		return c, &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case c.Window < 0:
		return bad("Window", "negative duration %v", c.Window)
	case c.MinSamples < 0:
		return bad("MinSamples", "negative count %d", c.MinSamples)
	case c.SlowAfter < 0:
		return bad("SlowAfter", "negative duration %v", c.SlowAfter)
	case c.TimeoutAfter < 0:
		return bad("TimeoutAfter", "negative duration %v", c.TimeoutAfter)
	}
	c.Window = cmp.Or(c.Window, DefaultWindow)
	c.MinSamples = cmp.Or(c.MinSamples, DefaultMinSamples)
	c.SlowAfter = cmp.Or(c.SlowAfter, DefaultSlowAfter)
	c.TimeoutAfter = cmp.Or(c.TimeoutAfter, DefaultTimeoutAfter)
	if c.TimeoutAfter <= c.SlowAfter {
		return bad("TimeoutAfter", "%v is not longer than SlowAfter %v; Graph's budgets are 10s and 3s", c.TimeoutAfter, c.SlowAfter)
	}
	if c.Window/slots <= 0 {
		return bad("Window", "%v is shorter than %d ns; use minutes, as Graph does (default 10m)", c.Window, slots)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Monitor tracks the answers of one or more endpoints and classifies each
// as Graph would. Create it with [New]; it is safe for concurrent use and
// holds no goroutines, so it needs no Close.
type Monitor struct {
	cfg  Config
	step time.Duration // Window/slots
	desc descs

	mu        sync.Mutex
	endpoints map[string]*endpoint
}

// New returns a Monitor for cfg, or a [*ConfigError].
func New(cfg Config) (*Monitor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Monitor{cfg: cfg, step: cfg.Window / slots, desc: newDescs(), endpoints: make(map[string]*endpoint)}, nil
}

// Config returns the effective configuration, defaults filled in.
func (m *Monitor) Config() Config { return m.cfg }

// counts are the responses of a span of time.
type counts struct {
	responses, slow, timedOut, failed int
}

func (c *counts) add(o counts) {
	c.responses += o.responses
	c.slow += o.slow
	c.timedOut += o.timedOut
	c.failed += o.failed
}

type slot struct {
	index int64 // the step this slot holds: Now / step
	counts
}

type endpoint struct {
	name  string
	mu    sync.Mutex
	slots [slots]slot
	total counts
	state State
	since time.Time
}

// endpoint returns the endpoint called name, creating it.
func (m *Monitor) endpoint(name string) *endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	ep, ok := m.endpoints[name]
	if !ok {
		ep = &endpoint{name: name, state: StateNormal}
		m.endpoints[name] = ep
	}
	return ep
}

// Middleware returns middleware that observes every notification request
// to next and counts it for the endpoint called name (a metric label and
// the name on the status page, e.g. "notifications" or "lifecycle"; keep
// the set of names fixed). Validation handshakes and methods other than
// POST are passed through uncounted: Graph's throttling counts deliveries.
// The middleware changes nothing in the request or the answer.
func (m *Monitor) Middleware(name string) func(http.Handler) http.Handler {
	ep := m.endpoint(name)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(ep, next, w, r) })
	}
}

// MiddlewareByPath is [Monitor.Middleware] for a handler that serves
// several endpoints, such as a whole server: paths maps a request's URL
// path to its endpoint name, e.g. {"/notifications": "notifications",
// "/lifecycle": "lifecycle"}. Requests to other paths are passed through
// uncounted, so no request can add a metric label.
func (m *Monitor) MiddlewareByPath(paths map[string]string) func(http.Handler) http.Handler {
	eps := make(map[string]*endpoint, len(paths))
	for path, name := range paths {
		eps[path] = m.endpoint(name)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ep, ok := eps[r.URL.Path]
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			m.serve(ep, next, w, r)
		})
	}
}

// isHandshake reports whether a raw query holds a validationToken key, as
// Graph's validation handshake does, without parsing the whole query per
// request (a key Graph would never percent-encode is compared as written).
func isHandshake(rawQuery string) bool {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if key, _, _ := strings.Cut(pair, "="); key == "validationToken" {
			return true
		}
	}
	return false
}

// serve runs next for r and counts the request for ep.
func (m *Monitor) serve(ep *endpoint, next http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || isHandshake(r.URL.RawQuery) {
		next.ServeHTTP(w, r)
		return
	}
	rec := &recorder{ResponseWriter: w, ctx: r.Context(), start: time.Now()}
	var left time.Duration
	gone := make(chan struct{})
	stop := context.AfterFunc(r.Context(), func() {
		left = time.Since(rec.start)
		close(gone)
	})
	next.ServeHTTP(rec, r)
	rec.mark(http.StatusOK) // net/http answers 200 when the handler wrote nothing
	if !stop() {
		<-gone
	}
	if !rec.gone {
		left = 0
	} else if left == 0 || left > rec.answered {
		// The AfterFunc runs a moment after the cancellation, maybe after
		// the handler noticed it and answered.
		left = rec.answered
	}
	m.observe(ep, m.classify(rec.answered, left, rec.status))
}

// Observe counts one delivery request of the endpoint called name, for
// callers that cannot use [Monitor.Middleware]: answered is the time to
// the answer's headers, status its status code, and left, when non-zero,
// the time at which the client gave up (closed the request), if that was
// before the answer.
func (m *Monitor) Observe(name string, answered, left time.Duration, status int) {
	m.observe(m.endpoint(name), m.classify(answered, left, status))
}

// classify turns one request into counts: Graph's view of its answer.
func (m *Monitor) classify(answered, left time.Duration, status int) counts {
	c := counts{responses: 1}
	if left > 0 && left <= answered {
		// Graph gave up: at SlowAfter on a first attempt, at TimeoutAfter
		// on a retry. Which one it was shows in when it left.
		c.slow, c.failed = 1, 1
		if left >= m.cfg.SlowAfter+(m.cfg.TimeoutAfter-m.cfg.SlowAfter)/2 {
			c.timedOut = 1
		}
		return c
	}
	if answered >= m.cfg.SlowAfter {
		c.slow = 1
	}
	if answered >= m.cfg.TimeoutAfter {
		c.timedOut = 1
	}
	if status < 200 || status > 299 {
		c.failed = 1
	}
	return c
}

func (m *Monitor) observe(ep *endpoint, c counts) {
	now := m.cfg.Now()
	idx := now.UnixNano() / int64(m.step)
	ep.mu.Lock()
	defer ep.mu.Unlock()
	s := &ep.slots[idx%slots]
	if s.index != idx {
		*s = slot{index: idx}
	}
	s.add(c)
	ep.total.add(c)
	m.evaluateLocked(ep, now)
}

// windowLocked sums the slots inside the window ending at now.
func (m *Monitor) windowLocked(ep *endpoint, now time.Time) counts {
	idx := now.UnixNano() / int64(m.step)
	var w counts
	for i := range ep.slots {
		if s := &ep.slots[i]; s.index > idx-slots && s.index <= idx {
			w.add(s.counts)
		}
	}
	return w
}

// evaluateLocked reclassifies ep and returns its window.
func (m *Monitor) evaluateLocked(ep *endpoint, now time.Time) counts {
	w := m.windowLocked(ep, now)
	st := m.stateOf(w)
	if st != ep.state {
		ep.state, ep.since = st, now
	}
	return w
}

// stateOf applies Graph's rule to a window.
func (m *Monitor) stateOf(w counts) State {
	switch {
	case w.responses < m.cfg.MinSamples:
		return StateNormal
	case w.timedOut*100 > w.responses*DropPercent:
		return StateDrop
	case w.slow*100 > w.responses*SlowPercent:
		return StateSlow
	}
	return StateNormal
}

// Snapshot is the standing of every endpoint at one time, for a status
// page or /status.json.
type Snapshot struct {
	// Time is when the snapshot was taken (Config.Now).
	Time time.Time `json:"time"`
	// WindowSeconds is Config.Window in seconds.
	WindowSeconds float64 `json:"windowSeconds"`
	// SlowAfterSeconds and TimeoutAfterSeconds are the budgets, in seconds.
	SlowAfterSeconds    float64 `json:"slowAfterSeconds"`
	TimeoutAfterSeconds float64 `json:"timeoutAfterSeconds"`
	// MinSamples is Config.MinSamples.
	MinSamples int `json:"minSamples"`
	// Endpoints are sorted by name.
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint returns the standing of the endpoint called name and whether
// the snapshot has it.
func (s Snapshot) Endpoint(name string) (Endpoint, bool) {
	i := slices.IndexFunc(s.Endpoints, func(e Endpoint) bool { return e.Name == name })
	if i < 0 {
		return Endpoint{}, false
	}
	return s.Endpoints[i], true
}

// Endpoint is one endpoint's standing with Graph.
type Endpoint struct {
	// Name is the name given to [Monitor.Middleware].
	Name string `json:"name"`
	// State is the state Graph would put the endpoint in now.
	State State `json:"state"`
	// Since is when State was entered; zero while it has always been
	// normal.
	Since time.Time `json:"since,omitzero"`
	// Evaluated is true once the window holds MinSamples responses; before
	// that Graph does not classify the endpoint.
	Evaluated bool `json:"evaluated"`
	// Responses counts the delivery requests in the window; Slow those
	// over SlowAfter (or given up on), TimedOut those over TimeoutAfter,
	// Failed those answered other than 2xx or given up on.
	Responses int `json:"responses"`
	Slow      int `json:"slow"`
	TimedOut  int `json:"timedOut"`
	Failed    int `json:"failed"`
	// SlowRatio, TimedOutRatio and FailedRatio are the shares of
	// Responses, from 0 to 1 (0 when the window is empty).
	SlowRatio     float64 `json:"slowRatio"`
	TimedOutRatio float64 `json:"timedOutRatio"`
	FailedRatio   float64 `json:"failedRatio"`
	// Total counts every request since the Monitor was created.
	Total Counts `json:"total"`
	// Warning explains a slow or drop state, or a ratio past half of
	// Graph's limit, and what to do; empty otherwise.
	Warning string `json:"warning,omitempty"`
}

// Counts are request counts since the Monitor was created.
type Counts struct {
	Responses int `json:"responses"`
	Slow      int `json:"slow"`
	TimedOut  int `json:"timedOut"`
	Failed    int `json:"failed"`
}

// Snapshot returns the standing of every endpoint now.
func (m *Monitor) Snapshot() Snapshot {
	now := m.cfg.Now()
	m.mu.Lock()
	eps := make([]*endpoint, 0, len(m.endpoints))
	for _, ep := range m.endpoints {
		eps = append(eps, ep)
	}
	m.mu.Unlock()
	s := Snapshot{
		Time:                now,
		WindowSeconds:       m.cfg.Window.Seconds(),
		SlowAfterSeconds:    m.cfg.SlowAfter.Seconds(),
		TimeoutAfterSeconds: m.cfg.TimeoutAfter.Seconds(),
		MinSamples:          m.cfg.MinSamples,
		Endpoints:           make([]Endpoint, 0, len(eps)),
	}
	for _, ep := range eps {
		s.Endpoints = append(s.Endpoints, m.standing(ep, now))
	}
	slices.SortFunc(s.Endpoints, func(a, b Endpoint) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func (m *Monitor) standing(ep *endpoint, now time.Time) Endpoint {
	ep.mu.Lock()
	w := m.evaluateLocked(ep, now)
	e := Endpoint{
		Name:      ep.name,
		State:     ep.state,
		Since:     ep.since,
		Evaluated: w.responses >= m.cfg.MinSamples,
		Responses: w.responses, Slow: w.slow, TimedOut: w.timedOut, Failed: w.failed,
		Total: Counts{Responses: ep.total.responses, Slow: ep.total.slow, TimedOut: ep.total.timedOut, Failed: ep.total.failed},
	}
	ep.mu.Unlock()
	if w.responses > 0 {
		n := float64(w.responses)
		e.SlowRatio, e.TimedOutRatio, e.FailedRatio = float64(w.slow)/n, float64(w.timedOut)/n, float64(w.failed)/n
	}
	e.Warning = m.warning(e)
	return e
}

// warning says what Graph does or is about to do, and what to do about it.
func (m *Monitor) warning(e Endpoint) string {
	const fix = "answer within the budget: enqueue and answer 202, check the NATS publish latency and CPU"
	window := m.cfg.Window.String()
	switch {
	case e.State == StateDrop:
		return fmt.Sprintf("Graph drops new notifications: %.1f%% of answers in the last %s exceeded %v (limit %d%%); expect missed lifecycle events and resync with delta queries; %s",
			100*e.TimedOutRatio, window, m.cfg.TimeoutAfter, DropPercent, fix)
	case e.State == StateSlow:
		return fmt.Sprintf("Graph delays new notifications by 10 minutes: %.1f%% of answers in the last %s took over %v (limit %d%%); %s",
			100*e.SlowRatio, window, m.cfg.SlowAfter, SlowPercent, fix)
	case e.TimedOutRatio*100 > DropPercent/2.0:
		return fmt.Sprintf("%.1f%% of answers in the last %s exceeded %v; Graph drops notifications above %d%%; %s",
			100*e.TimedOutRatio, window, m.cfg.TimeoutAfter, DropPercent, fix)
	case e.SlowRatio*100 > SlowPercent/2.0:
		return fmt.Sprintf("%.1f%% of answers in the last %s took over %v; Graph delays notifications above %d%%; %s",
			100*e.SlowRatio, window, m.cfg.SlowAfter, SlowPercent, fix)
	}
	return ""
}

// recorder notes the status and the time of the answer's headers, and
// whether the client had gone by then.
type recorder struct {
	http.ResponseWriter
	ctx      context.Context
	start    time.Time
	status   int
	answered time.Duration
	gone     bool
}

func (r *recorder) mark(code int) {
	if r.status == 0 {
		r.status, r.answered = code, time.Since(r.start)
		r.gone = r.ctx.Err() != nil
	}
}

// WriteHeader records the first final status.
func (r *recorder) WriteHeader(code int) {
	if code >= 200 || code < 100 {
		r.mark(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (r *recorder) Write(p []byte) (int, error) {
	r.mark(http.StatusOK)
	return r.ResponseWriter.Write(p)
}

// Flush flushes the underlying writer when it can.
func (r *recorder) Flush() {
	r.mark(http.StatusOK)
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
