// Package testkit holds the helpers graphhook's tests share, so that no
// package carries its own copy:
//
//   - polling for a condition and a log buffer safe to read while it is
//     written (this file);
//   - HTTP: a request helper, a response writer that keeps nothing, a
//     recording Sink, a webhook endpoint, and running a command until the
//     test ends (http.go);
//   - keys: an RSA key and key ring for rich notifications, an app
//     certificate, and checking a JWS against a key set (crypto.go);
//   - a clock tests move by hand (clock.go), fuzz seeds from testdata
//     (fuzz.go), and pages rendered by a headless Chromium (browser.go).
//
// It is internal: test support, not API. It must not import graphsim or
// natspub, whose dependencies' own tests use it.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// CheckFor calls f every 10ms until it returns nil, and fails the test with
// f's last error once timeout has passed. It is the poller tests use instead
// of time.Sleep.
func CheckFor(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers, for
// capturing a logger's or a command's output while it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
