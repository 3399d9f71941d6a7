package natspub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	secret  = "s3cret-client-state-value"
	tenant  = "84bd8158-6d4d-4958-8b9f-9d6445542f95"
	subID   = "c6126aa3-0ed8-412f-a988-71e6cee627c4"
	subRich = "76222963-cc7b-42d2-882d-8aaa69cb2ba3"
	certID  = "cert-1"
	// plaintext is the decrypted resource of the rich item; it must never
	// appear outside the "content" field of its event.
	plaintext = `{"id":"1625126194597","body":{"content":"top secret message body"},"from":{"user":{"displayName":"Ada"}}}`
	expiry    = "2026-03-20T11:00:00.0000000Z"
)

// item is one changeNotification as Graph sends it.
type item map[string]any

func basicItem(id, changeType, resource, etag string) item {
	it := item{
		"subscriptionId":                 subID,
		"subscriptionExpirationDateTime": expiry,
		"clientState":                    secret,
		"changeType":                     changeType,
		"resource":                       resource,
		"tenantId":                       tenant,
		"resourceData": map[string]any{
			"@odata.type": "#Microsoft.Graph.Message",
			"@odata.id":   resource,
			"@odata.etag": etag,
			"id":          "m1",
		},
	}
	if id != "" {
		it["id"] = id
	}
	return it
}

func lifecycleItem(event string) item {
	return item{
		"subscriptionId":                 subID,
		"subscriptionExpirationDateTime": expiry,
		"tenantId":                       tenant,
		"clientState":                    secret,
		"lifecycleEvent":                 event,
	}
}

// richItem encrypts plaintext for key exactly as Graph does, with a fresh
// symmetric key on every call.
func richItem(t testing.TB, key decrypt.Key, pt string) item {
	t.Helper()
	ec, err := graphsim.Encrypt(key.Certificate, certID, []byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	res := "teams('t1')/channels('c1')/messages('1625126194597')"
	return item{
		"subscriptionId":                 subRich,
		"subscriptionExpirationDateTime": expiry,
		"changeType":                     "created",
		"clientState":                    secret,
		"tenantId":                       tenant,
		"resource":                       res,
		"resourceData":                   map[string]any{"id": "1625126194597", "@odata.type": "#Microsoft.Graph.ChatMessage", "@odata.id": res},
		"encryptedContent":               ec,
	}
}

func body(t testing.TB, tokens []string, items ...item) []byte {
	t.Helper()
	m := map[string]any{"value": items}
	if tokens != nil {
		m["validationTokens"] = tokens
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// env is a receiver publishing through a Publisher to a real server.
type env struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *natspub.Publisher
	srv *httptest.Server
}

func newPublisher(t testing.TB, nc *nats.Conn, cfg natspub.Config) *natspub.Publisher {
	t.Helper()
	cfg.Conn = nc
	pub, err := natspub.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return pub
}

// newEnv starts a receiver (clientState checked, tokens not validated, keys
// for rich items) in front of a Publisher on nc.
func newEnv(t testing.TB, nc *nats.Conn, key decrypt.Key, cfg natspub.Config) *env {
	t.Helper()
	pub := newPublisher(t, nc, cfg)
	rcv, err := receiver.New(receiver.Config{
		Sink:                        pub,
		ClientStates:                []string{secret},
		Keys:                        testkit.KeyRing(t, key),
		InsecureSkipTokenValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	return &env{nc: nc, js: newJS(t, nc), pub: pub, srv: srv}
}

func (e *env) post(t testing.TB, b []byte) *http.Response {
	t.Helper()
	resp, _ := testkit.Do(t, http.MethodPost, e.srv.URL+"/notify?route=a", "application/json", b)
	return resp
}

func (e *env) mustPost(t testing.TB, b []byte) {
	t.Helper()
	if resp := e.post(t, b); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST status = %d, want 202", resp.StatusCode)
	}
}

// streamMsgs returns every message stored in stream, in order.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

func bySubject(msgs []*jetstream.RawStreamMsg) map[string][]*jetstream.RawStreamMsg {
	m := map[string][]*jetstream.RawStreamMsg{}
	for _, msg := range msgs {
		m[msg.Subject] = append(m[msg.Subject], msg)
	}
	return m
}

func decodeBody(t testing.TB, data []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("event body is not a JSON object: %v: %s", err, data)
	}
	return m
}

func str(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a string", raw)
	}
	return s
}

// newJS returns the JetStream context of nc.
func newJS(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func startNATS(t testing.TB) *nats.Conn {
	t.Helper()
	_, nc := natstest.Start(t)
	return nc
}

// wantCount fails unless stream holds want messages.
func wantCount(t testing.TB, js jetstream.JetStream, stream string, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	msgs := streamMsgs(t, js, stream)
	if len(msgs) != want {
		var subs []string
		for _, m := range msgs {
			subs = append(subs, m.Subject)
		}
		t.Fatalf("stream %s holds %d messages, want %d: %v", stream, len(msgs), want, subs)
	}
	return msgs
}

// encoder returns a Publisher with the default Config on a server of its
// own, for tests of the wire form (Publisher.Messages).
func encoder(t testing.TB) *natspub.Publisher {
	t.Helper()
	return newPublisher(t, startNATS(t), natspub.Config{})
}

// event returns the message pub publishes for n in a batch received at
// the zero time (so without ce-time).
func event(t testing.TB, pub *natspub.Publisher, n *receiver.Notification) *nats.Msg {
	t.Helper()
	msgs, err := pub.Messages(&receiver.Batch{Notifications: []*receiver.Notification{n}})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages for one notification", len(msgs))
	}
	return msgs[0]
}
