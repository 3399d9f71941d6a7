package natspub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEveryNotificationLandsOnceWithSubjectHeadersAndBody(t *testing.T) {
	key := newKey(t)
	e := newEnv(t, startNATS(t), key, natspub.Config{})
	etag := `W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"`
	e.mustPost(t, body(t, []string{"eyJhbGciOiJub25lIn0.e30."},
		basicItem("lsgTZMr9KwAAA", "created", "users/u1/messages/m1", etag),
		richItem(t, key, plaintext),
		lifecycleItem("reauthorizationRequired"),
	))

	msgs := wantCount(t, e.js, natspub.DefaultStream, 3)
	wantCount(t, e.js, natspub.DefaultQuarantineStream, 0)
	subs := bySubject(msgs)

	t.Run("basic", func(t *testing.T) {
		m := one(t, subs, "graph.notifications."+tenant+"."+subID+".created")
		wantHeaders(t, m.Header, map[string]string{
			"ce-specversion":            "1.0",
			"ce-id":                     subID + ":lsgTZMr9KwAAA",
			"Nats-Msg-Id":               subID + ":lsgTZMr9KwAAA",
			"ce-type":                   "com.microsoft.graph.change.created",
			"ce-source":                 "/graphhook",
			"ce-subject":                "users/u1/messages/m1",
			"content-type":              "application/json",
			"graphhook-subscription-id": subID,
			"graphhook-tenant-id":       tenant,
		})
		if _, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time")); err != nil {
			t.Errorf("ce-time %q: %v", m.Header.Get("ce-time"), err)
		}
		b := decodeBody(t, m.Data)
		if got := str(t, b["resource"]); got != "users/u1/messages/m1" {
			t.Errorf("resource = %q", got)
		}
		var rd map[string]string
		if err := json.Unmarshal(b["resourceData"], &rd); err != nil || rd["@odata.etag"] != etag {
			t.Errorf("resourceData = %s", b["resourceData"])
		}
		for _, k := range []string{"clientState", "encryptedContent", "content"} {
			if _, ok := b[k]; ok {
				t.Errorf("body has %q: %s", k, m.Data)
			}
		}
	})
	t.Run("rich", func(t *testing.T) {
		m := one(t, subs, "graph.notifications."+tenant+"."+subRich+".created")
		id := m.Header.Get("ce-id")
		if !strings.HasPrefix(id, "sha256:") || m.Header.Get("Nats-Msg-Id") != id {
			t.Errorf("ce-id %q, Nats-Msg-Id %q: want equal sha256 ids for an item without id", id, m.Header.Get("Nats-Msg-Id"))
		}
		b := decodeBody(t, m.Data)
		if b["content"] == nil || b["content"][0] != '{' {
			t.Fatalf("content is not a JSON object: %s", b["content"])
		}
		var got, want any
		json.Unmarshal(b["content"], &got)
		json.Unmarshal([]byte(plaintext), &want)
		if gj, wj := mustJSON(t, got), mustJSON(t, want); gj != wj {
			t.Errorf("content = %s, want %s", gj, wj)
		}
		for _, k := range []string{"clientState", "encryptedContent"} {
			if _, ok := b[k]; ok {
				t.Errorf("body has %q", k)
			}
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		m := one(t, subs, "graph.lifecycle."+tenant+"."+subID+".reauthorizationRequired")
		wantHeaders(t, m.Header, map[string]string{
			"ce-type":    "com.microsoft.graph.lifecycle.reauthorizationRequired",
			"ce-subject": subID,
		})
		b := decodeBody(t, m.Data)
		if got := str(t, b["lifecycleEvent"]); got != "reauthorizationRequired" {
			t.Errorf("lifecycleEvent = %q", got)
		}
		if _, ok := b["changeType"]; ok {
			t.Errorf("lifecycle body has changeType: %s", m.Data)
		}
	})
	t.Run("no secrets", func(t *testing.T) {
		for _, m := range msgs {
			if bytes.Contains(m.Data, []byte(secret)) || strings.Contains(mustJSON(t, m.Header), secret) {
				t.Errorf("%s carries the clientState", m.Subject)
			}
		}
	})
	if s := e.pub.Stats(); s.Published != 3 || s.Failed != 0 {
		t.Errorf("Stats = %+v, want 3 published", s)
	}
}

