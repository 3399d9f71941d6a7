package receiver

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzLogText checks the sanitiser of hostile log values: the result is
// valid UTF-8, printable, at most max characters plus "...", and equal to
// the input when that was short printable ASCII already.
func FuzzLogText(f *testing.F) {
	for _, s := range []string{"", "abc", "\xff\xfe", "a\x00b\nc", strings.Repeat("é", 100), "ContentBaſe64", "\u2028\u202e"} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = limit%200 + 1
		if limit < 1 {
			limit += 200
		}
		got := logText(s, limit)
		if !utf8.ValidString(got) {
			t.Fatalf("logText(%q, %d) = %q: invalid UTF-8", s, limit, got)
		}
		body := got
		if in := utf8.RuneCountInString(s); in > limit {
			var ok bool
			if body, ok = strings.CutSuffix(got, "..."); !ok {
				t.Fatalf("logText(%q, %d) = %q: clipped without \"...\"", s, limit, got)
			}
		}
		if n, in := utf8.RuneCountInString(body), utf8.RuneCountInString(s); n != min(in, limit) {
			t.Fatalf("logText(%q, %d) = %q: %d characters, want %d", s, limit, got, n, min(in, limit))
		}
		for _, r := range body {
			if !unicode.IsPrint(r) && r != '?' {
				t.Fatalf("logText(%q, %d) = %q: unprintable %U", s, limit, got, r)
			}
		}
		ascii := !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' })
		if ascii && len(s) <= limit && got != s {
			t.Fatalf("logText(%q, %d) = %q, want the input unchanged", s, limit, got)
		}
	})
}
