package receiver

import (
	"encoding/json"
	"unicode/utf8"
)

// This file splits JSON that encoding/json has already validated into its
// top-level members, in one pass and without decoding the values. Parse
// uses it so a batch is validated once and each item is not decoded into a
// map by reflection; FuzzScan checks it against encoding/json.

// objectMembers returns the members of the JSON object b, the last value
// winning for a repeated key as in encoding/json. ok is false when b is not
// an object. b must be valid JSON; on other input the result is unspecified
// but the function does not panic.
func objectMembers(b []byte) (m map[string]json.RawMessage, ok bool) {
	ms := newMembers(b)
	if ms.bad {
		return nil, false
	}
	m = make(map[string]json.RawMessage, 12)
	for {
		rawKey, val, ok := ms.next()
		if !ok {
			break
		}
		key, ok := stringValue(rawKey)
		if !ok {
			return nil, false
		}
		m[key] = val
	}
	if ms.bad {
		return nil, false
	}
	return m, true
}

// members iterates over the members of a JSON object without allocating.
// The same preconditions as objectMembers apply.
type members struct {
	b    []byte
	i    int
	done bool
	bad  bool // b is not an object
}

func newMembers(b []byte) members {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return members{done: true, bad: true}
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return members{done: true}
	}
	return members{b: b, i: i}
}

// next returns the next member: its key as a raw JSON string, quotes
// included, and its value. ok is false after the last member, or when the
// object is malformed (then m.bad is set).
func (m *members) next() (key, val json.RawMessage, ok bool) {
	if m.done {
		return nil, nil, false
	}
	b, i := m.b, m.i
	fail := func() (json.RawMessage, json.RawMessage, bool) {
		m.done, m.bad = true, true
		return nil, nil, false
	}
	if i >= len(b) || b[i] != '"' {
		return fail()
	}
	end := skipString(b, i)
	if end < 0 {
		return fail()
	}
	key = b[i:end:end]
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return fail()
	}
	i = skipSpace(b, i+1)
	vend := skipValue(b, i)
	if vend < 0 {
		return fail()
	}
	val = b[i:vend:vend]
	i = skipSpace(b, vend)
	if i >= len(b) {
		return fail()
	}
	switch b[i] {
	case ',':
		m.i = skipSpace(b, i+1)
	case '}':
		m.done = true
	default:
		return fail()
	}
	return key, val, true
}

// arrayElements returns the elements of the JSON array b; ok is false when
// b is not an array. The same preconditions as objectMembers apply.
func arrayElements(b []byte) (elems []json.RawMessage, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	elems = []json.RawMessage{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return elems, true
	}
	for i < len(b) {
		end := skipValue(b, i)
		if end < 0 {
			return nil, false
		}
		elems = append(elems, b[i:end:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return elems, true
		default:
			return nil, false
		}
	}
	return nil, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"',
// or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if i == start {
					return -1
				}
				return i
			}
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}

// stringValue decodes the JSON string s (with its quotes).
func stringValue(s []byte) (string, bool) {
	if v, ok := plainString(s); ok {
		return v, true
	}
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return "", false
	}
	return v, true
}

// plainString returns the value of a JSON string without escapes or control
// characters, the common case, without another validating decode.
func plainString(b []byte) (string, bool) {
	c, ok := plainContent(b)
	return string(c), ok
}

// plainContent returns the bytes between the quotes of b, a JSON string
// without escapes, control characters or invalid UTF-8; ok is false for
// anything else, which its callers decode with encoding/json, so that a
// string reads the same either way (encoding/json turns invalid UTF-8
// into U+FFFD, as it writes the events).
func plainContent(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	c := b[1 : len(b)-1]
	var high byte // the bits of every byte, or-ed: 0x80 is set when one is not ASCII
	for _, x := range c {
		if x == '\\' || x == '"' || x < 0x20 {
			return nil, false
		}
		high |= x
	}
	if high >= utf8.RuneSelf && !utf8.Valid(c) {
		return nil, false
	}
	return c, true
}
