package subscriptions

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestEventWireFormat pins the JSON of events and gaps, which consumers
// parse.
func TestEventWireFormat(t *testing.T) {
	at := time.Date(2026, 3, 20, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		v       any
		subject string
		want    string
	}{
		{name: "event", v: Event{Action: ActionRenew, Outcome: OutcomeThrottled, SubscriptionID: "c6126aa3-0ed8-412f-a988-71e6cee627c4", TenantID: "84bd8158-6d4d-4958-8b9f-9d6445542f95",
			Resource: "users/42/messages", ChangeType: "created", Trigger: "schedule", Error: "subscriptions: update c6126aa3-0ed8-412f-a988-71e6cee627c4: 429 TooManyRequests", Time: at},
			subject: EventSubject("graph", "84bd8158-6d4d-4958-8b9f-9d6445542f95", "c6126aa3-0ed8-412f-a988-71e6cee627c4", ActionRenew),
			want:    "graph.subscriptions.84bd8158-6d4d-4958-8b9f-9d6445542f95.c6126aa3-0ed8-412f-a988-71e6cee627c4.renew"},
		{name: "gap", v: Gap{SubscriptionID: "5cfe2387-163c-4006-81bb-1b5e1e060afe", PreviousSubscriptionID: "c6126aa3-0ed8-412f-a988-71e6cee627c4", TenantID: "84bd8158-6d4d-4958-8b9f-9d6445542f95",
			Resource: "users/42/messages", Reason: GapRemoved, Start: at.Add(-time.Hour), End: at},
			subject: GapSubject("graph", "84bd8158-6d4d-4958-8b9f-9d6445542f95", "5cfe2387-163c-4006-81bb-1b5e1e060afe"),
			want:    "graph.gaps.84bd8158-6d4d-4958-8b9f-9d6445542f95.5cfe2387-163c-4006-81bb-1b5e1e060afe"},
		{name: "subject escapes", v: nil, subject: GapSubject("graph", "", "a.b*>"), want: "graph.gaps._.a%2Eb%2A%3E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.subject != tt.want {
				t.Errorf("subject %s, want %s", tt.subject, tt.want)
			}
			if tt.v == nil {
				return
			}
			got, err := json.MarshalIndent(tt.v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update once)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from %s:\n%s", tt.name, path, got)
			}
		})
	}
}

// TestSecretsStayOutOfLogsAndEvents runs creates, a renewal, a removal and
// a recreate with a known clientState and client secret, and finds neither
// in the log nor in any event or record string.
func TestSecretsStayOutOfLogsAndEvents(t *testing.T) {
	st := newStack(t, stackOpts{})
	events := subscribe[json.RawMessage](t, st.nc, "graph.>")
	var logs testkit.SyncBuffer
	spec := st.spec("users/5/messages", "created")
	spec.ClientState = "known-client-state-0123456789"
	generated := st.spec("users/6/messages", "created")
	m := st.manager(t, Config{Subscriptions: []Spec{spec, generated}, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := t.Context()
	reconcile(t, m)
	rec := recordFor(t, m, spec)
	if err := st.g.sim.DeleteSubscription(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	st.clk.Advance(rec.RenewAt.Sub(st.clk.Now()) + time.Second)
	reconcile(t, m)
	secrets := []string{spec.ClientState, recordFor(t, m, generated).ClientState, testSecret}
	var all strings.Builder
	all.WriteString(logs.String())
	testkit.CheckFor(t, 5*time.Second, func() error {
		if len(events()) < 4 {
			return fmt.Errorf("%d messages", len(events()))
		}
		return nil
	})
	for _, e := range events() {
		all.Write(e)
	}
	for _, r := range m.Records() {
		all.WriteString(r.String())
		all.WriteString(fmt.Sprint(r.LogValue()))
	}
	if !strings.Contains(logs.String(), "subscriptions: renew") {
		t.Fatalf("log has no renew line:\n%s", logs.String())
	}
	for _, s := range secrets {
		if strings.Contains(all.String(), s) {
			t.Fatalf("secret %q... found in logs or events", s[:4])
		}
	}
}
