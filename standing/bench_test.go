package standing_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/standing"
)

// BenchmarkMiddleware measures what the middleware adds to a request:
// compare /bare (the handler alone) with /observed, e.g.
//
//	go test -run '^$' -bench Middleware -count 10 ./standing | benchstat -col /handler -
func BenchmarkMiddleware(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	mon, err := standing.New(standing.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"handler=bare", h},
		{"handler=observed", mon.Middleware("notifications")(h)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/notifications", strings.NewReader(`{"value":[]}`))
				bc.h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
