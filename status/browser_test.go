package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/graphhook/graphhook/status"
)

var update = flag.Bool("update", false, "rewrite docs/status.png from the headless browser's screenshot")

// chromium finds Debian's chromium. CI installs it (scripts/test-setup.sh);
// elsewhere the browser tests are skipped with a note.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found: CI must run scripts/test-setup.sh, which installs it")
	}
	t.Skip("chromium not found: run scripts/test-setup.sh (installs Debian's chromium) to run the browser tests")
	return ""
}

// browse runs headless chromium on url with extra flags and returns stdout.
func browse(t *testing.T, bin, url string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", flags, err, stderr.String())
	}
	return out
}

// table returns the text of each cell of the table with the given id, row by
// row, as the browser rendered it.
func table(t *testing.T, doc *html.Node, id string) [][]string {
	t.Helper()
	n := find(doc, func(n *html.Node) bool { return n.Data == "table" && attr(n, "id") == id })
	if n == nil {
		t.Fatalf("no table #%s in the rendered page", id)
	}
	var rows [][]string
	walk(n, func(tr *html.Node) {
		if tr.Type != html.ElementNode || tr.Data != "tr" {
			return
		}
		var row []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
				row = append(row, strings.Join(strings.Fields(text(c)), " "))
			}
		}
		rows = append(rows, row)
	})
	return rows
}

func TestStatusPageInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	now := time.Now().UTC().Truncate(time.Second)
	srv := serve(t, hostile(now))

	_, body := get(t, srv.URL+"/status.json")
	var want status.Snapshot
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}

	dom := browse(t, bin, srv.URL+"/status", "--dump-dom")
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	if n := find(doc, func(n *html.Node) bool { return n.Data == "script" || n.Data == "img" }); n != nil {
		t.Fatalf("rendered page holds a <%s> element: attacker markup was not escaped", n.Data)
	}

	subs := table(t, doc, "subscriptions")
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

	q := table(t, doc, "quarantine")
	if len(q) != 2 || q[1][1] != want.Quarantine[0].Reason || q[1][2] != "12" {
		t.Errorf("quarantine table = %q", q)
	}
	st := table(t, doc, "streams")
	if len(st) != 3 || st[1][0] != "GRAPH" || st[1][4] != "billing" || st[1][5] != "17" || st[1][3] != "3" {
		t.Errorf("streams table = %q", st)
	}
	sd := table(t, doc, "standing")
	if sd[0][1] != want.Standing.State || sd[1][1] != "12.5%" {
		t.Errorf("standing table = %q", sd)
	}
	if n := find(doc, func(n *html.Node) bool { return attr(n, "id") == "ready" }); n == nil || !strings.Contains(text(n), want.Degraded) {
		t.Error("degraded cause not shown")
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	browse(t, bin, srv.URL+"/status", "--window-size=1280,900", "--screenshot="+shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if r := img.Bounds(); r.Dx() != 1280 || r.Dy() != 900 {
		t.Fatalf("screenshot is %v", r)
	}
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
		if err := os.WriteFile(filepath.Join("..", "docs", "status.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n.Type == html.ElementNode && match(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := find(c, match); f != nil {
			return f
		}
	}
	return nil
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteByte(' ')
		}
	})
	return b.String()
}
