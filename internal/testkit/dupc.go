package testkit

import (
	"context"
	"testing"
	"time"
)

// Serve runs serve, a command's run function that serves until its ctx
// ends and sends its listening address on ready, on a goroutine, and
// returns that address. It fails the test at once if serve returns
// before it is ready. When the test ends, Serve cancels ctx and fails
// the test unless serve then returns nil within 10 s: the command must
// shut down cleanly.
func Serve(tb testing.TB, serve func(ctx context.Context, ready chan<- string) error) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		tb.Fatalf("run returned before serving: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Error("server did not shut down within 10 s of cancel")
		}
	})
	return addr
}
