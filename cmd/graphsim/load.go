package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graphhook/graphhook/graphsim"
)

// Defaults of [LoadConfig].
const (
	DefaultLoadDuration    = 10 * time.Second
	DefaultLoadConcurrency = 4  // closed-loop workers
	DefaultLoadInFlight    = 64 // most requests in flight in rate mode
)

// LoadConfig configures [Load]: a load generator that POSTs notification
// batches straight to a receiver, without subscriptions or handshakes.
type LoadConfig struct {
	// URL is the receiver's notification URL. Required.
	URL string `json:"url"`
	// Rate is the target in notifications per second (open loop: batches
	// are sent on schedule whether or not earlier ones were answered, with
	// at most Concurrency in flight, default 64). Zero selects closed-loop
	// mode: Concurrency workers (default 4) send back to back.
	Rate int `json:"rate,omitempty"`
	// Concurrency is the number of workers (closed loop) or the most
	// requests in flight (rate mode).
	Concurrency int `json:"concurrency,omitempty"`
	// Duration is how long to send. Default 10 s. (JSON: nanoseconds.)
	Duration time.Duration `json:"duration,omitempty"`
	// Requests, when positive, stops after this many POSTs.
	Requests int `json:"requests,omitempty"`
	// Batch is the number of notifications per POST. Default 1.
	Batch int `json:"batch,omitempty"`
	// Rich sends encrypted notifications with validationTokens; it needs
	// EncryptionCertificate.
	Rich bool `json:"rich,omitempty"`
	// EncryptionCertificate is the receiver's certificate, base64 DER (as
	// in a subscription).
	EncryptionCertificate string `json:"encryptionCertificate,omitempty"`
	// EncryptionCertificateID labels it in encryptedContent.
	EncryptionCertificateID string `json:"encryptionCertificateId,omitempty"`
	// SubscriptionID is put in every item. Default: a random GUID.
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// ClientState is put in every item.
	ClientState string `json:"clientState,omitempty"`
	// TenantID is every item's tenant. Default: the Signer's tenant.
	TenantID string `json:"tenantId,omitempty"`
	// AppID is the aud of the validationTokens. Default: the Signer's app.
	AppID string `json:"appId,omitempty"`
	// Resource is the subscription resource. Default "me/messages".
	Resource string `json:"resource,omitempty"`
	// Timeout is the budget of one POST. Default 3 s, Graph's.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Signer signs the validationTokens of rich batches. Default: a
	// throwaway Sim (its tokens verify only against its own JWKS).
	Signer *graphsim.Sim `json:"-"`
	// HTTPClient sends the POSTs. Default: a keep-alive client.
	HTTPClient *http.Client `json:"-"`
}

// LoadReport is the outcome of [Load]. Latencies are per POST, in
// milliseconds; in rate mode they are measured from the scheduled send
// time, so queueing behind a slow receiver counts (no coordinated
// omission).
type LoadReport struct {
	URL         string `json:"url"`
	Mode        string `json:"mode"` // "rate" or "concurrency"
	Rate        int    `json:"rate,omitempty"`
	Concurrency int    `json:"concurrency"`
	Batch       int    `json:"batch"`
	Rich        bool   `json:"rich"`
	// Seconds is the measured duration of the run.
	Seconds float64 `json:"seconds"`
	// Requests is the number of POSTs sent; Errors those answered non-2xx
	// or not answered.
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// Notifications is the number of notifications in 2xx-answered POSTs.
	Notifications int `json:"notifications"`
	// NotificationsPerSecond is Notifications / Seconds.
	NotificationsPerSecond float64 `json:"notificationsPerSecond"`
	// RequestsPerSecond is Requests / Seconds.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	P50Ms             float64 `json:"p50Ms"`
	P90Ms             float64 `json:"p90Ms"`
	P99Ms             float64 `json:"p99Ms"`
	MaxMs             float64 `json:"maxMs"`
	MeanMs            float64 `json:"meanMs"`
	// Statuses counts answers by HTTP status; "error" counts transport
	// failures and timeouts.
	Statuses map[string]int `json:"statuses"`
	// FirstError describes the first failure, if any.
	FirstError string `json:"firstError,omitempty"`
}

