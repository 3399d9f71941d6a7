package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

const tenantA, tenantB = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"

func TestConsumerFilters(t *testing.T) {
	ns, nc := natstest.Start(t)
	pub, err := natspub.New(t.Context(), natspub.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	n := func(id, tenant, changeType, lifecycle string) *receiver.Notification {
		return &receiver.Notification{ID: id, SubscriptionID: "sub-1", TenantID: tenant, ChangeType: changeType, LifecycleEvent: lifecycle, Resource: "users/" + id}
	}
	err = pub.Deliver(t.Context(), &receiver.Batch{ReceivedAt: time.Now(), Notifications: []*receiver.Notification{
		n("a-created", tenantA, "created", ""),
		n("a-updated", tenantA, "updated", ""),
		n("b-created", tenantB, "created", ""),
		n("b-missed", tenantB, "", "missed"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		filters []string
		want    []string
	}{
		{"one tenant", []string{"graph.notifications." + tenantA + ".>"}, []string{"users/a-created", "users/a-updated"}},
		{"one change type", []string{"graph.notifications.*.*.created"}, []string{"users/a-created", "users/b-created"}},
		{"lifecycle only", []string{"graph.lifecycle.>"}, []string{"com.microsoft.graph.lifecycle.missed"}},
		{"everything", nil, []string{"users/a-created", "users/a-updated", "users/b-created", "lifecycle.missed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--nats-url", ns.ClientURL(), "--durable", strings.ReplaceAll(tt.name, " ", "-"), "--count", "1"}
			for _, f := range tt.filters {
				args = append(args, "--filter", f)
			}
			var out bytes.Buffer
			// One event per run: the durable consumer resumes where it
			// stopped, so len(want) runs see each event once.
			for range tt.want {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				err := run(ctx, args, &out)
				cancel()
				if err != nil {
					t.Fatalf("run: %v\n%s", err, out.String())
				}
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 2*len(tt.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), 2*len(tt.want), out.String())
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[2*i], w) {
					t.Errorf("event %d = %q, want it to contain %q", i, lines[2*i], w)
				}
			}
			// Nothing else is waiting for this consumer.
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if err := run(ctx, args, &out); err == nil {
				t.Errorf("a further event arrived:\n%s", out.String())
			}
		})
	}
}

func TestConsumerBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--count", "x"}, &out); err == nil {
		t.Error("run accepted --count x")
	}
}

// TestConsumerWithoutTokenSaysWhereItIs connects to a server that, like
// the receiver's embedded one, requires a token: without it the error is
// an authorization failure that says where the token is.
func TestConsumerWithoutTokenSaysWhereItIs(t *testing.T) {
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: t.TempDir(), Port: -1, Token: "a-token-of-the-embedded-server"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	err = run(t.Context(), []string{"--nats-url", ns.ClientURL(), "--count", "1"}, &bytes.Buffer{})
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("run = %v, want an authorization error", err)
	}
	for _, want := range []string{"data/nats-token", "export NATS_URL="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