func TestSameBatchTwiceLandsOnce(t *testing.T) {
	key := newKey(t)
	e := newEnv(t, startNATS(t), key, natspub.Config{})
	items := []item{
		basicItem("", "updated", "users/u1/messages/m1", `W/"1"`),
		basicItem("", "updated", "users/u1/messages/m1", `W/"2"`), // a later change: a different event
		basicItem("id-3", "deleted", "users/u1/messages/m2", ""),
		lifecycleItem("missed"),
	}
	tokens := []string{"eyJhbGciOiJub25lIn0.e30."}
	first := body(t, tokens, append(items, richItem(t, key, plaintext))...)
	e.mustPost(t, first)
	e.mustPost(t, first)
	// Graph may encrypt a retry again with a fresh key: same event.
	e.mustPost(t, body(t, tokens, append(items, richItem(t, key, plaintext))...))
	wantCount(t, e.js, natspub.DefaultStream, 5)
	if s := e.pub.Stats(); s.Duplicates != 10 {
		t.Errorf("Stats.Duplicates = %d, want 10", s.Duplicates)
	}
	// Other content is another event.
	e.mustPost(t, body(t, tokens, richItem(t, key, `{"id":"x","body":"edited"}`)))
	wantCount(t, e.js, natspub.DefaultStream, 6)
}

func TestServerDownAnswers503FastAndRetryLandsOnceAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ns := natstest.RunServer(t, dir, -1)
	port := natstest.Port(t, ns)
	nc, err := natspub.Connect(natspub.ConnConfig{URLs: []string{ns.ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	const timeout = 1500 * time.Millisecond
	e := newEnv(t, nc, newKey(t), natspub.Config{PublishTimeout: timeout})

	a := body(t, nil, basicItem("a", "created", "users/u1/messages/a", ""))
	b := body(t, nil, basicItem("b", "created", "users/u1/messages/b", ""), lifecycleItem("subscriptionRemoved"))
	e.mustPost(t, a)

	ns.Shutdown()
	ns.WaitForShutdown()
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if nc.IsConnected() {
			return errors.New("client still connected")
		}
		return nil
	})
	start := time.Now()
	resp := e.post(t, b)
	if took := time.Since(start); took > timeout {
		t.Errorf("answer took %v, over the publish timeout %v", took, timeout)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if err := e.pub.Ready(t.Context()); !errors.Is(err, natspub.ErrNotConnected) {
		t.Errorf("Ready while down = %v, want ErrNotConnected", err)
	}
	if err := e.pub.Deliver(t.Context(), &receiver.Batch{Notifications: []*receiver.Notification{{SubscriptionID: "s", ChangeType: "created"}}}); !errors.Is(err, natspub.ErrNotConnected) {
		t.Errorf("Deliver while down = %v, want ErrNotConnected", err)
	}

	natstest.RunServer(t, dir, port)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error { return e.pub.Ready(t.Context()) })
	e.mustPost(t, b) // Graph's retry
	e.mustPost(t, a) // and a late duplicate of a batch stored before the restart
	ids := map[string]int{}
	for _, m := range wantCount(t, e.js, natspub.DefaultStream, 3) {
		ids[m.Header.Get("ce-id")]++
	}
	for _, id := range []string{subID + ":a", subID + ":b"} {
		if ids[id] != 1 {
			t.Errorf("event %s stored %d times, want once", id, ids[id])
		}
	}
}

func TestSubjectInjectionIsNeutralised(t *testing.T) {
	e := newEnv(t, startNATS(t), newKey(t), natspub.Config{})
	js := e.js
	// A consumer of one tenant must not see another tenant's forged events.
	cons, err := js.CreateOrUpdateConsumer(t.Context(), natspub.DefaultStream, jetstream.ConsumerConfig{
		FilterSubject: "graph.notifications.victim.>",
		AckPolicy:     jetstream.AckNonePolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	evil := []item{
		{"subscriptionId": "x.>", "tenantId": "victim.sub.created", "clientState": secret, "changeType": "created", "resource": "r"},
		{"subscriptionId": "a b\r\nc", "tenantId": "*", "clientState": secret, "changeType": "created.>", "resource": "r\r\nce-type: forged"},
		{"subscriptionId": "s", "tenantId": "", "clientState": secret, "lifecycleEvent": "missed\t>"},
		{"subscriptionId": strings.Repeat("long.", 2000), "tenantId": "t", "clientState": secret, "changeType": "updated", "resource": "r"},
	}
	e.mustPost(t, body(t, nil, evil...))
	msgs := wantCount(t, e.js, natspub.DefaultStream, len(evil))
	for _, m := range msgs {
		toks := strings.Split(m.Subject, ".")
		if len(toks) != 5 {
			t.Errorf("subject %q has %d tokens, want 5", m.Subject, len(toks))
		}
		for _, tok := range toks {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") || len(tok) > natspub.MaxTokenLen {
				t.Errorf("subject %q has unsafe token %q", m.Subject, tok)
			}
		}
		if got := m.Header.Values("ce-type"); len(got) != 1 || strings.Contains(got[0], "forged") {
			t.Errorf("ce-type = %q", got)
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Errorf("header %s = %q carries a line break", k, v)
				}
			}
		}
	}
	got := bySubject(msgs)
	for _, want := range []string{
		"graph.notifications.victim%2Esub%2Ecreated.x%2E%3E.created",
		"graph.notifications.%2A.a%20b%0D%0Ac.created%2E%3E",
		"graph.lifecycle._.s.missed%09%3E",
	} {
		one(t, got, want)
	}
	batch, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Errorf("consumer of tenant victim got %s", m.Subject())
	}
}

