package testkit

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
