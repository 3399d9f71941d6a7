package testkit

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestRenderedTableReadsCellsRowByRow(t *testing.T) {
	doc, err := html.Parse(strings.NewReader(`<table id="x"><tr><th>a</th><th> b
	c </th></tr><tr><td><code>1</code> <i>2</i></td><td></td></tr></table><table id="y"><tr><td>no</td></tr></table>`))
	if err != nil {
		t.Fatal(err)
	}
	got := RenderedTable(t, doc, "x")
	want := [][]string{{"a", "b c"}, {"1 2", ""}}
	if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("RenderedTable = %q, want %q", got, want)
	}
}

// TestRenderedDOMAndScreenshotOfARealPage has headless chromium render a
// page whose table is written by a script, so only a real browser sees
// its rows, and take a screenshot of a given size.
func TestRenderedDOMAndScreenshotOfARealPage(t *testing.T) {
	bin := Chromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><body style="background:#c00"><table id="t"></table>
<script>document.getElementById("t").innerHTML = "<tr><td>drawn</td><td>by script</td></tr>";</script>`)
	}))
	defer srv.Close()
	rows := RenderedTable(t, RenderedDOM(t, bin, srv.URL), "t")
	if want := [][]string{{"drawn", "by script"}}; !slices.EqualFunc(rows, want, slices.Equal[[]string]) {
		t.Errorf("rendered table = %q, want %q", rows, want)
	}
	b, img := Screenshot(t, bin, srv.URL, 320, 200)
	if !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("screenshot bytes are not a PNG: % x", b[:min(8, len(b))])
	}
	if r, g, _, _ := img.At(160, 100).RGBA(); r>>8 < 0xa0 || g>>8 > 0x40 {
		t.Errorf("screenshot centre is %v, want the page's red background", img.At(160, 100))
	}
}
