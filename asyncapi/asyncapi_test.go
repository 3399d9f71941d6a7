package asyncapi_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/graphhook/graphhook/asyncapi"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

// event is one message of natspub/testdata/events.golden.
type event struct {
	subject string
	headers map[string]any
	body    []byte
}

// goldenEvents parses the golden file: "subject: ..." and header lines, a
// blank line, the body on one line, a blank line.
func goldenEvents(t *testing.T) []event {
	t.Helper()
	data, err := os.ReadFile("../natspub/testdata/events.golden")
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var cur *event
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && line == "":
		case cur == nil:
			subject, ok := strings.CutPrefix(line, "subject: ")
			if !ok {
				t.Fatalf("golden: want a subject line, got %q", line)
			}
			cur = &event{subject: subject, headers: map[string]any{}}
		case line == "" && cur.body == nil:
			cur.body = []byte{} // the body follows
		case cur.body == nil:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("golden: bad header line %q", line)
			}
			cur.headers[k] = v
		default:
			cur.body = []byte(line)
			out = append(out, *cur)
			cur = nil
		}
	}
	if len(out) < 3 {
		t.Fatalf("golden: %d events", len(out))
	}
	return out
}

// spec is the document, decoded as JSON would be, and a schema compiler
// that resolves its $refs.
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

const docURL = "file:///asyncapi.json"

func loadSpec(t *testing.T) *spec {
	t.Helper()
	doc := documentJSON(t, asyncapi.Document())
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7) // AsyncAPI's default schema format is a superset of draft-07
	c.AssertFormat()
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	if m, _ := doc.(map[string]any); m["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi version %v", m["asyncapi"])
	}
	return &spec{doc: doc.(map[string]any), compiler: c}
}

// resolve follows a local $ref ("#/components/messages/change").
func (s *spec) resolve(t *testing.T, v any) (any, string) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		return v, ""
	}
	ref, ok := m["$ref"].(string)
	if !ok {
		return v, ""
	}
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Fatalf("non-local $ref %q", ref)
	}
	var cur any = s.doc
	for _, p := range strings.Split(ptr, "/") {
		next, ok := cur.(map[string]any)[p]
		if !ok {
			t.Fatalf("$ref %q does not resolve (at %q)", ref, p)
		}
		cur = next
	}
	r, _ := s.resolve(t, cur)
	return r, ref
}

func (s *spec) schema(t *testing.T, ref string) *jsonschema.Schema {
	t.Helper()
	sch, err := s.compiler.Compile(docURL + ref)
	if err != nil {
		t.Fatalf("compile %s: %v", ref, err)
	}
	return sch
}

// channel is a channel of the document with its address as a pattern.
type channel struct {
	name    string
	re      *regexp.Regexp
	params  []string
	enums   map[string][]any
	message map[string]any // the channel's only message, resolved
}

func (s *spec) channels(t *testing.T) []channel {
	t.Helper()
	var out []channel
	for name, raw := range s.doc["channels"].(map[string]any) {
		ch := raw.(map[string]any)
		addr := ch["address"].(string)
		c := channel{name: name, enums: map[string][]any{}}
		var pat strings.Builder
		pat.WriteString("^")
		for _, part := range regexp.MustCompile(`\{[A-Za-z]+\}|[^{]+`).FindAllString(addr, -1) {
			if p, ok := strings.CutPrefix(part, "{"); ok {
				p = strings.TrimSuffix(p, "}")
				c.params = append(c.params, p)
				pat.WriteString(`([^.*>\s]+)`)
				pv, _ := s.resolve(t, ch["parameters"].(map[string]any)[p])
				if pv == nil {
					t.Fatalf("channel %s: parameter %s not described", name, p)
				}
				if e, ok := pv.(map[string]any)["enum"].([]any); ok {
					c.enums[p] = e
				}
				continue
			}
			pat.WriteString(regexp.QuoteMeta(part))
		}
		pat.WriteString("$")
		c.re = regexp.MustCompile(pat.String())
		msgs := ch["messages"].(map[string]any)
		if len(msgs) != 1 {
			t.Fatalf("channel %s has %d messages, the test expects one", name, len(msgs))
		}
		for _, m := range msgs {
			r, _ := s.resolve(t, m)
			c.message = r.(map[string]any)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b channel) int { return strings.Compare(a.name, b.name) })
	return out
}

func schemaRef(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	ref, _ := m[key].(map[string]any)["$ref"].(string)
	if !strings.HasPrefix(ref, "#/components/schemas/") {
		t.Fatalf("message %v: %s is not a $ref to a component schema", m["name"], key)
	}
	return ref
}

