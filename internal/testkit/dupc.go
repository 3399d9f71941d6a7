package testkit

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Serve runs serve, a command's run function that serves until its ctx
// ends and sends its listening address on ready, on a goroutine, and
// returns that address. It fails the test at once if serve returns
// before it is ready. When the test ends, Serve cancels ctx and fails
// the test unless serve then returns nil within 10 s: the command must
// shut down cleanly.
func Serve(tb testing.TB, serve func(ctx context.Context, ready chan<- string) error) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		tb.Fatalf("run returned before serving: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Error("server did not shut down within 10 s of cancel")
		}
	})
	return addr
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
