package status_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/status"
)

var update = flag.Bool("update", false, "rewrite docs/status.png from the headless browser's screenshot")

func TestStatusPageInHeadlessChromium(t *testing.T) {
	bin := testkit.Chromium(t)
	now := time.Now().UTC().Truncate(time.Second)
	srv := serve(t, hostile(now))

	_, body := get(t, srv.URL+"/status.json")
	var want status.Snapshot
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}

	dom := testkit.Browse(t, bin, srv.URL+"/status", "--dump-dom")
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	if n := testkit.FindNode(doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "img" }); n != nil {
		t.Fatalf("rendered page holds a <%s> element: attacker markup was not escaped", n.Data)
	}

	subs := testkit.RenderedTable(t, doc, "subscriptions")
	if len(subs) != 1+len(want.Subscriptions) {
		t.Fatalf("subscriptions table has %d rows, want header + %d", len(subs), len(want.Subscriptions))
	}
	for i, s := range want.Subscriptions {
		row := subs[i+1]
		if row[0] != s.ID || row[1] != s.Resource || row[2] != strings.Join(s.ChangeTypes, ", ") {
			t.Errorf("row %d = %q, want id %q resource %q", i, row, s.ID, s.Resource)
		}
		wantPrefix := "in "
		if s.ExpiresAt.Before(want.GeneratedAt) {
			wantPrefix = "expired "
		}
		if !strings.HasPrefix(row[3], wantPrefix) {
			t.Errorf("row %d expiry %q, want it to start %q", i, row[3], wantPrefix)
		}
		if row[6] != s.LastOutcome {
			t.Errorf("row %d outcome %q, want %q", i, row[6], s.LastOutcome)
		}
	}
	if got := subs[1][3]; got != "in 2d 2h" {
		t.Errorf("countdown = %q, want %q (50h30m)", got, "in 2d 2h")
	}
	if !strings.Contains(subs[1][7], "reauthorizationRequired") || !strings.Contains(subs[1][7], "gap") {
		t.Errorf("lifecycle cell = %q", subs[1][7])
	}

	q := testkit.RenderedTable(t, doc, "quarantine")
	if len(q) != 2 || q[1][1] != want.Quarantine[0].Reason || q[1][2] != "12" {
		t.Errorf("quarantine table = %q", q)
	}
	st := testkit.RenderedTable(t, doc, "streams")
	if len(st) != 3 || st[1][0] != "GRAPH" || st[1][4] != "billing" || st[1][5] != "17" || st[1][3] != "3" {
		t.Errorf("streams table = %q", st)
	}
	sd := testkit.RenderedTable(t, doc, "standing")
	if sd[0][1] != want.Standing.State || sd[1][1] != "12.5%" {
		t.Errorf("standing table = %q", sd)
	}
	if n := testkit.FindNode(doc, func(n *html.Node) bool { return testkit.NodeAttr(n, "id") == "ready" }); n == nil || !strings.Contains(testkit.NodeText(n), want.Degraded) {
		t.Error("degraded cause not shown")
	}

	shot, img := testkit.Screenshot(t, bin, srv.URL+"/status", 1280, 900)
	colours := map[[3]uint32]bool{}
	for y := 0; y < 900; y += 9 {
		for x := 0; x < 1280; x += 8 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 12, g >> 12, b >> 12}] = true
		}
	}
	if len(colours) < 4 {
		t.Fatalf("screenshot has %d colours: the page did not render", len(colours))
	}
	if *update {
		if err := os.WriteFile(filepath.Join("..", "docs", "status.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
