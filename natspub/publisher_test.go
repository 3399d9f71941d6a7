package natspub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestEveryNotificationLandsOnceWithSubjectHeadersAndBody(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
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
			"Nats-Msg-Id":               natspub.MsgID(subID + ":lsgTZMr9KwAAA"),
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
		if !strings.HasPrefix(id, "sha256:") || m.Header.Get("Nats-Msg-Id") != natspub.MsgID(id) {
			t.Errorf("ce-id %q, Nats-Msg-Id %q: want a sha256 ce-id for an item without id, and the Nats-Msg-Id derived from it", id, m.Header.Get("Nats-Msg-Id"))
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
	if s := e.pub.Stats(); s.Stored != 3 || s.Duplicates != 0 || s.Failed != 0 {
		t.Errorf("Stats = %+v, want 3 stored", s)
	}
}

func TestSameBatchTwiceLandsOnce(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
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
	if s := e.pub.Stats(); s.Duplicates != 10 || s.Stored != 5 {
		t.Errorf("Stats = %+v, want 5 stored (what the stream holds) and 10 duplicates", s)
	}
	// Other content is another event.
	e.mustPost(t, body(t, tokens, richItem(t, key, `{"id":"x","body":"edited"}`)))
	wantCount(t, e.js, natspub.DefaultStream, 6)
}

func TestServerDownAnswers503FastAndRetryLandsOnceAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ns := natstest.RunServer(t, dir, -1)
	port := natstest.Port(t, ns)
	nc := natstest.Connect(t, ns.ClientURL())
	const timeout = 1500 * time.Millisecond
	e := newEnv(t, nc, testkit.DecryptKey(t, certID), natspub.Config{PublishTimeout: timeout})

	a := body(t, nil, basicItem("a", "created", "users/u1/messages/a", ""))
	b := body(t, nil, basicItem("b", "created", "users/u1/messages/b", ""), lifecycleItem("subscriptionRemoved"))
	e.mustPost(t, a)

	ns.Shutdown()
	ns.WaitForShutdown()
	testkit.CheckFor(t, 5*time.Second, func() error {
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
	testkit.CheckFor(t, 10*time.Second, func() error { return e.pub.Ready(t.Context()) })
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
	e := newEnv(t, startNATS(t), testkit.DecryptKey(t, certID), natspub.Config{})
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
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") || len(tok) > natspub.MaxSubjectTokenLen {
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
	key := testkit.DecryptKey(t, certID)
	other := testkit.DecryptKey(t, certID) // encrypted for a key we do not hold
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
	// Items that passed clientState and items anyone can send are kept
	// apart (each stream with its own bound).
	q := bySubject(append(wantCount(t, e.js, natspub.DefaultQuarantineStream, 2), wantCount(t, e.js, natspub.DefaultUnverifiedStream, 2)...))
	t.Run("client_state", func(t *testing.T) {
		m := one(t, q, "graph.rejected.client_state.evil%2Etenant")
		wantHeaders(t, m.Header, map[string]string{"graphhook-reason": "client_state", "graphhook-items": "1", "content-type": "application/json"})
		if !strings.Contains(m.Header.Get("graphhook-error"), "clientState mismatch") {
			t.Errorf("graphhook-error = %q", m.Header.Get("graphhook-error"))
		}
		c := quarantined(t, m.Data)
		var it map[string]any
		if err := json.Unmarshal(c.Value[0].Raw, &it); err != nil || len(c.Value) != 1 || it["id"] != "f1" || it["clientState"] != "guessed" {
			t.Errorf("body does not hold the raw item: %s", m.Data)
		}
		if c.ValidationTokens != nil {
			t.Errorf("validationTokens %q in a body of a batch without them", c.ValidationTokens)
		}
	})
	t.Run("decrypt", func(t *testing.T) {
		m := one(t, q, "graph.rejected.decrypt."+tenant)
		c := quarantined(t, m.Data)
		if got := c.ValidationTokens; len(got) != 2 || got[0] != tokens[0] || got[1] != tokens[1] {
			t.Errorf("validation tokens = %q, want %q", got, tokens)
		}
		if len(c.Value) != 1 || c.Value[0].EncryptedContent == nil || c.Value[0].EncryptedContent.Data == "" {
			t.Errorf("body lost encryptedContent: %s", m.Data)
		}
		for k := range m.Header {
			if strings.Contains(strings.ToLower(k), "token") {
				t.Errorf("header %s: tokens belong in the body", k)
			}
		}
	})
	one(t, q, "graph.rejected.token_missing."+tenant)
	one(t, q, "graph.rejected.malformed."+tenant)
	if s := e.pub.Stats(); s.Quarantined != 4 || s.Stored != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

// quarantined parses the body of a quarantine message, which must be a
// changeNotificationCollection.
func quarantined(t testing.TB, data []byte) *receiver.Collection {
	t.Helper()
	c, err := receiver.Parse(data)
	if err != nil {
		t.Fatalf("quarantine body is not a changeNotificationCollection: %v: %.200s", err, data)
	}
	return c
}

// TestQuarantineIsOneReplayableMessagePerReason posts a batch holding good
// and rejected items of two reasons and several tenants.
func TestQuarantineIsOneReplayableMessagePerReason(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
	e := newEnv(t, startNATS(t), key, natspub.Config{})
	forged := func(id, tenantID string) item {
		it := basicItem(id, "created", "users/u1/messages/"+id, "")
		it["clientState"] = "guessed"
		it["tenantId"] = tenantID
		return it
	}
	malformed := item{"subscriptionId": subID, "tenantId": tenant, "clientState": secret}
	tokens := []string{"eyJ0eXAiOiJKV1QifQ.e30.sig1"}
	items := []item{forged("f1", tenant), malformed, basicItem("ok", "created", "users/u1/messages/ok", ""), forged("f2", "other-tenant"), forged("f3", tenant)}
	batch := body(t, tokens, items...)
	e.mustPost(t, batch)
	e.mustPost(t, batch) // Graph's redelivery

	wantCount(t, e.js, natspub.DefaultStream, 1)
	wantCount(t, e.js, natspub.DefaultQuarantineStream, 0)
	q := bySubject(wantCount(t, e.js, natspub.DefaultUnverifiedStream, 2))
	sent, err := receiver.Parse(batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("client_state, mixed tenants", func(t *testing.T) {
		m := one(t, q, "graph.rejected.client_state._")
		wantHeaders(t, m.Header, map[string]string{"graphhook-reason": "client_state", "graphhook-items": "3"})
		c := quarantined(t, m.Data)
		want := []json.RawMessage{sent.Value[0].Raw, sent.Value[3].Raw, sent.Value[4].Raw}
		if len(c.Value) != len(want) {
			t.Fatalf("%d items, want %d: %s", len(c.Value), len(want), m.Data)
		}
		for i := range want {
			if !bytes.Equal(c.Value[i].Raw, want[i]) {
				t.Errorf("item %d = %s, want the raw %s", i, c.Value[i].Raw, want[i])
			}
		}
		if len(c.ValidationTokens) != 1 || c.ValidationTokens[0] != tokens[0] {
			t.Errorf("validationTokens = %q", c.ValidationTokens)
		}
	})
	t.Run("malformed, one tenant", func(t *testing.T) {
		m := one(t, q, "graph.rejected.malformed."+tenant)
		wantHeaders(t, m.Header, map[string]string{"graphhook-reason": "malformed", "graphhook-items": "1"})
		if c := quarantined(t, m.Data); len(c.Value) != 1 || !bytes.Equal(c.Value[0].Raw, sent.Value[1].Raw) {
			t.Errorf("body = %s", m.Data)
		}
	})
	if s := e.pub.Stats(); s.Quarantined+s.QuarantineDuplicates != 8 || s.QuarantineDuplicates != 4 || s.Stored+s.Duplicates != 2 || s.Duplicates != 1 {
		t.Errorf("Stats = %+v, want 8 quarantined items (4 stored, then 4 again as duplicates), 2 published (1 stored, 1 duplicate)", s)
	}
}

// TestQuarantineIsBoundedByTheRequest: a body of many tiny forged items and
// a large validation token must not become one message per item, each
// carrying the token.
func TestQuarantineIsBoundedByTheRequest(t *testing.T) {
	e := newEnv(t, startNATS(t), testkit.DecryptKey(t, certID), natspub.Config{})
	const n = 2000
	items := make([]item, n)
	for i := range items {
		items[i] = item{"subscriptionId": "s", "changeType": "created", "clientState": "x", "resource": strconv.Itoa(i), "tenantId": "t" + strconv.Itoa(i%3)}
	}
	// The token as sent, not HTML-escaped: re-encoding must not grow it.
	b := body(t, nil, items...)
	b = append(b[:len(b)-1], `,"validationTokens":["`+strings.Repeat("A<", 5_000)+`"]}`...)
	e.mustPost(t, b)
	msgs := wantCount(t, e.js, natspub.DefaultUnverifiedStream, 1)
	if got := len(msgs[0].Data); got > len(b)+64 {
		t.Errorf("quarantine body is %d bytes for a %d byte request", got, len(b))
	}
	if c := quarantined(t, msgs[0].Data); len(c.Value) != n {
		t.Errorf("quarantine holds %d items, want %d", len(c.Value), n)
	}
	if msgs[0].Subject != "graph.rejected.client_state._" {
		t.Errorf("subject %q", msgs[0].Subject)
	}
}

// TestManyValidationTokensDoNotBlockTheBatch: tokens in headers would pass
// the server's 64 KiB header limit, and the batch could never be stored.
func TestManyValidationTokensDoNotBlockTheBatch(t *testing.T) {
	e := newEnv(t, startNATS(t), testkit.DecryptKey(t, certID), natspub.Config{})
	tokens := make([]string, 40)
	for i := range tokens {
		tokens[i] = "eyJ0eXAiOiJKV1QifQ." + strings.Repeat("e", 2000) + "." + strconv.Itoa(i)
	}
	forged := basicItem("f1", "created", "users/u1/messages/f1", "")
	forged["clientState"] = "guessed"
	e.mustPost(t, body(t, tokens, basicItem("ok", "created", "users/u1/messages/ok", ""), forged))
	wantCount(t, e.js, natspub.DefaultStream, 1)
	m := wantCount(t, e.js, natspub.DefaultUnverifiedStream, 1)[0]
	if c := quarantined(t, m.Data); len(c.ValidationTokens) != len(tokens) {
		t.Errorf("quarantine body holds %d tokens, want %d", len(c.ValidationTokens), len(tokens))
	}
}

func TestQuarantineErrorHeaderIsBounded(t *testing.T) {
	nc := startNATS(t)
	pub := newPublisher(t, nc, natspub.Config{})
	n := &receiver.Notification{SubscriptionID: "s", ChangeType: "created", Raw: []byte(`{"subscriptionId":"s"}`)}
	cause := errors.New(strings.Repeat("\r\nforged: x", 100))
	msgs, err := pub.Messages(&receiver.Batch{Rejected: []*receiver.Rejected{
		{Notification: n, Reason: receiver.ReasonMalformed, Err: cause},
		{Notification: n, Reason: receiver.ReasonMalformed, Err: errors.New("second")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	got := msgs[0].Header.Get("graphhook-error")
	if len(got) > natspub.MaxErrorHeaderLen || !strings.HasPrefix(got, "%0D%0Aforged") || strings.ContainsAny(got, "\r\n") {
		t.Errorf("graphhook-error = %q (%d bytes)", got, len(got))
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
	js := newJS(t, nc)
	m := wantCount(t, js, natspub.DefaultQuarantineStream, 1)[0]
	if want := `{"value":[` + string(raw) + `]}`; string(m.Data) != want {
		t.Errorf("body = %s, want %s", m.Data, want)
	}
	if bytes.Contains(m.Data, []byte("top secret")) || strings.Contains(mustJSON(t, m.Header), "top secret") {
		t.Error("quarantine message carries decrypted content")
	}
	wantCount(t, js, natspub.DefaultStream, 0)
}

// TestItemsWithoutIDThatDifferAnywhereAreTwoEvents: without Graph's id,
// items that differ only in a resourceData property or an unknown field
// are two notifications, not a redelivery.
func TestItemsWithoutIDThatDifferAnywhereAreTwoEvents(t *testing.T) {
	e := newEnv(t, startNATS(t), testkit.DecryptKey(t, certID), natspub.Config{})
	user := func(seq int, name string) item {
		return item{
			"subscriptionId": subID, "clientState": secret, "tenantId": tenant,
			"changeType": "updated", "resource": "Users/u1", "sequenceNumber": seq,
			"resourceData": map[string]any{"@odata.type": "#Microsoft.Graph.User", "id": "u1", "displayName": name},
		}
	}
	b := body(t, nil, user(1, "Ada"), user(2, "Ada"), user(2, "Ada L."))
	e.mustPost(t, b)
	e.mustPost(t, b) // Graph's redelivery
	ids := map[string]bool{}
	for _, m := range wantCount(t, e.js, natspub.DefaultStream, 3) {
		ids[m.Header.Get("ce-id")] = true
	}
	if len(ids) != 3 {
		t.Errorf("%d distinct event ids, want 3", len(ids))
	}
}

// TestDeliverStopsPublishingWhenItsContextEnds cancels Deliver's context as soon
// as the first message of a large batch reaches the server: Deliver must
// stop publishing then, not push the rest of the batch first.
func TestDeliverStopsPublishingWhenItsContextEnds(t *testing.T) {
	nc := startNATS(t)
	p := newPublisher(t, nc, natspub.Config{PublishTimeout: time.Minute})
	const n = 40_000
	b := &receiver.Batch{ReceivedAt: time.Now(), Notifications: make([]*receiver.Notification, n)}
	for i := range b.Notifications {
		b.Notifications[i] = &receiver.Notification{ID: strconv.Itoa(i), SubscriptionID: subID, TenantID: tenant, ChangeType: "created", Resource: "r"}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	watcher := natstest.Connect(t, nc.ConnectedUrl())
	var seen atomic.Int64
	if _, err := watcher.Subscribe("graph.notifications.>", func(*nats.Msg) {
		if seen.Add(1) == 1 {
			cancel()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	err := p.Deliver(ctx, b)
	if !errors.Is(err, natspub.ErrNotAcknowledged) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver = %v, want ErrNotAcknowledged and context.Canceled", err)
	}
	// Everything Deliver published reaches the watcher; wait until that
	// count stops growing.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	// testkit.CheckFor polls every 10ms: ask for 5 polls (50ms) without growth.
	var last int64 = -1
	stable := 0
	testkit.CheckFor(t, 10*time.Second, func() error {
		got := seen.Load()
		if got != last {
			last, stable = got, 0
			return fmt.Errorf("watcher still receiving (%d)", got)
		}
		if stable++; stable < 5 {
			return fmt.Errorf("watcher count %d stable for %d polls", got, stable)
		}
		return nil
	})
	if last >= n {
		t.Errorf("Deliver published all %d messages after its context was cancelled", last)
	}
	t.Logf("published %d of %d: %v", last, n, err)
}

func TestDeliverHonoursCallerDeadline(t *testing.T) {
	nc := startNATS(t)
	p := newPublisher(t, nc, natspub.Config{PublishTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	err := p.Deliver(ctx, newBatch("deadline", 0))
	if !errors.Is(err, natspub.ErrNotAcknowledged) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Deliver = %v, want ErrNotAcknowledged and context.DeadlineExceeded", err)
	}
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
		{"bad stream name", natspub.Config{Conn: nc, Stream: "A.B"}, natspub.ErrInvalidConfig},
		{"multi-token prefix", natspub.Config{Conn: nc, SubjectPrefix: "acme.graph", Stream: "ACME", QuarantineStream: "ACME_Q"}, nil},
		{"three replicas on one server", natspub.Config{Conn: nc, SubjectPrefix: "r3", Stream: "R3", QuarantineStream: "R3_Q", UnverifiedStream: "R3_U", Replicas: 3}, natspub.ErrStreamSetup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := natspub.New(t.Context(), tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New = %v, want %v", err, tt.wantErr)
			}
			if tt.cfg.Replicas > 1 && !strings.Contains(err.Error(), "cluster of at least 3 servers") {
				t.Errorf("New = %v, want it to say replicas need a cluster", err)
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
	js := newJS(t, nc)
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
	js := newJS(t, nc)
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
	js := newJS(t, nc)
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
