package natspub_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestToken(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"guid", tenant, tenant},
		{"enum", "reauthorizationRequired", "reauthorizationRequired"},
		{"empty", "", "_"},
		{"dot", "a.b", "a%2Eb"},
		{"wildcards", "*>", "%2A%3E"},
		{"percent", "100%", "100%25"},
		{"whitespace", "a b\tc\r\n", "a%20b%09c%0D%0A"},
		{"control", "\x00\x7f", "%00%7F"},
		{"non-ascii", "é", "%C3%A9"},
		{"underscore and dash", "a_b-c", "a_b-c"},
		{"tilde", "a~b", "a%7Eb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := natspub.SubjectToken(tt.in); got != tt.want {
				t.Errorf("SubjectToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("long", func(t *testing.T) {
		a, b := strings.Repeat("x", 500)+"a", strings.Repeat("x", 500)+"b"
		ta, tb := natspub.SubjectToken(a), natspub.SubjectToken(b)
		if len(ta) != natspub.MaxSubjectTokenLen || ta == tb {
			t.Errorf("SubjectToken(long) = %q (%d bytes) and %q", ta, len(ta), tb)
		}
		if esc := natspub.SubjectToken(strings.Repeat(".", 100)); len(esc) > natspub.MaxSubjectTokenLen || strings.Contains(strings.Split(esc, "~")[0], "%2~") {
			t.Errorf("SubjectToken(dots) = %q", esc)
		}
	})
	t.Run("crafted shortened form", func(t *testing.T) {
		// A short input spelled like the shortened token of a long one must
		// not map to the same token.
		long := strings.Repeat("x", 100)
		crafted := natspub.SubjectToken(long)
		if got := natspub.SubjectToken(crafted); got == crafted {
			t.Errorf("SubjectToken(%q) = SubjectToken(%q) = %q", crafted, long, got)
		}
	})
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "a.b", "*", ">", "%2E", tenant, strings.Repeat("%.", 40), "a b\r\n", "\xff\x00", "a~b"} {
		f.Add(s, "x")
	}
	// A short input spelled like the shortened token of a long one.
	long := strings.Repeat("x", 100)
	f.Add(natspub.SubjectToken(long), long)
	f.Add(natspub.SubjectToken(strings.Repeat("~", 70)), strings.Repeat("~", 70))
	f.Fuzz(func(t *testing.T, a, b string) {
		ta := natspub.SubjectToken(a)
		if ta == "" || len(ta) > natspub.MaxSubjectTokenLen {
			t.Fatalf("SubjectToken(%q) = %q", a, ta)
		}
		for i := 0; i < len(ta); i++ {
			if c := ta[i]; c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
				t.Fatalf("SubjectToken(%q) = %q holds byte %q", a, ta, c)
			}
		}
		// Injective: an unshortened token (no '~') unescapes to its input;
		// a shortened one has exactly one '~', 17 bytes from its end.
		if i := strings.IndexByte(ta, '~'); i < 0 {
			if a != "" && unescape(t, ta) != a {
				t.Fatalf("SubjectToken(%q) = %q does not unescape to its input", a, ta)
			}
		} else if i != len(ta)-17 || strings.Count(ta, "~") != 1 {
			t.Fatalf("SubjectToken(%q) = %q: '~' other than as the shortening mark", a, ta)
		}
		if a != b && a != "" && b != "" && a != "_" && b != "_" && ta == natspub.SubjectToken(b) {
			t.Fatalf("SubjectToken(%q) == SubjectToken(%q) == %q", a, b, ta)
		}
	})
}

