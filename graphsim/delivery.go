package graphsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Delivery states.
const (
	StatePending   = "pending"   // queued, in flight or waiting to retry
	StateDelivered = "delivered" // a 2xx arrived within the budget
	StateFailed    = "failed"    // retried for RetryFor without success; discarded
	StateDropped   = "dropped"   // never sent: the endpoint was in the drop state
	StateAbandoned = "abandoned" // the simulator was closed before success
)

// Endpoint throttling states of the protocol doc §3.
const (
	EndpointNormal = "normal"
	EndpointSlow   = "slow" // >10 % of responses over Timeout: new notifications delayed
	EndpointDrop   = "drop" // >15 % of responses over RetryTimeout: new notifications dropped
)

// Delivery is the record of one POST of a changeNotificationCollection,
// with all its attempts.
type Delivery struct {
	// ID numbers deliveries in the order they were queued, from 1.
	ID int64 `json:"id"`
	// URL is the notificationUrl or lifecycleNotificationUrl.
	URL string `json:"url"`
	// Lifecycle is true for lifecycle notifications.
	Lifecycle bool `json:"lifecycle"`
	// TLSVersion is the latestSupportedTlsVersion the POSTs were limited
	// to over https (v1_0 to v1_3).
	TLSVersion string `json:"tlsVersion,omitempty"`
	// Items is the number of notifications in the body.
	Items int `json:"items"`
	// SubscriptionIDs are the distinct subscriptions in the body.
	SubscriptionIDs []string `json:"subscriptionIds"`
	// Queued is when the delivery was queued (on Config.Now).
	Queued time.Time `json:"queued"`
	// State is StatePending, StateDelivered, StateFailed, StateDropped or
	// StateAbandoned.
	State string `json:"state"`
	// Attempts are the POSTs so far; Attempts[0] is the first, the others
	// are retries.
	Attempts []Attempt `json:"attempts"`
}

// Retries returns the number of retried attempts.
func (d Delivery) Retries() int { return max(len(d.Attempts)-1, 0) }

// Attempt is one POST of a delivery.
type Attempt struct {
	// Start is when the POST began (wall clock).
	Start time.Time `json:"start"`
	// Status is the HTTP status, or 0 when no response arrived.
	Status int `json:"status"`
	// Latency is the time to the response headers, or to the failure.
	Latency time.Duration `json:"latency"`
	// Budget is the timeout of the attempt: Timeout or RetryTimeout.
	Budget time.Duration `json:"budget"`
	// Error describes a transport failure or timeout ("" on a response):
	// "timeout", "connection error" or "closed".
	Error string `json:"error,omitempty"`
	// Cause details a connection error: "connection refused", "connection
	// reset", "host not found", "TLS handshake failed", ...
	Cause string `json:"cause,omitempty"`
}

// Endpoint summarises the deliveries to one URL and its throttling state.
type Endpoint struct {
	URL string `json:"url"`
	// State is EndpointNormal, EndpointSlow or EndpointDrop.
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	Delivered int    `json:"delivered"`
	Failed    int    `json:"failed"`
	Dropped   int    `json:"dropped"`
	// Window counts the responses in the current throttling window; Slow
	// those over Timeout and TimedOut the retries over RetryTimeout.
	Window   int `json:"window"`
	Slow     int `json:"slow"`
	TimedOut int `json:"timedOut"`
}

type sample struct {
	at       time.Time
	slow     bool
	timedOut bool
}

type endpoint struct {
	url                         string
	sem                         chan struct{}
	samples                     []sample
	state                       string
	attempts, delivered, failed int
	dropped                     int
}

// endpointLocked returns the endpoint state of url, creating it.
func (s *Sim) endpointLocked(url string) *endpoint {
	ep, ok := s.endpoints[url]
	if !ok {
		ep = &endpoint{url: url, sem: make(chan struct{}, s.cfg.Concurrency), state: EndpointNormal}
		s.endpoints[url] = ep
	}
	return ep
}

// evaluateLocked prunes the window and reclassifies ep.
func (s *Sim) evaluateLocked(ep *endpoint) {
	cutoff := s.nowLocked().Add(-s.cfg.ThrottleWindow)
	i := 0
	for i < len(ep.samples) && ep.samples[i].at.Before(cutoff) {
		i++
	}
	ep.samples = ep.samples[i:]
	n := len(ep.samples)
	if n < s.cfg.ThrottleMinSamples {
		ep.state = EndpointNormal
		return
	}
	var slow, timedOut int
	for _, sm := range ep.samples {
		if sm.slow {
			slow++
		}
		if sm.timedOut {
			timedOut++
		}
	}
	switch {
	case timedOut*100 > n*15:
		ep.state = EndpointDrop
	case slow*100 > n*10:
		ep.state = EndpointSlow
	default:
		ep.state = EndpointNormal
	}
}

