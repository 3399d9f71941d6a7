package main

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// overloadRetryAfter is the Retry-After of a request refused for the
// in-flight budget: Graph redelivers with its own backoff anyway.
const overloadRetryAfter = 5 * time.Second

// smallBodyBytes is the largest body that may use the budget's reserve
// for small bodies: Graph's batches are usually a few KiB, so a body up to
// this size is always one Graph could plausibly send.
const smallBodyBytes = 256 << 10

// smallReserveDivisor sets the reserve for small bodies: a quarter of the
// budget (less when --max-body-bytes needs more room, see newBodyBudget).
const smallReserveDivisor = 4

// bodyBudget bounds the notification body bytes being received or
// processed at once, so that slow or many clients cannot make the
// receiver hold more than limit bytes of bodies (issue 15). Bodies larger
// than smallBodyBytes may use only limit-reserve bytes together, so that
// slow clients announcing large bodies cannot starve Graph's small
// batches: those may use the whole limit.
type bodyBudget struct {
	limit   int64
	reserve int64 // bytes only bodies up to smallBodyBytes may use
	used    atomic.Int64
	large   atomic.Int64 // the part of used taken by bodies over smallBodyBytes
}

// newBodyBudget returns a budget of limit bytes with a quarter reserved
// for small bodies, or less when a body of maxBody bytes (the largest
// one admitted) would not otherwise fit in the rest.
func newBodyBudget(limit, maxBody int64) *bodyBudget {
	reserve := min(limit/smallReserveDivisor, max(0, limit-maxBody))
	return &bodyBudget{limit: limit, reserve: reserve}
}

// take reserves n bytes; it reports false, reserving nothing, when that
// would exceed the limit, or, for a body over smallBodyBytes, the part of
// the limit outside the small bodies' reserve.
func (b *bodyBudget) take(n int64) bool {
	if n > smallBodyBytes {
		if b.large.Add(n) > b.limit-b.reserve {
			b.large.Add(-n)
			return false
		}
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		if n > smallBodyBytes {
			b.large.Add(-n)
		}
		return false
	}
	return true
}

func (b *bodyBudget) release(n int64) {
	b.used.Add(-n)
	if n > smallBodyBytes {
		b.large.Add(-n)
	}
}

// admit guards the notification listener: a request with a body reserves
// its Content-Length (or --max-body-bytes when unknown) from the in-flight
// budget (bodies over smallBodyBytes from its share outside the small
// bodies' reserve) or is answered 503 with Retry-After at once, without
// reading the body; an admitted body must arrive within --body-timeout of the headers,
// else the connection is cut. Both are counted in
// graphhook_requests_shed_total and graphhook_inflight_body_bytes.
func (d *daemon) admit(next http.Handler) http.Handler {
	c := d.cfg
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			// No body to hold or wait for (a validation handshake, a GET):
			// no reservation and no read deadline, which costs a timer.
			next.ServeHTTP(w, r)
			return
		}
		n := c.MaxBodyBytes
		if r.ContentLength >= 0 && r.ContentLength < n {
			n = r.ContentLength
		}
		if !d.budget.take(n) {
			d.metrics.shed.WithLabelValues("budget").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(overloadRetryAfter/time.Second)))
			w.Header().Set("Connection", "close")
			http.Error(w, "busy: too many notification bytes in flight, retry later", http.StatusServiceUnavailable)
			return
		}
		defer d.budget.release(n)
		// A deadline for the whole body: the server's ReadTimeout alone
		// would let 50 trickling clients hold their buffers for 30 s.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(c.BodyTimeout))
		next.ServeHTTP(w, r)
	})
}
