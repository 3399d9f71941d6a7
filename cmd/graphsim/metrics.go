package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// notificationsMetric is the receiver's counter of notifications by
// outcome (published, stored, duplicate, client_state, token_invalid, ...).
const notificationsMetric = "graphhook_notifications_total"

// scrapeOutcomes reads the receiver's Prometheus metrics and returns
// graphhook_notifications_total by outcome label.
func scrapeOutcomes(ctx context.Context, client *http.Client, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("--metrics-url: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--metrics-url: %w; give the receiver's metrics address, e.g. http://127.0.0.1:9464/metrics", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--metrics-url: %s answered %s", redact(u), resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("--metrics-url: not Prometheus text: %w", err)
	}
	fam, ok := fams[notificationsMetric]
	if !ok {
		return nil, fmt.Errorf("--metrics-url: %s has no %s; is it a graphhook receiver?", redact(u), notificationsMetric)
	}
	out := map[string]float64{}
	for _, m := range fam.GetMetric() {
		outcome := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" {
				outcome = l.GetValue()
			}
		}
		out[outcome] += m.GetCounter().GetValue()
	}
	return out, nil
}

// receiverOutcome is what the receiver did with a load run's items,
// from the difference of two scrapes.
type receiverOutcome struct {
	// Stored counts new events the stream stored (or, from receivers
	// without that outcome, the published ones).
	Stored float64 `json:"stored"`
	// Rejected counts items by reason (client_state, token_invalid, ...).
	Rejected map[string]float64 `json:"rejected,omitempty"`
}

func diffOutcomes(before, after map[string]float64) receiverOutcome {
	o := receiverOutcome{Rejected: map[string]float64{}}
	_, hasStored := after["stored"]
	for k, v := range after {
		d := v - before[k]
		switch {
		case k == "stored" || (k == "published" && !hasStored):
			o.Stored += d
		case k == "published", k == "duplicate":
		case d > 0:
			o.Rejected[k] = d
		}
	}
	return o
}

func (o receiverOutcome) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "receiver: %.0f stored", o.Stored)
	keys := make([]string, 0, len(o.Rejected))
	for k := range o.Rejected {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, ", %.0f rejected (%s)", o.Rejected[k], k)
	}
	return b.String()
}
