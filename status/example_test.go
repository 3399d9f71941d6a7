package status_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/graphhook/graphhook/status"
)

// The page and its JSON come from one handler: mount it on both paths of the
// operations listener, never on the public one.
func ExampleHandler() {
	page := status.Handler(func(ctx context.Context) (*status.Snapshot, error) {
		return &status.Snapshot{
			GeneratedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
			Ready:       true,
			Subscriptions: []status.Subscription{{
				ID: "sub-1", Resource: "users/u1/messages", ChangeTypes: []string{"created"},
				ExpiresAt: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC),
			}},
		}, nil
	})
	ops := http.NewServeMux()
	ops.Handle("/status", page)
	ops.Handle("/status.json", page)

	for _, path := range []string{"/status", "/status.json"} {
		rec := httptest.NewRecorder()
		ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// /status 200 text/html; charset=utf-8
	// /status.json 200 application/json
}