// unescape reverses the %XX escapes of a token.
func unescape(t *testing.T, tok string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '%' {
			b.WriteByte(tok[i])
			continue
		}
		if i+2 >= len(tok) {
			t.Fatalf("token %q: truncated escape", tok)
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil {
			t.Fatalf("token %q: bad escape: %v", tok, err)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String()
}

func TestEventID(t *testing.T) {
	base := func() *receiver.Notification {
		return &receiver.Notification{
			SubscriptionID: subID, TenantID: tenant, ChangeType: "updated",
			Resource: "users/u1/messages/m1", ResourceData: json.RawMessage(`{"@odata.etag":"W/\"1\"","id":"m1"}`),
		}
	}
	with := func(f func(n *receiver.Notification)) *receiver.Notification { n := base(); f(n); return n }
	ref := natspub.EventID(base())
	if !strings.HasPrefix(ref, "sha256:") || len(ref) != len("sha256:")+32 {
		t.Fatalf("EventID = %q", ref)
	}
	same := []struct {
		name string
		n    *receiver.Notification
	}{
		{"same fields", base()},
		{"clientState ignored", with(func(n *receiver.Notification) { n.ClientState = "other" })},
		{"resourceData whitespace", with(func(n *receiver.Notification) {
			n.ResourceData = json.RawMessage(`{ "@odata.etag" : "W/\"1\"", "id" : "m1" }`)
		})},
	}
	for _, tt := range same {
		if got := natspub.EventID(tt.n); got != ref {
			t.Errorf("%s: EventID = %q, want %q", tt.name, got, ref)
		}
	}
	extra := func(kv ...string) func(n *receiver.Notification) {
		return func(n *receiver.Notification) {
			n.Extra = map[string]json.RawMessage{}
			for i := 0; i < len(kv); i += 2 {
				n.Extra[kv[i]] = json.RawMessage(kv[i+1])
			}
		}
	}
	differ := []struct {
		name string
		n    *receiver.Notification
	}{
		{"etag", with(func(n *receiver.Notification) {
			n.ResourceData = json.RawMessage(`{"@odata.etag":"W/\"2\"","id":"m1"}`)
		})},
		{"no resourceData", with(func(n *receiver.Notification) { n.ResourceData = nil })},
		{"other resourceData property", with(func(n *receiver.Notification) {
			n.ResourceData = json.RawMessage(`{"@odata.etag":"W/\"1\"","id":"m2"}`)
		})},
		{"resourceData property added", with(func(n *receiver.Notification) {
			n.ResourceData = json.RawMessage(`{"@odata.etag":"W/\"1\"","id":"m1","seq":1}`)
		})},
		{"unknown field", with(extra("sequenceNumber", "1"))},
		{"unknown field value", with(extra("sequenceNumber", "2"))},
		{"unknown field name", with(extra("sequenceNumbr", "1"))},
		{"unknown fields", with(extra("sequenceNumber", "1", "organizationId", `"o"`))},
		{"NUL-prefixed field is the item's own", with(extra("\x00invalid", `"x"`))},
		{"changeType", with(func(n *receiver.Notification) { n.ChangeType = "deleted" })},
		{"resource", with(func(n *receiver.Notification) { n.Resource += "x" })},
		{"subscription", with(func(n *receiver.Notification) { n.SubscriptionID = subRich })},
		{"tenant", with(func(n *receiver.Notification) { n.TenantID = "t2" })},
		{"content", with(func(n *receiver.Notification) { n.Content = receiver.Content(`{"a":1}`) })},
		{"field boundary", with(func(n *receiver.Notification) { n.ChangeType = "updatedusers/u1"; n.Resource = "/messages/m1" })},
		{"extra boundary", with(extra("a", `"b"`, "c", `"d"`))},
		{"extra boundary 2", with(extra("a", `"bc"`))},
		{"unsafe id is hashed", with(func(n *receiver.Notification) { n.ID = "a b" })},
	}
	seen := map[string]string{ref: "base"}
	for _, tt := range differ {
		got := natspub.EventID(tt.n)
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: EventID %q equals that of %s", tt.name, got, prev)
		}
		seen[got] = tt.name
	}
	// A change's id ignores the subscription's expiry, so a retry that
	// straddles a renewal is still the same event.
	if natspub.EventID(with(func(n *receiver.Notification) {
		n.SubscriptionExpirationDateTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	})) != ref {
		t.Error("a change's EventID depends on the subscription expiry")
	}
	if got := natspub.EventID(with(func(n *receiver.Notification) { n.ID = "AAA" })); got != subID+":AAA" {
		t.Errorf("with id: EventID = %q", got)
	}
	l1 := &receiver.Notification{SubscriptionID: subID, TenantID: tenant, LifecycleEvent: "missed", SubscriptionExpirationDateTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l2 := *l1
	l2.SubscriptionExpirationDateTime = l2.SubscriptionExpirationDateTime.Add(time.Hour)
	l3 := *l1
	l3.SubscriptionExpirationDateTime = l1.SubscriptionExpirationDateTime.In(time.FixedZone("+0530", 19800))
	if natspub.EventID(l1) == natspub.EventID(&l2) || natspub.EventID(l1) != natspub.EventID(&l3) {
		t.Error("EventID must follow the expiry instant, not its zone")
	}
}

func TestRichEventIDSurvivesReEncryption(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
	ring := testkit.KeyRing(t, key)
	var ids []string
	for range 2 {
		c, err := receiver.Parse(body(t, nil, richItem(t, key, plaintext)))
		if err != nil {
			t.Fatal(err)
		}
		n := c.Value[0]
		if n.Content, err = ring.Decrypt(n.EncryptedContent); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, natspub.EventID(n))
	}
	if ids[0] != ids[1] {
		t.Errorf("re-encrypted item has ids %q", ids)
	}
}

func TestBodyContentThatIsNotJSON(t *testing.T) {
	n := &receiver.Notification{SubscriptionID: "s", ChangeType: "created", Content: receiver.Content("not json \xff"), Extra: map[string]json.RawMessage{"content": json.RawMessage(`"spoofed"`)}}
	m := event(t, encoder(t), n)
	b := decodeBody(t, m.Data)
	if _, ok := b["content"]; ok || str(t, b["contentBase64"]) != "bm90IGpzb24g/w==" {
		t.Errorf("body = %s", m.Data)
	}
	if got := m.Header.Get(natspub.HeaderVerifiedContent); got != "contentBase64" {
		t.Errorf("%s = %q, want contentBase64", natspub.HeaderVerifiedContent, got)
	}
}

func TestMessagesOfOneNotification(t *testing.T) {
	pub := encoder(t)
	n := &receiver.Notification{SubscriptionID: "s", TenantID: "t", ChangeType: "created", Resource: "r", ClientState: secret}
	m := event(t, pub, n)
	if m.Subject != "graph.notifications.t.s.created" || m.Header.Get("ce-source") != natspub.DefaultSource || m.Header.Get("ce-time") != "" {
		t.Errorf("Encode = %s %v", m.Subject, m.Header)
	}
	if strings.Contains(string(m.Data), secret) {
		t.Error("body carries clientState")
	}
	if _, err := pub.Messages(&receiver.Batch{Notifications: []*receiver.Notification{nil}}); !errors.Is(err, natspub.ErrEncode) {
		t.Errorf("Messages(nil notification) = %v, want ErrEncode", err)
	}
	if m.Header.Get(natspub.HeaderVerifiedContent) != "" {
		t.Errorf("a basic item's event carries %s", natspub.HeaderVerifiedContent)
	}
}

// TestGoldenEvents pins the wire form of events: subjects, headers and
// bodies. Run with -update after an intended change.
func TestGoldenEvents(t *testing.T) {
	nc := startNATS(t)
	pub := newPublisher(t, nc, natspub.Config{Source: "/graphhook/test"})
	c, err := receiver.Parse([]byte(`{"value":[
 {"id":"lsgTZMr9KwAAA","subscriptionId":"` + subID + `","subscriptionExpirationDateTime":"2016-03-19T22:11:09.952Z",
  "clientState":"secretClientValue","changeType":"created","resource":"users/u1@t/messages/m1","tenantId":"` + tenant + `",
  "organizationId":"` + tenant + `",
  "resourceData":{"@odata.type":"#Microsoft.Graph.Message","@odata.id":"Users/u1@t/Messages/m1","@odata.etag":"W/\"CQAAABYAAADk\"","id":"m1"}},
 {"subscriptionId":"` + subRich + `","subscriptionExpirationDateTime":"2021-07-02T07:56:34.0000000Z","changeType":"updated",
  "clientState":"secretClientValue","tenantId":"` + tenant + `","resource":"teams('t')/channels('c')/messages('1')",
  "resourceData":{"id":"1","@odata.type":"#Microsoft.Graph.ChatMessage"},
  "encryptedContent":{"data":"ZGF0YQ==","dataSignature":"c2ln","dataKey":"a2V5","encryptionCertificateId":"c1","encryptionCertificateThumbprint":"AB"}},
 {"subscriptionId":"` + subID + `","subscriptionExpirationDateTime":"2019-03-20T11:00:00.0000000Z","tenantId":"` + tenant + `",
  "clientState":"secretClientValue","lifecycleEvent":"subscriptionRemoved"},
 {"subscriptionId":"` + subID + `","changeType":"created","tenantId":"` + tenant + `","clientState":"wrong"},
 {"subscriptionId":"` + subID + `","tenantId":"` + tenant + `","clientState":"secretClientValue"},
 {"subscriptionId":"` + subID + `", "changeType":"updated","tenantId":"other","clientState":"wrong\r\n"}
],"validationTokens":["eyJhbGciOiJSUzI1NiJ9.e30.c2ln"]}`))
	if err != nil {
		t.Fatal(err)
	}
	c.Value[1].Content = receiver.Content(`{"id":"1","body":{"content":"hello"}}`)
	b := &receiver.Batch{
		Notifications: c.Value[:3],
		Rejected: []*receiver.Rejected{
			{Notification: c.Value[3], Reason: receiver.ReasonClientState, Err: receiver.ErrClientStateMismatch},
			{Notification: c.Value[4], Reason: receiver.ReasonMalformed, Err: c.Value[4].Validate()},
			{Notification: c.Value[5], Reason: receiver.ReasonClientState, Err: receiver.ErrClientStateMismatch},
		},
		ReceivedAt:       time.Date(2026, 4, 1, 12, 0, 0, 123e6, time.UTC),
		ValidationTokens: c.ValidationTokens,
	}
	msgs, err := pub.Messages(b)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&out, "subject: %s\n", m.Subject)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m.Header {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range keys {
			for _, v := range m.Header[k] {
				fmt.Fprintf(&out, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(&out, "\n%s\n\n", m.Data)
		if strings.Contains(string(m.Data), "secretClientValue") && m.Header.Get("graphhook-reason") == "" {
			t.Errorf("event on %s carries the clientState", m.Subject)
		}
	}
	golden := filepath.Join("testdata", "events.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("events differ from %s (run go test -update after an intended change):\n%s", golden, out.String())
	}
}

func FuzzEncode(f *testing.F) {
	f.Add([]byte(`{"subscriptionId":"s","changeType":"created","tenantId":"t","resource":"r","clientState":"cs"}`), []byte(`{"a":1}`))
	f.Add([]byte(`{"subscriptionId":"s.>","lifecycleEvent":"missed *","tenantId":"","clientState":"cs","content":"x"}`), []byte(nil))
	f.Add([]byte(`{"subscriptionId":"\u0000","changeType":"\r\n","resourceData":{"@odata.etag":7},"clientState":"cs"}`), []byte("\xff"))
	f.Add([]byte(`{"subscriptionId":"s","changeType":"created","clientState":"cs","Content":{"x":1},"ContentBaſe64":"AA==","LifecycleEvent":"missed","TenantId":"other","extra":1}`), []byte(nil))
	pub := encoder(f)
	f.Fuzz(func(t *testing.T, item, content []byte) {
		c, err := receiver.Parse([]byte(`{"value":[` + string(item) + `]}`))
		if err != nil || len(c.Value) != 1 || c.Value[0].Validate() != nil {
			return
		}
		n := c.Value[0]
		n.Content = content
		msgs, err := pub.Messages(&receiver.Batch{Notifications: []*receiver.Notification{n}})
		if err != nil {
			t.Fatalf("Messages: %v", err)
		}
		m := msgs[0]
		if toks := strings.Split(m.Subject, "."); len(toks) != 5 {
			t.Fatalf("subject %q", m.Subject)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		if _, ok := body["clientState"]; ok {
			t.Fatal("body carries clientState")
		}
		// Unknown fields never stand beside graphhook's: what a
		// case-insensitive consumer reads is what graphhook wrote.
		var got consumerEvent
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatalf("consumer decode: %v", err)
		}
		if got.TenantID != n.TenantID || got.LifecycleEvent != n.LifecycleEvent || got.ChangeType != n.ChangeType {
			t.Fatalf("consumer read %+v from %s", got, m.Data)
		}
		_, hasContent := body["content"]
		_, hasBase64 := body["contentBase64"]
		verified := m.Header.Get(natspub.HeaderVerifiedContent) != ""
		if hasContent || hasBase64 || verified {
			if n.Content == nil || !verified {
				t.Fatalf("content in the body (%v, %v) or header (%v) of an item with content %q", hasContent, hasBase64, verified, n.Content)
			}
		}
		if id := m.Header.Get("ce-id"); id == "" || id != natspub.EventID(n) || m.Header.Get("Nats-Msg-Id") != natspub.MsgID(id) {
			t.Fatalf("ce-id %q, Nats-Msg-Id %q", id, m.Header.Get("Nats-Msg-Id"))
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header %s = %q", k, v)
				}
			}
		}
	})
}

// TestBodyKeepsGraphsSpelling: the body holds subscriptionExpirationDateTime
// exactly as Graph sent it, seven fractional digits included.
func TestBodyKeepsGraphsSpelling(t *testing.T) {
	const exp = "2021-07-02T07:56:34.0000000Z"
	c, err := receiver.Parse([]byte(`{"value":[{"subscriptionId":"s","changeType":"created","clientState":"cs","subscriptionExpirationDateTime":"` + exp + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b := event(t, encoder(t), c.Value[0]).Data
	if got := str(t, decodeBody(t, b)["subscriptionExpirationDateTime"]); got != exp {
		t.Errorf("subscriptionExpirationDateTime = %q, want %q as received", got, exp)
	}
}

// FuzzQuarantine checks that the quarantine message of any rejected items
// is a changeNotificationCollection that gives back each item's raw bytes
// and the batch's tokens, with safe headers and subject.
func FuzzQuarantine(f *testing.F) {
	f.Add([]byte(`{"subscriptionId":"s","changeType":"created","tenantId":"t","clientState":"x"}`), []byte(`[1,"a",null]`), "tok", "boom\r\n")
	f.Add([]byte(`{"tenantId":"a.b*>"}`), []byte(`{"tenantId":"a.b*>"}`), "", "")
	f.Add([]byte(`"\u2028<>&"`), []byte(`{"value":[]}`), "\x00", strings.Repeat("é", 200))
	pub := newPublisher(f, startNATS(f), natspub.Config{})
	f.Fuzz(func(t *testing.T, a, b []byte, token, cause string) {
		c, err := receiver.Parse([]byte(`{"value":[` + string(a) + `,` + string(b) + `]}`))
		if err != nil || len(c.Value) != 2 {
			return
		}
		var tokens []string
		if !utf8.ValidString(token) {
			return // the receiver's tokens come from JSON strings, always UTF-8
		}
		if token != "" {
			tokens = []string{token}
		}
		rej := []*receiver.Rejected{
			{Notification: c.Value[0], Reason: receiver.ReasonClientState, Err: errors.New(cause)},
			{Notification: c.Value[1], Reason: receiver.ReasonClientState},
		}
		msgs, err := pub.Messages(&receiver.Batch{Rejected: rej, ValidationTokens: tokens})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 {
			t.Fatalf("%d messages for one reason", len(msgs))
		}
		m := msgs[0]
		if toks := strings.Split(m.Subject, "."); len(toks) != 4 {
			t.Fatalf("subject %q", m.Subject)
		}
		got, err := receiver.Parse(m.Data)
		if err != nil {
			t.Fatalf("body %q: %v", m.Data, err)
		}
		if len(got.Value) != 2 || !bytes.Equal(got.Value[0].Raw, c.Value[0].Raw) || !bytes.Equal(got.Value[1].Raw, c.Value[1].Raw) {
			t.Fatalf("body %q does not hold the raw items", m.Data)
		}
		if !slices.Equal(got.ValidationTokens, tokens) {
			t.Fatalf("tokens %q, want %q", got.ValidationTokens, tokens)
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") || len(v) > natspub.MaxErrorHeaderLen {
					t.Fatalf("header %s = %q", k, v)
				}
			}
		}
	})
}

func TestLongResourceDoesNotOverflowHeaders(t *testing.T) {
	n := &receiver.Notification{
		SubscriptionID: "s", TenantID: "t", ChangeType: "updated",
		Resource: strings.Repeat("users/u/messages/", 8<<10),
	}
	m := event(t, encoder(t), n)
	total := 0
	for k, vs := range m.Header {
		for _, v := range vs {
			total += len(k) + len(v)
		}
	}
	if got := len(m.Header.Get(natspub.HeaderSubject)); got > natspub.MaxItemHeaderLen {
		t.Errorf("ce-subject is %d bytes, want at most %d", got, natspub.MaxItemHeaderLen)
	}
	if total > 8<<10 {
		t.Errorf("headers total %d bytes for a %d-byte resource", total, len(n.Resource))
	}
	var body struct{ Resource string }
	if err := json.Unmarshal(m.Data, &body); err != nil || body.Resource != n.Resource {
		t.Errorf("the body lost the full resource")
	}
}

// TestBodyDoesNotGrowHTMLContent: an HTML mail body must not be re-escaped
// (\u003c...) into an event several times larger than Graph sent it, or
// it could outgrow the server's max_payload, which is sized from the
// request's body limit.
func TestBodyDoesNotGrowHTMLContent(t *testing.T) {
	html := strings.Repeat(`<p>a &amp; b</p>`, 500)
	content := []byte(`{"body":"` + html + `"}`) // as Graph's decrypted JSON has it, unescaped
	n := &receiver.Notification{SubscriptionID: "s", TenantID: "t", ChangeType: "created", Resource: "me/messages/1",
		ResourceData: json.RawMessage(`{"@odata.type":"#Microsoft.Graph.Message","note":"<b>&</b>"}`), Content: content}
	b := event(t, encoder(t), n).Data
	if len(b) > len(content)+512 {
		t.Errorf("body is %d bytes for %d bytes of content", len(b), len(content))
	}
	if !strings.Contains(string(b), `<p>a &amp; b</p>`) || !strings.Contains(string(b), `"note":"<b>&</b>"`) {
		t.Errorf("HTML was escaped: %.200s", b)
	}
}

// consumerEvent is how a Go consumer decodes an event body with
// encoding/json, which matches keys case-insensitively and with Unicode
// folding ("ContentBaſe64" fills ContentBase64).
type consumerEvent struct {
	ID             string                     `json:"id"`
	SubscriptionID string                     `json:"subscriptionId"`
	ChangeType     string                     `json:"changeType"`
	LifecycleEvent string                     `json:"lifecycleEvent"`
	Resource       string                     `json:"resource"`
	TenantID       string                     `json:"tenantId"`
	Content        json.RawMessage            `json:"content"`
	ContentBase64  string                     `json:"contentBase64"`
	Extra          map[string]json.RawMessage `json:"extra"`
}

// TestLookAlikeFieldsCannotShadowGraphhooksFields: a basic item (right
// clientState, nothing decrypted) carrying unknown fields that fold to
// graphhook's names must not make a consumer read decrypted content, a
// lifecycle event or another tenant.
func TestLookAlikeFieldsCannotShadowGraphhooksFields(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
	e := newEnv(t, startNATS(t), key, natspub.Config{})
	it := basicItem("look-alike", "created", "users/u1/messages/m1", "")
	lookAlikes := map[string]any{
		"Content":        map[string]any{"body": "forged"},
		"ContentBaſe64":  "Zm9yZ2Vk", // long s: folds to contentBase64
		"CONTENT":        "forged",
		"LifecycleEvent": "subscriptionRemoved",
		"TenantId":       "other-tenant",
		"TENANTID":       "other-tenant",
		"ChangeType":     "deleted",
		"extra":          "nested",
		"sequenceNumber": 7,
	}
	for k, v := range lookAlikes {
		it[k] = v
	}
	e.mustPost(t, body(t, []string{"eyJhbGciOiJub25lIn0.e30."}, it, richItem(t, key, plaintext)))
	msgs := bySubject(wantCount(t, e.js, natspub.DefaultStream, 2))

	m := one(t, msgs, "graph.notifications."+tenant+"."+subID+".created")
	var got consumerEvent
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Content != nil || got.ContentBase64 != "" || got.LifecycleEvent != "" || got.TenantID != tenant || got.ChangeType != "created" {
		t.Errorf("a consumer read %+v from %s", got, m.Data)
	}
	if v := m.Header.Get(natspub.HeaderVerifiedContent); v != "" {
		t.Errorf("basic item marked %s: %q", natspub.HeaderVerifiedContent, v)
	}
	for k, v := range lookAlikes {
		want, _ := json.Marshal(v)
		if g := got.Extra[k]; string(g) != string(want) {
			t.Errorf("extra[%q] = %s, want %s", k, g, want)
		}
	}
	top := decodeBody(t, m.Data)
	for k := range top {
		if !slices.Contains([]string{"changeType", "extra", "id", "resource", "resourceData", "subscriptionExpirationDateTime", "subscriptionId", "tenantId"}, k) {
			t.Errorf("body has the top-level member %q", k)
		}
	}

	rich := one(t, msgs, "graph.notifications."+tenant+"."+subRich+".created")
	if v := rich.Header.Get(natspub.HeaderVerifiedContent); v != "content" {
		t.Errorf("rich item: %s = %q, want content", natspub.HeaderVerifiedContent, v)
	}
	var rc consumerEvent
	if err := json.Unmarshal(rich.Data, &rc); err != nil || !strings.Contains(string(rc.Content), "top secret message body") {
		t.Errorf("rich content = %s (%v)", rc.Content, err)
	}
}

// TestMsgID checks the Nats-Msg-Id form: 22 characters of unpadded
// base64url, the first 16 bytes of SHA-256 of the ce-id, so equal event
// ids stay equal and distinct ones distinct.
func TestMsgID(t *testing.T) {
	ceID := "c6126aa3-0ed8-412f-a988-71e6cee627c4:lsgTZMr9KwAAA"
	sum := sha256.Sum256([]byte(ceID))
	if got, want := natspub.MsgID(ceID), base64.RawURLEncoding.EncodeToString(sum[:16]); got != want || len(got) != 22 {
		t.Errorf("MsgID(%q) = %q, want %q (22 characters)", ceID, got, want)
	}
	if natspub.MsgID(ceID) == natspub.MsgID(ceID+"x") {
		t.Error("two event ids share a Nats-Msg-Id")
	}
}
