package receiver

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
)

// TestErrorBodyIsJSONWithControlCharacters: the error body is encoded as
// JSON, not with Go's quoting (which writes \x7f, not JSON).
func TestErrorBodyIsJSONWithControlCharacters(t *testing.T) {
	const msg = "bad \x00\x01\x1f\x7f \"quoted\" \\ <tag> \u2028 é"
	w := httptest.NewRecorder()
	writeError(w, &Error{Op: "parse", kind: kindInvalid, Err: errors.New(msg)})
	if w.Code != 400 {
		t.Errorf("status = %d, want 400", w.Code)
	}
	var got struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if got.Error != "parse: "+msg {
		t.Errorf("error = %q, want %q", got.Error, "parse: "+msg)
	}
}
