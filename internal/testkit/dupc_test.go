package testkit

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// TestServeReturnsTheAddressAndStopsTheServerAtTheEnd runs a real HTTP
// server through Serve and checks that it answers while the test runs
// and has stopped once the subtest's cleanup ran.
func TestServeReturnsTheAddressAndStopsTheServerAtTheEnd(t *testing.T) {
	var addr string
	t.Run("serve", func(t *testing.T) {
		addr = Serve(t, func(ctx context.Context, ready chan<- string) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ready <- ln.Addr().String()
			srv := &http.Server{Handler: http.NotFoundHandler()}
			go func() {
				<-ctx.Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("%s still accepts connections after the test's cleanup", addr)
	}
}

// TestServeReportsARunThatFailsAtStart checks that a run function that
// fails before it is ready fails the test.
func TestServeReportsARunThatFailsAtStart(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ft, func(context.Context, chan<- string) error { return errors.New("no listener") })
	}()
	<-done
	if !ft.fatal {
		t.Error("Serve did not fail the test when run returned before serving")
	}
}

// fatalRecorder records a Fatalf and ends the goroutine as testing does,
// without failing the enclosing test.
type fatalRecorder struct {
	testing.TB
	fatal bool
}

func (f *fatalRecorder) Fatalf(string, ...any) {
	f.fatal = true
	runtime.Goexit()
}
