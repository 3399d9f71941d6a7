package receiver

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/internal/testkit"
)

// FuzzScan checks objectMembers and arrayElements against encoding/json on
// arbitrary input: the same members and elements, byte for byte, for every
// valid JSON document; no panic on anything else.
func FuzzScan(f *testing.F) {
	testkit.AddSeeds(f, "testdata/*.json")
	for _, s := range []string{`{}`, `[]`, ` { "a" : [ 1 , {"b":"}"} ] , "a":2 } `, `["\"]",{"x\u0041":null}, -1.5e3 ,true]`, `{"k\\":"v"}`, `{"a":1,}`, `{"a" 1}`, `[1 2]`, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, okObj := objectMembers(b)
		elems, okArr := arrayElements(b)
		if !json.Valid(b) || !utf8.Valid(b) {
			return // only: no panic
		}
		var wantObj map[string]json.RawMessage
		errObj := json.Unmarshal(b, &wantObj)
		if isObj := errObj == nil && wantObj != nil; isObj != okObj {
			t.Fatalf("objectMembers ok=%v, encoding/json object=%v for %q", okObj, isObj, b)
		}
		if okObj {
			if len(m) != len(wantObj) {
				t.Fatalf("%d members, want %d for %q", len(m), len(wantObj), b)
			}
			for k, v := range wantObj {
				if !bytes.Equal(m[k], v) {
					t.Fatalf("member %q = %q, want %q", k, m[k], v)
				}
			}
		}
		var wantArr []json.RawMessage
		errArr := json.Unmarshal(b, &wantArr)
		if isArr := errArr == nil && wantArr != nil; isArr != okArr {
			t.Fatalf("arrayElements ok=%v, encoding/json array=%v for %q", okArr, isArr, b)
		}
		if okArr {
			if len(elems) != len(wantArr) {
				t.Fatalf("%d elements, want %d for %q", len(elems), len(wantArr), b)
			}
			for i := range wantArr {
				if !bytes.Equal(elems[i], wantArr[i]) {
					t.Fatalf("element %d = %q, want %q", i, elems[i], wantArr[i])
				}
			}
		}
	})
}

// FuzzEncryptedContent checks the fast decoder of encryptedContent against
// encoding/json: whenever it takes an object, encoding/json reads the same
// five strings from it.
func FuzzEncryptedContent(f *testing.F) {
	f.Add([]byte(`{"data":"ZGF0YQ==","dataSignature":"c2ln","dataKey":"a2V5","encryptionCertificateId":"cert-1","encryptionCertificateThumbprint":"ab12"}`))
	f.Add([]byte(`{"data":"a","data":"b","Data":"c"}`))
	f.Add([]byte(`{"dataKey":"\u0041","x":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := plainEncryptedContent(b)
		if got == nil || !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		var want decrypt.EncryptedContent
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast decoder took %s, encoding/json: %v", b, err)
		}
		if *got != want {
			t.Fatalf("%s: fast decoder %+v, encoding/json %+v", b, *got, want)
		}
	})
}

// TestInvalidUTF8ReadsAsEncodingJSONReadsIt: a string with bytes that are
// not UTF-8 decodes to what encoding/json makes of it (U+FFFD for each bad
// byte), so the notification holds what its event will say.
func TestInvalidUTF8ReadsAsEncodingJSONReadsIt(t *testing.T) {
	item := []byte("{\"subscriptionId\":\"s\",\"clientState\":\"cs\",\"changeType\":\"\x8ad\",\"resource\":\"r\x80\"}")
	var want struct{ ChangeType, Resource string }
	if err := json.Unmarshal(item, &want); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(`{"value":[` + string(item) + `]}`))
	if err != nil || len(c.Value) != 1 {
		t.Fatalf("Parse: %v", err)
	}
	if n := c.Value[0]; n.ChangeType != want.ChangeType || n.Resource != want.Resource {
		t.Errorf("changeType %q, resource %q; encoding/json reads %q, %q", n.ChangeType, n.Resource, want.ChangeType, want.Resource)
	}
}
