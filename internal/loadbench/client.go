package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphhook/graphhook/graphsim"
)

// requestTimeout bounds one POST of the load client; Graph's own budget is
// 3 s, so answers later than that are counted as late, not lost.
const requestTimeout = 10 * time.Second

// graphBudget is Graph's time limit for one delivery (protocol doc §3).
const graphBudget = 3 * time.Second

// load describes one load run against one server.
type load struct {
	URL string // notification URL, http://host:port/path
	// Bodies supplies the notification bodies; nil sends validation
	// handshakes (POST with ?validationToken=, empty body) instead.
	Bodies *bodySet
	// Token, for handshakes, is the validationToken the answer must echo.
	Token string
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

var errBadEcho = errors.New("loadbench: handshake answer does not echo the token")

// run sends the load and waits for every answer.
func (l load) run(ctx context.Context) outcome {
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
			c, err := newConn(l.URL, l.Token)
			local := outcome{Statuses: map[int]int{}}
			if err != nil {
				local.Failures, local.FirstError = 1, err.Error()
			}
			var lat []time.Duration
			for err == nil && ctx.Err() == nil {
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
				status, err := c.post(l.Bodies, l.Token)
				d := time.Since(t0)
				lat = append(lat, d)
				local.Requests++
				if d > graphBudget {
					local.Late++
				}
				switch {
				case errors.Is(err, errBadEcho):
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
			c.close()
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

// conn is one keep-alive HTTP/1.1 connection of a load worker. It writes
// each request with one writev from reused buffers and parses the answer
// with net/http's ReadResponse: a fraction of the CPU net/http's Transport
// spends per request (its per-connection goroutines and channel hand-offs),
// which matters because the client shares the server's two cores.
type conn struct {
	host, path string // Host header and request-target
	c          net.Conn
	br         *bufio.Reader
	head, body []byte
}

// newConn prepares a connection to rawURL; with token set, its requests
// are validation handshakes, with the query encoded as Graph encodes it.
func newConn(rawURL, token string) (*conn, error) {
	if token != "" {
		var err error
		if rawURL, err = graphsim.HandshakeURL(rawURL, token); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("loadbench: %s: only http URLs", rawURL)
	}
	return &conn{host: u.Host, path: u.RequestURI()}, nil
}

// dial connects unless connected.
func (c *conn) dial() error {
	if c.c != nil {
		return nil
	}
	nc, err := net.DialTimeout("tcp", c.host, requestTimeout)
	if err != nil {
		return err
	}
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 4096)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

func (c *conn) close() {
	if c != nil && c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// post sends the next body of bodies, or with bodies nil a validation
// handshake carrying token, and returns the answer's status. It reconnects
// when the connection was closed.
func (c *conn) post(bodies *bodySet, token string) (int, error) {
	if err := c.dial(); err != nil {
		return 0, err
	}
	ctype := "text/plain"
	c.body = c.body[:0]
	if bodies != nil {
		c.body = bodies.appendNext(c.body)
		ctype = "application/json; charset=utf-8"
	}
	c.head = append(c.head[:0], "POST "...)
	c.head = append(c.head, c.path...)
	c.head = append(c.head, " HTTP/1.1\r\nHost: "...)
	c.head = append(c.head, c.host...)
	c.head = append(c.head, "\r\nContent-Type: "...)
	c.head = append(c.head, ctype...)
	c.head = append(c.head, "\r\nContent-Length: "...)
	c.head = strconv.AppendInt(c.head, int64(len(c.body)), 10)
	c.head = append(c.head, "\r\n\r\n"...)
	c.c.SetDeadline(time.Now().Add(requestTimeout))
	bufs := net.Buffers{c.head, c.body}
	if _, err := bufs.WriteTo(c.c); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	status := resp.StatusCode
	if bodies == nil && status == http.StatusOK {
		b, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(token))+1))
		if err == nil && string(b) != token {
			err = errBadEcho
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		if err != nil && !errors.Is(err, errBadEcho) || resp.Close {
			c.close()
		}
		return status, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return status, err
}
