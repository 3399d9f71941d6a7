package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/net/html"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/status"
)

// statusScreenshot is the screenshot the README shows; -update rewrites it.
var statusScreenshot = filepath.Join("..", "..", "docs", "status.png")

// TestStatusPageOfTheDaemonInChromium runs the daemon with the subscription
// manager against graphsim over TLS, has Graph deliver a notification, and
// loads /status in headless Chromium: the rendered subscriptions table
// shows what /status.json says (id, resource, change types, an expiry
// countdown, the last notification). With -update it rewrites
// docs/status.png, the screenshot the README shows.
func TestStatusPageOfTheDaemonInChromium(t *testing.T) {
	bin := testkit.Chromium(t)
	sim, dir, addr, yaml := walkthroughGraph(t)
	p := startInProcess(t, []string{"--listen", addr, "--data-dir", dir, "--embedded-nats-listen", freeAddr(t),
		"--config", writeFile(t, dir, "receiver.yaml", yaml)}, nil)
	js, err := jetstream.New(natstest.Connect(t, embeddedURL(t, p.endpoints.nats, dir)))
	if err != nil {
		t.Fatal(err)
	}
	var sub graphsim.Subscription
	testkit.CheckFor(t, 20*time.Second, func() error {
		for _, s := range sim.Subscriptions() {
			sub = s
			return nil
		}
		return fmt.Errorf("graphsim holds no subscription yet")
	})
	if _, err := sim.Change(t.Context(), graphsim.ChangeRequest{SubscriptionID: sub.ID}); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 10*time.Second, func() error {
		if n := streamMsgs(t, js, natspub.DefaultStream); n != 1 {
			return fmt.Errorf("%d messages in %s, want 1", n, natspub.DefaultStream)
		}
		return nil
	})
	var want status.Snapshot
	testkit.CheckFor(t, 10*time.Second, func() error {
		code, body, err := get(t.Context(), p.ops+"/status.json")
		if err != nil || code != 200 {
			return fmt.Errorf("/status.json: %d %v", code, err)
		}
		want = status.Snapshot{}
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			return err
		}
		if len(want.Subscriptions) != 1 || want.Subscriptions[0].LastNotification.IsZero() {
			return fmt.Errorf("/status.json subscriptions %+v, want one with its last notification", want.Subscriptions)
		}
		return nil
	})
	s := want.Subscriptions[0]
	if s.ID != sub.ID || s.Resource != sub.Resource {
		t.Fatalf("/status.json shows %s %s, graphsim holds %s %s", s.ID, s.Resource, sub.ID, sub.Resource)
	}

	dom := testkit.Browse(t, bin, p.ops+"/status", "--dump-dom")
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	rows := testkit.RenderedTable(t, doc, "subscriptions")
	if len(rows) != 2 {
		t.Fatalf("subscriptions table has rows %q, want a header and one row", rows)
	}
	row := rows[1]
	if len(row) < 5 {
		t.Fatalf("subscriptions row %q has %d cells, want at least 5", row, len(row))
	}
	if row[0] != s.ID || row[1] != s.Resource || row[2] != strings.Join(s.ChangeTypes, ", ") {
		t.Errorf("row %q, want id %q, resource %q, change types %q", row, s.ID, s.Resource, s.ChangeTypes)
	}
	if !strings.HasPrefix(row[3], "in ") || !s.ExpiresAt.After(want.GeneratedAt) {
		t.Errorf("expiry cell %q (expires %v), want a countdown starting \"in \"", row[3], s.ExpiresAt)
	}
	if row[4] == "never" || !strings.HasSuffix(row[4], " ago") {
		t.Errorf("last notification cell %q, want how long ago the notification came", row[4])
	}

	b, _ := testkit.Screenshot(t, bin, p.ops+"/status", 1280, 900)
	if *update {
		if err := os.WriteFile(statusScreenshot, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