// Endpoints returns the per-URL delivery summary and throttling state,
// sorted by URL.
func (s *Sim) Endpoints() []Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Endpoint, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		s.evaluateLocked(ep)
		e := Endpoint{URL: ep.url, State: ep.state, Attempts: ep.attempts, Delivered: ep.delivered, Failed: ep.failed, Dropped: ep.dropped, Window: len(ep.samples)}
		for _, sm := range ep.samples {
			if sm.slow {
				e.Slow++
			}
			if sm.timedOut {
				e.TimedOut++
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// Deliveries returns copies of the delivery records, oldest first (at
// most Config.MaxDeliveries).
func (s *Sim) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.records))
	for i, d := range s.records {
		out[i] = *d
		out[i].Attempts = append([]Attempt(nil), d.Attempts...)
		out[i].SubscriptionIDs = append([]string(nil), d.SubscriptionIDs...)
	}
	return out
}

// enqueue queues one POST of body to url and starts its delivery.
func (s *Sim) enqueue(url, tlsVersion string, body []byte, items int, subIDs []string, lifecycle bool) (*Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed()
	}
	s.nextID++
	d := &Delivery{ID: s.nextID, URL: url, Lifecycle: lifecycle, TLSVersion: tlsVersion, Items: items, SubscriptionIDs: subIDs, Queued: s.nowLocked(), State: StatePending}
	s.records = append(s.records, d)
	if over := len(s.records) - s.cfg.MaxDeliveries; over > 0 {
		s.records = append(s.records[:0:0], s.records[over:]...)
	}
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
	s.wg.Go(func() { s.deliver(d, body) })
	return d, nil
}

func (s *Sim) finish(d *Delivery, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.State = state
	ep := s.endpointLocked(d.URL)
	switch state {
	case StateDelivered:
		ep.delivered++
	case StateFailed:
		ep.failed++
	case StateDropped:
		ep.dropped++
	}
	var missed []lifecycle
	if !d.Lifecycle && (state == StateDropped || state == StateFailed) {
		missed = s.missedLocked(d.SubscriptionIDs)
	}
	s.pending--
	if s.pending == 0 && len(missed) == 0 {
		close(s.idle)
	}
	if len(missed) > 0 {
		// Queue before the pending count can reach zero, so Wait covers
		// the missed notifications too.
		s.pending++
		s.wg.Go(func() {
			for _, l := range missed {
				s.queueLifecycle(l)
			}
			s.mu.Lock()
			s.pending--
			if s.pending == 0 {
				close(s.idle)
			}
			s.mu.Unlock()
		})
	}
}

// missedInterval is the least time between two automatic missed
// notifications for one subscription.
const missedInterval = 10 * time.Minute

// missedLocked returns the missed notifications due to the subscriptions
// whose notifications were just dropped or discarded: Graph sends missed
// for Outlook resources when notifications could not be delivered (§7),
// here at most once per subscription every 10 minutes of simulated time.
func (s *Sim) missedLocked(ids []string) []lifecycle {
	now := s.nowLocked()
	var out []lifecycle
	for _, id := range ids {
		sub, ok := s.subs[id]
		if !ok || !sub.kind.missed || sub.pub.LifecycleNotificationURL == "" {
			continue
		}
		if last, ok := s.missedAt[id]; ok && now.Sub(last) < missedInterval {
			continue
		}
		s.missedAt[id] = now
		out = append(out, s.lifecycleItem(sub, EventMissed))
	}
	return out
}