// String formats the report for people.
func (r LoadReport) String() string {
	var b strings.Builder
	mode := fmt.Sprintf("concurrency %d", r.Concurrency)
	if r.Mode == "rate" {
		mode = fmt.Sprintf("rate %d/s (in flight ≤ %d)", r.Rate, r.Concurrency)
	}
	kind := "basic"
	if r.Rich {
		kind = "rich"
	}
	fmt.Fprintf(&b, "graphsim load: %s, %s, batch %d, %s notifications, %.1fs\n", r.URL, mode, r.Batch, kind, r.Seconds)
	fmt.Fprintf(&b, "  notifications: %d (%.1f/s)\n", r.Notifications, r.NotificationsPerSecond)
	fmt.Fprintf(&b, "  requests:      %d (%.1f/s), errors: %d\n", r.Requests, r.RequestsPerSecond, r.Errors)
	fmt.Fprintf(&b, "  latency ms:    p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.MeanMs)
	keys := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, r.Statuses[k])
	}
	fmt.Fprintf(&b, "  statuses:      %s\n", strings.Join(parts, " "))
	if r.FirstError != "" {
		fmt.Fprintf(&b, "  first error:   %s\n", r.FirstError)
	}
	return b.String()
}

// Limits of [Load], so that a bad admin request cannot exhaust memory.
const (
	MaxLoadBatch       = 10000
	MaxLoadConcurrency = 1024
	MaxLoadRate        = 1000000
)

