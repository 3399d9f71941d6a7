package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one POST of the load client; Graph's own budget is
// 3 s, so answers later than that are counted as late, not lost.
const requestTimeout = 10 * time.Second

// graphBudget is Graph's time limit for one delivery (protocol doc §3).
const graphBudget = 3 * time.Second

// load describes one load run against one server.
type load struct {
	URL string
	// Bodies supplies the notification bodies; nil sends validation
	// handshakes (POST with ?validationToken=, empty body) instead.
	Bodies *bodySet
	// HandshakeURL is URL with the validationToken query; Token is the
	// token the answer must echo.
	HandshakeURL, Token string
	// Concurrency is the number of closed-loop workers, or the most
	// requests in flight at a fixed Rate.
	Concurrency int
	// Rate, when positive, is the target in notifications per second (open
	// loop); latency is then measured from each request's scheduled time.
	Rate float64
	// Duration is how long requests are started.
	Duration time.Duration
}

// outcome is what one load run measured.
type outcome struct {
	Elapsed       time.Duration // from the first request to the last answer
	Requests      int
	Notifications int // items in 2xx-answered requests (a handshake counts 1)
	Statuses      map[int]int
	Failures      int // transport errors and timeouts
	Late          int // answers after Graph's 3 s budget
	BadEcho       int // handshake answers that did not echo the token
	FirstError    string
	Latencies     []time.Duration // sorted
	ClientCPU     time.Duration   // this process's CPU during the run
}

func (o outcome) rate() float64 {
	if o.Elapsed <= 0 {
		return 0
	}
	return float64(o.Notifications) / o.Elapsed.Seconds()
}

// errors counts requests that did not get a 2xx answer.
func (o outcome) errors() int {
	n := o.Failures + o.BadEcho
	for code, c := range o.Statuses {
		if code < 200 || code > 299 {
			n += c
		}
	}
	return n
}

// newClient returns a keep-alive client with enough idle connections for
// conc workers (the default of 2 per host would reconnect constantly).
func newClient(conc int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			MaxIdleConns:        conc * 2,
			MaxIdleConnsPerHost: conc * 2,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// run sends the load and waits for every answer.
func (l load) run(ctx context.Context, client *http.Client) outcome {
	conc := max(l.Concurrency, 1)
	items := 1
	if l.Bodies != nil {
		items = l.Bodies.batch
	}
	var (
		mu  sync.Mutex
		out = outcome{Statuses: map[int]int{}}
		wg  sync.WaitGroup
		seq atomic.Int64
	)
	cpu0 := selfCPU()
	start := time.Now()
	deadline := start.Add(l.Duration)
	var interval time.Duration
	if l.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(items) / l.Rate)
	}
	for range conc {
		wg.Go(func() {
			var lat []time.Duration
			local := outcome{Statuses: map[int]int{}}
			for ctx.Err() == nil {
				t0 := time.Now()
				if interval > 0 {
					t0 = start.Add(time.Duration(seq.Add(1)-1) * interval)
					if !t0.Before(deadline) {
						break
					}
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				} else if !t0.Before(deadline) {
					break
				}
				status, err := l.send(ctx, client)
				d := time.Since(t0)
				lat = append(lat, d)
				local.Requests++
				if d > graphBudget {
					local.Late++
				}
				switch {
				case err == errBadEcho:
					local.BadEcho++
				case err != nil:
					local.Failures++
					if local.FirstError == "" {
						local.FirstError = err.Error()
					}
				default:
					local.Statuses[status]++
					if status >= 200 && status <= 299 {
						local.Notifications += items
					} else if local.FirstError == "" {
						local.FirstError = "HTTP " + strconv.Itoa(status)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out.Requests += local.Requests
			out.Notifications += local.Notifications
			out.Failures += local.Failures
			out.Late += local.Late
			out.BadEcho += local.BadEcho
			if out.FirstError == "" {
				out.FirstError = local.FirstError
			}
			for k, v := range local.Statuses {
				out.Statuses[k] += v
			}
			out.Latencies = append(out.Latencies, lat...)
		})
	}
	wg.Wait()
	out.Elapsed = time.Since(start)
	out.ClientCPU = selfCPU() - cpu0
	slices.Sort(out.Latencies)
	return out
}

var errBadEcho = fmt.Errorf("loadbench: handshake answer does not echo the token")

// send makes one request and returns the status.
func (l load) send(ctx context.Context, client *http.Client) (int, error) {
	if l.Bodies != nil {
		return l.sendBody(ctx, client, l.Bodies.take())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.HandshakeURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(l.Token))+1))
	if err != nil {
		return 0, err
	}
	if string(b) != l.Token {
		return resp.StatusCode, errBadEcho
	}
	return resp.StatusCode, nil
}

// sendBody POSTs one notification body to l.URL and returns the status.
func (l load) sendBody(ctx context.Context, client *http.Client, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