func TestRejectedItemsGoToQuarantineOnly(t *testing.T) {
	key := newKey(t)
	other := newKey(t) // encrypted for a key we do not hold
	e := newEnv(t, startNATS(t), key, natspub.Config{})

	forged := basicItem("f1", "created", "users/u1/messages/m9", "")
	forged["clientState"] = "guessed"
	forged["tenantId"] = "evil.tenant"
	e.mustPost(t, body(t, nil, forged, basicItem("ok1", "created", "users/u1/messages/m1", "")))
	tokens := []string{"eyJ0eXAiOiJKV1QifQ.e30.sig1", "eyJ0eXAiOiJKV1QifQ.e30.sig2"}
	undecryptable := richItem(t, other, plaintext)
	e.mustPost(t, body(t, tokens, undecryptable))
	e.mustPost(t, body(t, nil, richItem(t, key, plaintext))) // no validationTokens
	e.mustPost(t, body(t, nil, item{"subscriptionId": subID, "tenantId": tenant, "clientState": secret}))

	wantCount(t, e.js, natspub.DefaultStream, 1)
	q := bySubject(wantCount(t, e.js, natspub.DefaultQuarantineStream, 4))
	t.Run("client_state", func(t *testing.T) {
		m := one(t, q, "graph.rejected.client_state.evil%2Etenant")
		wantHeaders(t, m.Header, map[string]string{"graphhook-reason": "client_state", "graphhook-subscription-id": subID})
		if !strings.Contains(m.Header.Get("graphhook-error"), "clientState mismatch") {
			t.Errorf("graphhook-error = %q", m.Header.Get("graphhook-error"))
		}
		var it map[string]any
		if err := json.Unmarshal(m.Data, &it); err != nil || it["id"] != "f1" || it["clientState"] != "guessed" {
			t.Errorf("body is not the raw item: %s", m.Data)
		}
	})
	t.Run("decrypt", func(t *testing.T) {
		m := one(t, q, "graph.rejected.decrypt."+tenant)
		if got := m.Header.Values("graphhook-validation-token"); len(got) != 2 || got[0] != tokens[0] || got[1] != tokens[1] {
			t.Errorf("validation tokens = %q, want %q", got, tokens)
		}
		var it struct {
			EncryptedContent map[string]string `json:"encryptedContent"`
		}
		if err := json.Unmarshal(m.Data, &it); err != nil || it.EncryptedContent["data"] == "" {
			t.Errorf("body lost encryptedContent: %s", m.Data)
		}
	})
	one(t, q, "graph.rejected.token_missing."+tenant)
	one(t, q, "graph.rejected.malformed."+tenant)
	if s := e.pub.Stats(); s.Quarantined != 4 || s.Published != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestQuarantineNeverCarriesDecryptedContent(t *testing.T) {
	nc := startNATS(t)
	pub := newPublisher(t, nc, natspub.Config{})
	raw := []byte(`{"subscriptionId":"s","changeType":"created","tenantId":"t","encryptedContent":{"data":"AAAA"}}`)
	n := &receiver.Notification{SubscriptionID: "s", ChangeType: "created", TenantID: "t", Raw: raw, Content: receiver.Content(plaintext)}
	err := pub.Deliver(t.Context(), &receiver.Batch{
		Rejected:   []*receiver.Rejected{{Notification: n, Reason: receiver.ReasonTokenInvalid, Err: errors.New("token expired")}},
		ReceivedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	m := wantCount(t, js, natspub.DefaultQuarantineStream, 1)[0]
	if !bytes.Equal(m.Data, raw) {
		t.Errorf("body = %s, want the raw bytes", m.Data)
	}
	if bytes.Contains(m.Data, []byte("top secret")) || strings.Contains(mustJSON(t, m.Header), "top secret") {
		t.Error("quarantine message carries decrypted content")
	}
	wantCount(t, js, natspub.DefaultStream, 0)
}

func TestNewValidatesConfig(t *testing.T) {
	nc := startNATS(t)
	tests := []struct {
		name    string
		cfg     natspub.Config
		wantErr error
	}{
		{"no conn", natspub.Config{}, natspub.ErrInvalidConfig},
		{"wildcard prefix", natspub.Config{Conn: nc, SubjectPrefix: "graph.>"}, natspub.ErrInvalidConfig},
		{"empty prefix token", natspub.Config{Conn: nc, SubjectPrefix: "a..b"}, natspub.ErrInvalidConfig},
		{"space in prefix", natspub.Config{Conn: nc, SubjectPrefix: "a b"}, natspub.ErrInvalidConfig},
		{"same stream names", natspub.Config{Conn: nc, Stream: "X", QuarantineStream: "X"}, natspub.ErrInvalidConfig},
		{"bad stream name", natspub.Config{Conn: nc, Stream: "A.B"}, natspub.ErrStreamSetup},
		{"multi-token prefix", natspub.Config{Conn: nc, SubjectPrefix: "acme.graph", Stream: "ACME", QuarantineStream: "ACME_Q"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := natspub.New(t.Context(), tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				p.Close()
			}
		})
	}
}

func TestNewUpdatesExistingStream(t *testing.T) {
	nc := startNATS(t)
	p1 := newPublisher(t, nc, natspub.Config{DuplicateWindow: 10 * time.Minute})
	p1.Close()
	newPublisher(t, nc, natspub.Config{DuplicateWindow: 4 * time.Hour, MaxAge: 48 * time.Hour})
	js, _ := jetstream.New(nc)
	s, err := js.Stream(t.Context(), natspub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Duplicates != 4*time.Hour || c.MaxAge != 48*time.Hour || c.Storage != jetstream.FileStorage {
		t.Errorf("stream config = dup %v age %v storage %v", c.Duplicates, c.MaxAge, c.Storage)
	}
	q, err := js.Stream(t.Context(), natspub.DefaultQuarantineStream)
	if err != nil {
		t.Fatal(err)
	}
	qc := q.CachedInfo().Config
	if qc.MaxAge != 24*time.Hour || qc.MaxBytes != 64<<20 || qc.Discard != jetstream.DiscardOld || qc.Duplicates != 4*time.Hour {
		t.Errorf("quarantine config = age %v bytes %d discard %v dup %v", qc.MaxAge, qc.MaxBytes, qc.Discard, qc.Duplicates)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	nc := startNATS(t)
	p, err := natspub.New(t.Context(), natspub.Config{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(t.Context()); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("first Close = %v", err)
	}
	if err := p.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	b := &receiver.Batch{Notifications: []*receiver.Notification{{SubscriptionID: "s", ChangeType: "created"}}}
	if err := p.Deliver(t.Context(), b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Deliver after Close = %v, want net.ErrClosed", err)
	}
	if !nc.IsConnected() {
		t.Error("Close closed the caller's connection")
	}
}

func TestDeliverFailsWhenStreamIsGone(t *testing.T) {
	nc := startNATS(t)
	p := newPublisher(t, nc, natspub.Config{PublishTimeout: time.Second})
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(t.Context(), natspub.DefaultStream); err != nil {
		t.Fatal(err)
	}
	b := &receiver.Batch{Notifications: []*receiver.Notification{{SubscriptionID: "s", ChangeType: "created"}}}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.Deliver(ctx, b); !errors.Is(err, natspub.ErrNotAcknowledged) {
		t.Errorf("Deliver = %v, want ErrNotAcknowledged", err)
	}
	if err := p.Ready(ctx); !errors.Is(err, natspub.ErrStreamSetup) {
		t.Errorf("Ready = %v, want ErrStreamSetup", err)
	}
	if p.Stats().Failed != 1 {
		t.Errorf("Stats.Failed = %d", p.Stats().Failed)
	}
}

func one(t testing.TB, subs map[string][]*jetstream.RawStreamMsg, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	got := subs[subject]
	if len(got) != 1 {
		var all []string
		for s := range subs {
			all = append(all, s)
		}
		t.Fatalf("%d messages on %s, want 1; subjects: %q", len(got), subject, all)
	}
	return got[0]
}

func wantHeaders(t testing.TB, h nats.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeliverIsBoundedByPublishTimeout(t *testing.T) {
	nc := startNATS(t)
	const timeout = 300 * time.Millisecond
	p := newPublisher(t, nc, natspub.Config{PublishTimeout: timeout})
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(t.Context(), natspub.DefaultStream); err != nil {
		t.Fatal(err)
	}
	// A server that takes the messages but never acknowledges them: a
	// plain subscriber where the stream was.
	sink := natstest.Connect(t, nc.ConnectedUrl())
	sub, err := sink.SubscribeSync("graph.notifications.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = p.Deliver(ctx, &receiver.Batch{Notifications: []*receiver.Notification{{SubscriptionID: "s", ChangeType: "created"}}})
	took := time.Since(start)
	if !errors.Is(err, natspub.ErrNotAcknowledged) {
		t.Errorf("Deliver = %v, want ErrNotAcknowledged", err)
	}
	if took < timeout || took > 5*timeout {
		t.Errorf("Deliver took %v, want about the publish timeout %v", took, timeout)
	}
	if _, err := sub.NextMsg(time.Second); err != nil {
		t.Errorf("the message was not published at all: %v", err)
	}
}