// Load sends notifications to cfg.URL at a fixed rate or concurrency for
// cfg.Duration and reports throughput and latency. It returns an error
// only for a bad configuration; failed POSTs are counted in the report.
func Load(ctx context.Context, cfg LoadConfig) (LoadReport, error) {
	if cfg.URL == "" {
		return LoadReport{}, errors.New("graphsim: load: URL is required")
	}
	if cfg.Rate < 0 || cfg.Concurrency < 0 || cfg.Batch < 0 || cfg.Duration < 0 || cfg.Requests < 0 {
		return LoadReport{}, errors.New("graphsim: load: rate, concurrency, batch, duration and requests must not be negative")
	}
	if cfg.Batch > MaxLoadBatch || cfg.Concurrency > MaxLoadConcurrency || cfg.Rate > MaxLoadRate {
		return LoadReport{}, fmt.Errorf("graphsim: load: batch, concurrency and rate are limited to %d, %d and %d", MaxLoadBatch, MaxLoadConcurrency, MaxLoadRate)
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultLoadDuration
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = graphsim.DefaultTimeout
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultLoadConcurrency
		if cfg.Rate > 0 {
			cfg.Concurrency = DefaultLoadInFlight
		}
	}
	if cfg.SubscriptionID == "" {
		cfg.SubscriptionID = graphsim.NewGUID()
	}
	var cert *x509.Certificate
	if cfg.Rich {
		if cfg.EncryptionCertificate == "" {
			return LoadReport{}, errors.New("graphsim: load: rich notifications need EncryptionCertificate")
		}
		var err error
		if cert, err = parseEncryptionCertificate(cfg.EncryptionCertificate); err != nil {
			return LoadReport{}, fmt.Errorf("graphsim: load: %w", err)
		}
		if cfg.Signer == nil {
			sim, err := graphsim.New(graphsim.Config{SweepInterval: -1, TenantID: cfg.TenantID, AppID: cfg.AppID})
			if err != nil {
				return LoadReport{}, err
			}
			defer sim.Close()
			cfg.Signer = sim
		}
	}
	if cfg.Signer != nil {
		if cfg.TenantID == "" {
			cfg.TenantID = cfg.Signer.Config().TenantID
		}
		if cfg.AppID == "" {
			cfg.AppID = cfg.Signer.Config().AppID
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.MaxIdleConnsPerHost = cfg.Concurrency + 8
		tr.MaxConnsPerHost = 0
		client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		defer tr.CloseIdleConnections()
	}
	expiration := time.Now().Add(time.Hour)
	body := func() ([]byte, error) {
		items := make([]graphsim.Notification, cfg.Batch)
		for i := range items {
			it := graphsim.Item{SubscriptionID: cfg.SubscriptionID, ClientState: cfg.ClientState, TenantID: cfg.TenantID, Resource: cfg.Resource, Expiration: expiration}
			if cfg.Rich {
				n, _, err := graphsim.RichNotification(it, cert, cfg.EncryptionCertificateID)
				if err != nil {
					return nil, err
				}
				items[i] = n
			} else {
				items[i] = graphsim.BasicNotification(it)
			}
		}
		if cfg.Rich {
			return cfg.Signer.Batch(cfg.AppID, items...)
		}
		return graphsim.Marshal(items...)
	}

	rep := LoadReport{URL: cfg.URL, Mode: "concurrency", Rate: cfg.Rate, Concurrency: cfg.Concurrency, Batch: cfg.Batch, Rich: cfg.Rich, Statuses: map[string]int{}}
	if cfg.Rate > 0 {
		rep.Mode = "rate"
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		sent      int
	)
	// take reserves one request slot; false when Requests is exhausted.
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if cfg.Requests > 0 && sent >= cfg.Requests {
			return false
		}
		sent++
		return true
	}
	one := func(scheduled time.Time) {
		b, err := body()
		status, errText := 0, ""
		if err == nil {
			status, errText = postOnce(ctx, client, cfg.URL, b, cfg.Timeout)
		} else {
			errText = "generate: " + err.Error()
		}
		lat := time.Since(scheduled)
		mu.Lock()
		defer mu.Unlock()
		rep.Requests++
		latencies = append(latencies, lat)
		if status >= 200 && status < 300 {
			rep.Notifications += cfg.Batch
		} else {
			rep.Errors++
			if rep.FirstError == "" {
				if errText == "" {
					errText = "HTTP " + strconv.Itoa(status)
				}
				rep.FirstError = errText
			}
		}
		if status == 0 {
			rep.Statuses["error"]++
		} else {
			rep.Statuses[strconv.Itoa(status)]++
		}
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		interval := time.Duration(float64(time.Second) * float64(cfg.Batch) / float64(cfg.Rate))
		jobs := make(chan time.Time, cfg.Concurrency)
		for range cfg.Concurrency {
			wg.Go(func() {
				for t := range jobs {
					one(t)
				}
			})
		}
	schedule:
		for i := 0; ; i++ {
			t := start.Add(time.Duration(i) * interval)
			if d := time.Until(t); d > 0 {
				timer := time.NewTimer(d)
				select {
				case <-timer.C:
				case <-runCtx.Done():
					timer.Stop()
					break schedule
				}
			}
			if runCtx.Err() != nil || !take() {
				break
			}
			select {
			case jobs <- t:
			case <-runCtx.Done():
				break schedule
			}
		}
		close(jobs)
	} else {
		for range cfg.Concurrency {
			wg.Go(func() {
				for runCtx.Err() == nil && take() {
					one(time.Now())
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep.Seconds = elapsed.Seconds()
	if rep.Seconds > 0 {
		rep.NotificationsPerSecond = float64(rep.Notifications) / rep.Seconds
		rep.RequestsPerSecond = float64(rep.Requests) / rep.Seconds
	}
	if n := len(latencies); n > 0 {
		slices.Sort(latencies)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		pct := func(p float64) float64 {
			i := int(float64(n)*p+0.5) - 1
			return ms(latencies[min(max(i, 0), n-1)])
		}
		var sum time.Duration
		for _, l := range latencies {
			sum += l
		}
		rep.P50Ms, rep.P90Ms, rep.P99Ms = pct(0.50), pct(0.90), pct(0.99)
		rep.MaxMs, rep.MeanMs = ms(latencies[n-1]), ms(sum/time.Duration(n))
	}
	return rep, nil
}

// postOnce POSTs body and returns the status, or 0 and a description.
func postOnce(ctx context.Context, client *http.Client, url string, body []byte, timeout time.Duration) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "bad URL"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "timeout after " + timeout.String()
		}
		return 0, "connection error"
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, ""
}

// MarshalIndent returns the report as indented JSON.
func (r LoadReport) MarshalIndent() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// parseEncryptionCertificate reads base64 DER as a subscription's
// encryptionCertificate.
func parseEncryptionCertificate(b64 string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("encryptionCertificate is not valid base64")
	}
	return x509.ParseCertificate(der)
}

// loadHandler serves POST /_sim/load inside "graphsim serve": a
// [LoadConfig] whose rich batches are signed by the running simulator,
// answered with its [LoadReport].
func loadHandler(sim func() *graphsim.Sim) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cfg LoadConfig
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(body, &cfg)
		}
		if err == nil {
			cfg.Signer = sim()
			var rep LoadReport
			if rep, err = Load(r.Context(), cfg); err == nil {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(rep)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "BadRequest", "message": err.Error()}})
	})
}