// TestGoldenEventsMatchTheDocument checks every golden event: its subject
// matches exactly one channel, its headers and body validate against that
// channel's message, and the facts the document states hold (ce-type
// agrees with the subject, Nats-Msg-Id is derived from ce-id, graphhook-items counts
// the items).
func TestGoldenEventsMatchTheDocument(t *testing.T) {
	s := loadSpec(t)
	chans := s.channels(t)
	covered := map[string]int{}
	for i, ev := range goldenEvents(t) {
		t.Run(fmt.Sprintf("%d %s", i, ev.subject), func(t *testing.T) {
			var match []channel
			var values []string
			for _, c := range chans {
				if m := c.re.FindStringSubmatch(ev.subject); m != nil {
					match, values = append(match, c), m[1:]
				}
			}
			if len(match) != 1 {
				t.Fatalf("subject matches %d channels", len(match))
			}
			c := match[0]
			covered[c.name]++
			params := map[string]string{}
			for j, p := range c.params {
				params[p] = values[j]
				if e, ok := c.enums[p]; ok && !slices.Contains(e, any(values[j])) {
					t.Errorf("parameter %s=%q not in its enum %v", p, values[j], e)
				}
			}
			if err := s.schema(t, schemaRef(t, c.message, "headers")).Validate(ev.headers); err != nil {
				t.Errorf("headers: %v", err)
			}
			body, err := jsonschema.UnmarshalJSON(bytes.NewReader(ev.body))
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if err := s.schema(t, schemaRef(t, c.message, "payload")).Validate(body); err != nil {
				t.Errorf("payload: %v", err)
			}
			switch c.name {
			case "notifications", "lifecycle":
				kind := map[string]string{"notifications": "change", "lifecycle": "lifecycle"}[c.name]
				last := c.params[len(c.params)-1]
				if ev.headers["ce-type"] != "com.microsoft.graph."+kind+"."+params[last] {
					t.Errorf("ce-type %v does not end in the subject's %s %q", ev.headers["ce-type"], last, params[last])
				}
				sum := sha256.Sum256([]byte(fmt.Sprint(ev.headers["ce-id"])))
				if want := base64.RawURLEncoding.EncodeToString(sum[:16]); ev.headers["Nats-Msg-Id"] != want {
					t.Errorf("Nats-Msg-Id %v, want %s derived from ce-id %v", ev.headers["Nats-Msg-Id"], want, ev.headers["ce-id"])
				}
				if ev.headers["graphhook-subscription-id"] != params["subscriptionId"] {
					t.Errorf("graphhook-subscription-id %v, subject %q", ev.headers["graphhook-subscription-id"], params["subscriptionId"])
				}
				if field, ok := ev.headers["graphhook-verified-content"].(string); ok {
					if _, has := body.(map[string]any)[field]; !has {
						t.Errorf("graphhook-verified-content names %q, which the body lacks", field)
					}
				}
			case "rejected":
				if ev.headers["graphhook-reason"] != params["reason"] {
					t.Errorf("graphhook-reason %v, subject reason %q", ev.headers["graphhook-reason"], params["reason"])
				}
				n, _ := strconv.Atoi(ev.headers["graphhook-items"].(string))
				if items := body.(map[string]any)["value"].([]any); n != len(items) {
					t.Errorf("graphhook-items %d, body has %d", n, len(items))
				}
			}
		})
	}
	for _, c := range chans {
		if covered[c.name] == 0 {
			t.Errorf("channel %s has no golden event", c.name)
		}
	}
}

