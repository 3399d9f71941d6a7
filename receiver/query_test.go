package receiver

import (
	"net/url"
	"strings"
	"testing"
)

// checkTokenLikeParseQuery fails unless ValidationToken agrees with
// url.ParseQuery on rawQuery.
func checkTokenLikeParseQuery(t *testing.T, rawQuery string) {
	t.Helper()
	q, _ := url.ParseQuery(rawQuery)
	got, gotOK := ValidationToken(rawQuery)
	if want, wantOK := q.Get("validationToken"), q.Has("validationToken"); got != want || gotOK != wantOK {
		t.Fatalf("ValidationToken(%q) = %q, %v; url.ParseQuery gives %q, %v", rawQuery, got, gotOK, want, wantOK)
	}
}

func TestValidationTokenMatchesParseQuery(t *testing.T) {
	for _, tt := range []struct{ name, query string }{
		{"none", ""},
		{"other params", "tenant=contoso&x=1"},
		{"plain", "validationToken=abc"},
		{"escaped", "validationToken=Validation%3a+Testing+client+application+reachability"},
		{"empty value", "validationToken="},
		{"no equals", "validationToken"},
		{"first wins", "validationToken=a&validationToken=b"},
		{"after others", "tenant=contoso&validationToken=x%20y"},
		{"escaped key", "validation%54oken=k"},
		{"plus in key", "validation+Token=k"},
		{"bad escape skipped", "validationToken=%zz&validationToken=ok"},
		{"bad key escape", "validation%zToken=x"},
		{"semicolon in pair", "validationToken=a;b&validationToken=c"},
		{"semicolon in key", "a;validationToken=x"},
		{"case differs", "validationtoken=x"},
		{"prefix only", "validationTokenX=x"},
		{"many params", strings.Repeat("a=1&", maxScannedParams) + "validationToken=t"},
	} {
		t.Run(tt.name, func(t *testing.T) { checkTokenLikeParseQuery(t, tt.query) })
	}
}

// FuzzValidationToken checks ValidationToken against url.ParseQuery on
// arbitrary queries.
func FuzzValidationToken(f *testing.F) {
	for _, s := range []string{"validationToken=a%3a+b", "x=1&validationToken=", "validation%54oken=1;", "validationToken=%", "&&=&validationToken"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) { checkTokenLikeParseQuery(t, rawQuery) })
}
