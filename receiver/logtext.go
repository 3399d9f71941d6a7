package receiver

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what one log value taken from a request may hold, in
// characters.
const (
	maxLogValueLen = 64  // an id, a tenant, a change type, a path
	maxLogErrorLen = 256 // an error's text
)

// logText makes s, taken from a request (so possibly hostile), safe and
// small for a log line: at most limit characters, with invalid UTF-8 and
// unprintable characters each replaced by '?', and "..." when clipped. A
// log handler that escapes those characters would otherwise write up to 6
// bytes for each byte received.
func logText(s string, limit int) string {
	clean := true
	if len(s) <= limit {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < ' ' || c > '~' {
				clean = false
				break
			}
		}
		if clean {
			return s
		}
	}
	var b strings.Builder
	b.Grow(min(len(s), limit+3))
	n := 0
	for i := 0; i < len(s); {
		if n == limit {
			b.WriteString("...")
			break
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
		switch {
		case c == utf8.RuneError && size == 1, !unicode.IsPrint(c):
			b.WriteByte('?')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}
