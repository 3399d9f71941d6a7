package main

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Drain grace: at shutdown the notification listener is closed first (a
// new connection is refused, so its request was never sent), then the
// open connections are served for up to drainGrace (at most half of
// --shutdown-timeout) with every answer saying Connection: close, so that
// each client learns at its next answer that the connection ends, instead
// of sending a request on a connection http.Server.Shutdown closes as
// idle (a keep-alive race that cut POSTs in flight with no answer). The
// grace ends early once no connection is open, or once drainQuiet has
// passed with no request running or starting.
const (
	drainGrace = time.Second
	drainQuiet = 250 * time.Millisecond
)

// drainer tracks the notification server's connections and requests for
// the drain grace.
type drainer struct {
	draining *atomic.Bool // the daemon's: set when shutdown starts
	conns    atomic.Int64 // open connections
	active   atomic.Int64 // requests running
	last     atomic.Int64 // when the last request started, UnixNano
}

// connState is the server's ConnState hook.
func (dr *drainer) connState(_ any, st http.ConnState) {
	switch st {
	case http.StateNew:
		dr.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		dr.conns.Add(-1)
	}
}

// wrap counts the requests of next and, once draining, gives their
// answers Connection: close, also for requests that began before.
func (dr *drainer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dr.active.Add(1)
		dr.last.Store(time.Now().UnixNano())
		defer dr.active.Add(-1)
		next.ServeHTTP(&drainWriter{ResponseWriter: w, draining: dr.draining}, r)
	})
}

// wait returns when the grace is over: after grace, when no connection is
// open, or when no request ran or started for drainQuiet.
func (dr *drainer) wait(grace time.Duration) {
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if dr.conns.Load() == 0 {
			return
		}
		if dr.active.Load() == 0 && time.Since(time.Unix(0, dr.last.Load())) >= drainQuiet {
			return
		}
		<-tick.C
	}
}

// drainWriter adds Connection: close to an answer written while draining.
type drainWriter struct {
	http.ResponseWriter
	draining *atomic.Bool
	written  bool
}

func (w *drainWriter) mark() {
	if !w.written {
		w.written = true
		if w.draining.Load() {
			w.ResponseWriter.Header().Set("Connection", "close")
		}
	}
}

func (w *drainWriter) WriteHeader(code int) {
	if code >= 200 {
		w.mark()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *drainWriter) Write(b []byte) (int, error) {
	w.mark()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *drainWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// onceCloseListener closes its listener once: shutdown closes the
// notification listener before http.Server.Shutdown, which closes it again
// and would report that second close as its error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
