package testkit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestRecorderKeepsEveryConcurrentValueUntilItFails(t *testing.T) {
	var r Recorder[int]
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := r.Record(i); err != nil {
				t.Errorf("Record(%d) = %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := len(r.All()); got != 50 {
		t.Fatalf("kept %d values, want 50", got)
	}
	down := errors.New("down")
	r.Fail(down)
	if err := r.Record(99); !errors.Is(err, down) {
		t.Fatalf("Record after Fail = %v, want %v", err, down)
	}
	r.Fail(nil)
	if err := r.Record(100); err != nil || len(r.All()) != 51 {
		t.Fatalf("Record after Fail(nil) = %v, %d values, want nil, 51", err, len(r.All()))
	}
}

func TestDoSendsTheContentTypeAndReadsTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Content-Type", r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write(append([]byte(r.Method+" "), b...))
	}))
	t.Cleanup(srv.Close)
	resp, body := Do(t, http.MethodPut, srv.URL, "application/json", []byte(`{}`))
	if resp.StatusCode != http.StatusTeapot || string(body) != "PUT {}" || resp.Header.Get("X-Content-Type") != "application/json" {
		t.Fatalf("status %d, body %q, Content-Type %q", resp.StatusCode, body, resp.Header.Get("X-Content-Type"))
	}
	resp, _ = Do(t, http.MethodGet, srv.URL, "", nil)
	if got := resp.Header.Get("X-Content-Type"); got != "" {
		t.Fatalf("Content-Type %q sent for an empty contentType", got)
	}
}

func TestDiscardWriterResetForgetsTheLastAnswer(t *testing.T) {
	var w DiscardWriter
	http.Error(&w, "gone", http.StatusGone)
	if w.Status != http.StatusGone || w.Header().Get("Content-Type") == "" {
		t.Fatalf("status %d, headers %v", w.Status, w.Header())
	}
	w.Reset()
	if w.Status != 0 || len(w.Header()) != 0 {
		t.Fatalf("after Reset: status %d, headers %v", w.Status, w.Header())
	}
}

func TestWebhookKeepsJSONBodiesAndLetsRespondAnswer(t *testing.T) {
	var h Webhook[map[string]int]
	srv := httptest.NewServer(&h)
	t.Cleanup(srv.Close)
	post := func(body string) int {
		t.Helper()
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(`{"a":1}`); st != http.StatusAccepted {
		t.Fatalf("JSON body: %d, want 202", st)
	}
	if st := post(`not json`); st != http.StatusBadRequest {
		t.Fatalf("malformed body: %d, want 400", st)
	}
	h.SetRespond(func(n int64, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if n != 3 || string(body) != `{"b":2}` {
			t.Errorf("respond saw request %d with %q", n, body)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	if st := post(`{"b":2}`); st != http.StatusServiceUnavailable {
		t.Fatalf("answered by respond: %d, want 503", st)
	}
	if got := h.Bodies(); len(got) != 1 || got[0]["a"] != 1 {
		t.Fatalf("bodies %v, want only the first", got)
	}
	if n := h.Posts(); n != 3 {
		t.Fatalf("posts %d, want 3", n)
	}
}

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