// TestSchemasRejectDrift shows that the schemas can fail: an event with a
// field beside graphhook's own (not under "extra"), an undocumented header
// and a wrong ce-specversion are each refused.
func TestSchemasRejectDrift(t *testing.T) {
	s := loadSpec(t)
	payload := s.schema(t, "#/components/schemas/changeEvent")
	headers := s.schema(t, "#/components/schemas/eventHeaders")
	var change event
	for _, ev := range goldenEvents(t) {
		if strings.HasPrefix(ev.subject, "graph.notifications.") {
			change = ev
			break
		}
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(change.body))
	if err != nil {
		t.Fatal(err)
	}
	if err := payload.Validate(body); err != nil {
		t.Fatalf("golden change event: %v", err)
	}
	tests := []struct {
		name   string
		schema *jsonschema.Schema
		value  func() any
	}{
		{"unknown field at top level", payload, func() any {
			m := clone(body.(map[string]any))
			m["organizationId"] = "x"
			return m
		}},
		{"no subscriptionId", payload, func() any {
			m := clone(body.(map[string]any))
			delete(m, "subscriptionId")
			return m
		}},
		{"undocumented header", headers, func() any {
			h := clone(change.headers)
			h["graphhook-secret"] = "x"
			return h
		}},
		{"wrong specversion", headers, func() any {
			h := clone(change.headers)
			h["ce-specversion"] = "0.3"
			return h
		}},
		{"bad ce-time", headers, func() any {
			h := clone(change.headers)
			h["ce-time"] = "yesterday"
			return h
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.schema.Validate(tt.value()); err == nil {
				t.Fatal("validated")
			}
		})
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestOperationsReferenceTheirChannels checks the document's references:
// each operation sends on a channel and its messages are that channel's.
func TestOperationsReferenceTheirChannels(t *testing.T) {
	s := loadSpec(t)
	ops := s.doc["operations"].(map[string]any)
	if len(ops) != len(s.doc["channels"].(map[string]any)) {
		t.Errorf("%d operations for %d channels", len(ops), len(s.doc["channels"].(map[string]any)))
	}
	for name, raw := range ops {
		op := raw.(map[string]any)
		if op["action"] != "send" {
			t.Errorf("operation %s: action %v, want send (graphhook publishes)", name, op["action"])
		}
		_, chRef := s.resolve(t, op["channel"])
		for _, m := range op["messages"].([]any) {
			_, ref := s.resolve(t, m)
			if !strings.HasPrefix(ref, chRef+"/messages/") {
				t.Errorf("operation %s: message %s is not one of %s's", name, ref, chRef)
			}
		}
	}
}

// TestDocumentIsValidAsyncAPI3 validates the document against the AsyncAPI
// 3.0.0 JSON Schema (testdata/README.md says where it comes from).
func TestDocumentIsValidAsyncAPI3(t *testing.T) {
	f, err := os.Open("testdata/asyncapi-3.0.0.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const id = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, meta); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	doc := documentJSON(t, asyncapi.Document())
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("asyncapi.yaml is not a valid AsyncAPI 3.0.0 document: %v", err)
	}
	// The meta-schema can fail: AsyncAPI 2's "publish" is no 3.0 action.
	bad := documentJSON(t, bytes.ReplaceAll(asyncapi.Document(), []byte("action: send"), []byte("action: publish")))
	if err := sch.Validate(bad); err == nil {
		t.Fatal("a document with action: publish validated")
	}
}

// documentJSON decodes YAML as JSON would.
func documentJSON(t *testing.T, y []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestDocumentIsACopy(t *testing.T) {
	a := asyncapi.Document()
	a[0] = 'X'
	if asyncapi.Document()[0] == 'X' {
		t.Fatal("Document returns shared bytes")
	}
}

// TestDocumentNamesTheLibrarysConstants ties the document to natspub's and
// receiver's constants: every header natspub writes is documented, the
// reasons are receiver's, the subjects use the default prefix and the
// streams are named.
func TestDocumentNamesTheLibrarysConstants(t *testing.T) {
	s := loadSpec(t)
	props := func(schema string) map[string]any {
		return s.doc["components"].(map[string]any)["schemas"].(map[string]any)[schema].(map[string]any)["properties"].(map[string]any)
	}
	event, quarantine := props("eventHeaders"), props("quarantineHeaders")
	for _, h := range []string{natspub.HeaderSpecVersion, natspub.HeaderID, natspub.HeaderType, natspub.HeaderSource,
		natspub.HeaderSubject, natspub.HeaderTime, natspub.HeaderContentType, natspub.HeaderSubscriptionID,
		natspub.HeaderTenantID, natspub.HeaderVerifiedContent, "traceparent", "tracestate"} {
		if event[h] == nil {
			t.Errorf("event header %s not documented", h)
		}
	}
	for _, h := range []string{natspub.HeaderContentType, natspub.HeaderReason, natspub.HeaderError, natspub.HeaderItems, natspub.HeaderReceivedAt, "traceparent", "tracestate"} {
		if quarantine[h] == nil {
			t.Errorf("quarantine header %s not documented", h)
		}
	}
	want := []any{}
	for _, r := range []receiver.Reason{receiver.ReasonClientState, receiver.ReasonMalformed, receiver.ReasonTokenInvalid, receiver.ReasonTokenMissing, receiver.ReasonDecrypt} {
		want = append(want, string(r))
	}
	reason, _ := s.resolve(t, map[string]any{"$ref": "#/components/schemas/reason"})
	if got := reason.(map[string]any)["enum"].([]any); !slices.Equal(got, want) {
		t.Errorf("reason enum %v, want %v", got, want)
	}
	if maxLen := quarantine[natspub.HeaderError].(map[string]any)["maxLength"]; fmt.Sprint(maxLen) != strconv.Itoa(natspub.MaxErrorHeaderLen) {
		t.Errorf("graphhook-error maxLength %v, natspub caps it at %d", maxLen, natspub.MaxErrorHeaderLen)
	}
	for name, raw := range s.doc["channels"].(map[string]any) {
		if addr := raw.(map[string]any)["address"].(string); !strings.HasPrefix(addr, natspub.DefaultSubjectPrefix+".") {
			t.Errorf("channel %s: address %s does not start with %s.", name, addr, natspub.DefaultSubjectPrefix)
		}
	}
	text := string(asyncapi.Document())
	for _, stream := range []string{natspub.DefaultStream, natspub.DefaultQuarantineStream, natspub.DefaultUnverifiedStream} {
		if !strings.Contains(text, stream) {
			t.Errorf("stream %s not named", stream)
		}
	}
}
