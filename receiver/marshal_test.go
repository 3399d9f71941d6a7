package receiver

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/internal/testkit"
)

// mapMarshal is Notification.MarshalJSON as it was first written, through
// a map and encoding/json: the reference the hand-written one must match
// byte for byte.
func mapMarshal(n *Notification) ([]byte, error) {
	m := make(map[string]any, 10+len(n.Extra))
	for k, v := range n.Extra {
		m[k] = v
	}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("id", n.ID)
	put("subscriptionId", n.SubscriptionID)
	if !n.SubscriptionExpirationDateTime.IsZero() {
		exp := n.SubscriptionExpirationDateTime.Format(time.RFC3339Nano)
		if n.expRaw != "" && n.expAt.Equal(n.SubscriptionExpirationDateTime) {
			exp = n.expRaw
		}
		m["subscriptionExpirationDateTime"] = exp
	}
	put("changeType", n.ChangeType)
	put("lifecycleEvent", n.LifecycleEvent)
	put("resource", n.Resource)
	if n.ResourceData != nil {
		m["resourceData"] = n.ResourceData
	}
	put("clientState", string(n.ClientState))
	put("tenantId", n.TenantID)
	if n.EncryptedContent != nil {
		m["encryptedContent"] = n.EncryptedContent
	}
	return marshal(m)
}

func checkMarshalLikeMap(t *testing.T, n *Notification) {
	t.Helper()
	got, gotErr := n.MarshalJSON()
	want, wantErr := mapMarshal(n)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("MarshalJSON error %v, encoding/json's %v", gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalJSON\n got %s\nwant %s", got, want)
	}
}

func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	exp := time.Date(2026, 3, 20, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		n    *Notification
	}{
		{"empty", &Notification{}},
		{"basic", &Notification{ID: "1", SubscriptionID: "s", SubscriptionExpirationDateTime: exp, ChangeType: "created", Resource: "users/u1/messages/m1", ResourceData: json.RawMessage(` { "id" : "m1", "@odata.etag": "W/\"x\"" } `), ClientState: "secret", TenantID: "t"}},
		{"escapes", &Notification{ID: "a\"b\\c\n\u2028<&>\x7f\xff", Resource: "é€😀\t\x01"}},
		{"extra and a clash", &Notification{SubscriptionID: "s", Extra: map[string]json.RawMessage{"organizationId": json.RawMessage(`"o"`), "id": json.RawMessage(`{"from":"extra"}`), "sequenceNumber": json.RawMessage(` 7 `), "nil": nil, "<html>": json.RawMessage(`"<b>"`)}}},
		{"known field beats extra", &Notification{ID: "mine", Extra: map[string]json.RawMessage{"id": json.RawMessage(`"theirs"`)}}},
		{"invalid raw", &Notification{ResourceData: json.RawMessage(`{`)}},
		{"empty raw", &Notification{ResourceData: json.RawMessage{}}},
		{"rich", &Notification{SubscriptionID: "s", EncryptedContent: &decrypt.EncryptedContent{Data: "ZGF0YQ==", DataKey: "a2V5", DataSignature: "c2ln", EncryptionCertificateID: "c1", EncryptionCertificateThumbprint: "AB"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkMarshalLikeMap(t, tt.n) })
	}
}

// FuzzMarshalJSON checks the hand-written MarshalJSON against encoding/json
// on every item of arbitrary bodies, Graph's spelling of
// subscriptionExpirationDateTime included.
func FuzzMarshalJSON(f *testing.F) {
	testkit.AddSeeds(f, "testdata/*.json")
	f.Add([]byte(`{"value":[{"id":"\u2028\"","x<":{"a" : [1, "\u00e9"]},"subscriptionExpirationDateTime":"2026-03-20T11:00:00.0000000Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		for _, n := range c.Value {
			if n != nil {
				checkMarshalLikeMap(t, n)
			}
		}
	})
}
