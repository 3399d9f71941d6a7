package testkit

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Screenshot has headless chromium (bin, from [Chromium]) render url in a
// window of width × height pixels and returns the PNG file and its decoded
// image. It fails the test when the PNG cannot be read or has another size.
func Screenshot(tb testing.TB, bin, url string, width, height int) ([]byte, image.Image) {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "screenshot.png")
	Browse(tb, bin, url, fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+file)
	b, err := os.ReadFile(file)
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
