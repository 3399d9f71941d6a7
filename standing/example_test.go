package standing_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graphhook/graphhook/standing"
)

// Example wraps the notification handler with the middleware, exports the
// metrics and reads the standing Graph would give the endpoint. Observe
// stands in for 100 delivery requests here, 12 of which Graph gave up on
// after its 3 s budget.
func Example() {
	mon, err := standing.New(standing.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	notifications := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	mux.Handle("/notifications", mon.Middleware("notifications")(notifications))
	prometheus.NewRegistry().MustRegister(mon)

	for i := range 100 {
		if i%8 == 0 && i < 96 {
			mon.Observe("notifications", 3100*time.Millisecond, 3*time.Second, http.StatusServiceUnavailable)
			continue
		}
		mon.Observe("notifications", 40*time.Millisecond, 0, http.StatusAccepted)
	}
	e, _ := mon.Snapshot().Endpoint("notifications")
	fmt.Printf("%s: %d of %d answers slow (%.0f%%)\n", e.State, e.Slow, e.Responses, 100*e.SlowRatio)
	// Output:
	// slow: 12 of 100 answers slow (12%)
}
