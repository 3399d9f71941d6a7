package testkit

import (
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
