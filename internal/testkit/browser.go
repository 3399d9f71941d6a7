package testkit

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Chromium returns the path of Debian's chromium for browser tests. CI
// installs it (scripts/test-setup.sh) and sets CI, so there a missing
// browser fails the test; elsewhere the test is skipped with a note.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("chromium not found: CI must run scripts/test-setup.sh, which installs it")
	}
	tb.Skip("chromium not found: run scripts/test-setup.sh (installs Debian's chromium) to run the browser tests")
	return ""
}

// Browse runs headless chromium (bin, from [Chromium]) on url with extra
// flags such as --dump-dom or --screenshot=FILE, and returns its stdout.
func Browse(tb testing.TB, bin, url string, flags ...string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir=" + tb.TempDir(),
	}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("chromium %v: %v\n%s", flags, err, stderr.String())
	}
	return out
}

// RenderedTable returns the text of each cell of the table with the given
// id in doc (a page the browser rendered, parsed), row by row, with white
// space folded.
func RenderedTable(tb testing.TB, doc *html.Node, id string) [][]string {
	tb.Helper()
	n := FindNode(doc, func(n *html.Node) bool { return n.Data == "table" && NodeAttr(n, "id") == id })
	if n == nil {
		tb.Fatalf("no table #%s in the rendered page", id)
	}
	var rows [][]string
	walk(n, func(tr *html.Node) {
		if tr.Type != html.ElementNode || tr.Data != "tr" {
			return
		}
		var row []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
				row = append(row, NodeText(c))
			}
		}
		rows = append(rows, row)
	})
	return rows
}

// FindNode returns the first element below n (or n itself) that match
// accepts, or nil.
func FindNode(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n.Type == html.ElementNode && match(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := FindNode(c, match); f != nil {
			return f
		}
	}
	return nil
}

// NodeAttr returns the value of n's attribute key, or "".
func NodeAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// NodeText returns the text below n, with white space folded to single
// spaces.
func NodeText(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteByte(' ')
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// RenderedDOM loads url in headless chromium (bin, from [Chromium]) and
// returns the page as the browser rendered it, parsed.
func RenderedDOM(tb testing.TB, bin, url string) *html.Node {
	tb.Helper()
	doc, err := html.Parse(bytes.NewReader(Browse(tb, bin, url, "--dump-dom")))
	if err != nil {
		tb.Fatalf("parse the page chromium rendered from %s: %v", url, err)
	}
	return doc
}

// Screenshot loads url in headless chromium (bin, from [Chromium]) in a
// window of width × height pixels and returns the screenshot, as PNG
// bytes and decoded. It fails the test unless the screenshot is a PNG of
// exactly that size.
func Screenshot(tb testing.TB, bin, url string, width, height int) ([]byte, image.Image) {
	tb.Helper()
	shot := filepath.Join(tb.TempDir(), "screenshot.png")
	Browse(tb, bin, url, fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		tb.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	if r := img.Bounds(); r.Dx() != width || r.Dy() != height {
		tb.Fatalf("screenshot is %v, want %dx%d", r, width, height)
	}
	return b, img
}
