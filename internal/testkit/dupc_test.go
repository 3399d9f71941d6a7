package testkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
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

// TestRenderedDOMAndScreenshotOfARealPage has headless chromium render a
// page whose table is written by a script, so only a real browser sees
// its rows, and take a screenshot of a given size.
func TestRenderedDOMAndScreenshotOfARealPage(t *testing.T) {
	bin := Chromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><body style="background:#c00"><table id="t"></table>
<script>document.getElementById("t").innerHTML = "<tr><td>drawn</td><td>by script</td></tr>";</script>`)
	}))
	defer srv.Close()
	rows := RenderedTable(t, RenderedDOM(t, bin, srv.URL), "t")
	if want := [][]string{{"drawn", "by script"}}; !slices.EqualFunc(rows, want, slices.Equal[[]string]) {
		t.Errorf("rendered table = %q, want %q", rows, want)
	}
	b, img := Screenshot(t, bin, srv.URL, 320, 200)
	if !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("screenshot bytes are not a PNG: % x", b[:min(8, len(b))])
	}
	if r, g, _, _ := img.At(160, 100).RGBA(); r>>8 < 0xa0 || g>>8 > 0x40 {
		t.Errorf("screenshot centre is %v, want the page's red background", img.At(160, 100))
	}
}
