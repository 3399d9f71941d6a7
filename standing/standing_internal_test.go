package standing

import "testing"

func TestIsHandshakeFindsTheValidationTokenKey(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"validationToken=abc", true},
		{"a=1&validationToken=x%2By", true},
		{"validationToken", true},
		{"", false},
		{"myvalidationToken=1", false},
		{"a=validationToken", false},
	} {
		if got := isHandshake(tc.query); got != tc.want {
			t.Errorf("isHandshake(%q) = %v, want %v", tc.query, got, tc.want)
		}
	}
}