// deliver runs one delivery: throttling, first attempt, retries.
func (s *Sim) deliver(d *Delivery, body []byte) {
	s.mu.Lock()
	ep := s.endpointLocked(d.URL)
	s.evaluateLocked(ep)
	state := ep.state
	s.mu.Unlock()
	switch state {
	case EndpointDrop:
		s.log.Warn("delivery dropped", "url", redactURL(d.URL), "delivery", d.ID, "reason", "endpoint in drop state")
		s.finish(d, StateDropped)
		return
	case EndpointSlow:
		if !s.sleepUntil(s.scaled(s.cfg.SlowDelay), s.now().Add(s.cfg.SlowDelay)) {
			s.finish(d, StateAbandoned)
			return
		}
	}
	// The retry schedule (§3) runs on the wall clock, scaled by TimeScale,
	// and on the simulated clock, unscaled: whichever reaches a wait's end
	// (or the 4 h window's) first, so Advance fires retries and discards
	// as the hours pass.
	deadline := time.Now().Add(s.scaled(s.cfg.RetryFor))
	simDeadline := s.now().Add(s.cfg.RetryFor)
	backoff := s.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		budget := s.cfg.Timeout
		if attempt > 0 {
			budget = s.cfg.RetryTimeout
		}
		select {
		case ep.sem <- struct{}{}:
		case <-s.ctx.Done():
			s.finish(d, StateAbandoned)
			return
		}
		a := s.post(d.URL, d.TLSVersion, body, budget)
		<-ep.sem
		s.record(d, ep, a, attempt > 0)
		if a.Status >= 200 && a.Status < 300 {
			s.finish(d, StateDelivered)
			return
		}
		wait := s.scaled(backoff)
		simNow := s.now()
		if time.Now().Add(wait).After(deadline) || !simNow.Add(backoff).Before(simDeadline) {
			s.log.Warn("delivery discarded", "url", redactURL(d.URL), "delivery", d.ID, "attempts", attempt+1)
			s.finish(d, StateFailed)
			return
		}
		if !s.sleepUntil(wait, simNow.Add(backoff)) {
			s.finish(d, StateAbandoned)
			return
		}
		backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
	}
}

func (s *Sim) record(d *Delivery, ep *endpoint, a Attempt, retry bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.Attempts = append(d.Attempts, a)
	ep.attempts++
	ep.samples = append(ep.samples, sample{
		at:       s.nowLocked(),
		slow:     a.Latency >= s.cfg.Timeout,
		timedOut: retry && a.Latency >= s.cfg.RetryTimeout,
	})
	s.evaluateLocked(ep)
	s.log.Info("delivery attempt", "url", redactURL(d.URL), "delivery", d.ID, "attempt", len(d.Attempts),
		"items", d.Items, "status", a.Status, "duration", a.Latency, "error", a.Error, "cause", a.Cause)
}

// post sends one attempt. The response body is drained (bounded) so the
// connection can be reused.
func (s *Sim) post(url, tlsVersion string, body []byte, budget time.Duration) Attempt {
	a := Attempt{Start: time.Now(), Budget: budget}
	ctx, cancel := context.WithTimeout(s.ctx, budget)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		a.Error = "bad request: " + err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.clientFor(tlsVersion).Do(req)
	a.Latency = time.Since(a.Start)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			a.Error = "timeout"
			a.Latency = max(a.Latency, budget)
		case s.ctx.Err() != nil:
			a.Error = "closed"
		default:
			a.Error, a.Cause = "connection error", transportCause(err)
		}
		return a
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.Status = resp.StatusCode
	return a
}

// tlsVersion maps latestSupportedTlsVersion onto crypto/tls.
func tlsVersion(v string) (uint16, bool) {
	switch v {
	case "v1_0":
		return tls.VersionTLS10, true
	case "v1_1":
		return tls.VersionTLS11, true
	case "v1_2":
		return tls.VersionTLS12, true
	case "v1_3":
		return tls.VersionTLS13, true
	}
	return 0, false
}

// clientFor returns the client for deliveries and handshakes to an
// endpoint whose latestSupportedTlsVersion is v: Graph speaks at most that
// version (§8, §9). A Config.HTTPClient whose Transport is not an
// *http.Transport is used as it is.
func (s *Sim) clientFor(v string) *http.Client {
	max, ok := tlsVersion(v)
	if !ok {
		return s.client
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.tlsClients[v]; ok {
		return c
	}
	base, ok := s.client.Transport.(*http.Transport)
	if !ok {
		return s.client
	}
	tr := base.Clone()
	tc := &tls.Config{}
	if tr.TLSClientConfig != nil {
		tc = tr.TLSClientConfig.Clone()
	}
	tc.MaxVersion = max
	if tc.MinVersion == 0 || tc.MinVersion > max {
		tc.MinVersion = min(max, tls.VersionTLS12)
	}
	tr.TLSClientConfig = tc
	c := &http.Client{Transport: tr, CheckRedirect: s.client.CheckRedirect, Jar: s.client.Jar}
	if s.tlsClients == nil {
		s.tlsClients = make(map[string]*http.Client)
	}
	s.tlsClients[v] = c
	return c
}

// transportCause names why a request got no answer, without addresses:
// connection refused, DNS, TLS, reset.
func transportCause(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.As(err, &certErr):
		return "TLS certificate not trusted"
	case errors.As(err, &recErr):
		return "TLS handshake failed (the endpoint does not speak TLS)"
	case errors.As(err, &alert):
		return "TLS handshake failed (no common TLS version or cipher)"
	case strings.Contains(err.Error(), "tls:"):
		return "TLS handshake failed"
	}
	return "network error"
}
