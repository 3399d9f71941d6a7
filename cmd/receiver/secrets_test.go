package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/internal/testkit"
)

// TestRichNotificationsEndToEndWithoutSecretsInLogs runs the receiver
// in-process with token validation (against graphsim's JWKS over HTTP) and
// a decryption key, posts a genuine rich batch, a forged clientState and a
// batch with a token for another app, and checks the outcome in JetStream,
// in /metrics, and that none of the secrets appears in the debug logs.
func TestRichNotificationsEndToEndWithoutSecretsInLogs(t *testing.T) {
	ctx := t.Context()
	sim, err := graphsim.New(graphsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	idp := httptest.NewServer(sim.Handler())
	t.Cleanup(idp.Close)

	dir := t.TempDir()
	key, err := decrypt.GenerateKey(2048, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	const clientState = "known-client-state-Zq81xKp0wLmN3vB7"
	stateFile := writeFile(t, dir, "states", clientState+"\n")

	p := startInProcess(t, baseArgs(filepath.Join(dir, "data"),
		"--client-state-file", stateFile,
		"--key", keyFile+",id=key-1",
		"--app-id", graphsim.DefaultAppID,
		"--tenant", graphsim.DefaultTenantID,
		"--jwks-url", idp.URL+"/common/discovery/v2.0/keys",
		"--log-format", "json", "--log-level", "debug",
	), nil)
	testkit.CheckFor(t, 10*time.Second, func() error {
		status, body, err := get(ctx, p.base+"/readyz")
		if err == nil && (status != http.StatusOK || !strings.Contains(body, `"jwks":"ok"`)) {
			err = fmt.Errorf("/readyz %d %s", status, body)
		}
		return err
	})

	rich, content, err := graphsim.RichNotification(graphsim.Item{ClientState: clientState, TenantID: graphsim.DefaultTenantID}, key.Certificate, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	good, err := sim.Batch(graphsim.DefaultAppID, rich)
	if err != nil {
		t.Fatal(err)
	}
	forgedItem, _, err := graphsim.RichNotification(graphsim.Item{ClientState: "forged-state-Yy62", TenantID: graphsim.DefaultTenantID}, key.Certificate, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := sim.Batch(graphsim.DefaultAppID, forgedItem)
	if err != nil {
		t.Fatal(err)
	}
	otherApp, _, err := graphsim.RichNotification(graphsim.Item{ClientState: clientState, TenantID: graphsim.DefaultTenantID}, key.Certificate, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	wrongAud, err := sim.Batch("99999999-9999-9999-9999-999999999999", otherApp)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, b := range [][]byte{good, wrongAud} {
		var coll graphsim.Collection
		if err := json.Unmarshal(b, &coll); err != nil || len(coll.ValidationTokens) != 1 {
			t.Fatalf("graphsim batch without one validation token: %v", err)
		}
		tokens = append(tokens, coll.ValidationTokens[0])
	}

	for name, body := range map[string][]byte{"genuine": good, "forged clientState": forged, "token for another app": wrongAud} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/notifications?tenant=contoso", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", "req-"+strings.ReplaceAll(name, " ", "-"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s batch: %d, want 202", name, resp.StatusCode)
		}
		if got := resp.Header.Get("X-Request-Id"); got != "req-"+strings.ReplaceAll(name, " ", "-") {
			t.Errorf("X-Request-Id %q not echoed", got)
		}
	}

	// Exactly the genuine item, decrypted, is in the stream.
	nc, err := nats.Connect(embeddedURL(t, p.nats, filepath.Join(dir, "data")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "GRAPH")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("GRAPH holds %d messages, want 1", info.State.Msgs)
	}
	m, err := s.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	var event struct {
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(m.Data, &event); err != nil {
		t.Fatal(err)
	}
	var gotContent, wantContent any
	_ = json.Unmarshal(event.Content, &gotContent)
	_ = json.Unmarshal(content, &wantContent)
	if fmt.Sprint(gotContent) != fmt.Sprint(wantContent) || gotContent == nil {
		t.Errorf("event content %s, want the decrypted %s", event.Content, content)
	}
	// natspub keeps items that passed clientState (GRAPH_REJECTED) apart
	// from those anyone can send (GRAPH_UNVERIFIED).
	var quarantined uint64
	for _, name := range []string{"GRAPH_REJECTED", "GRAPH_UNVERIFIED"} {
		q, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		qi, _ := q.Info(ctx)
		quarantined += qi.State.Msgs
	}
	if quarantined != 2 {
		t.Errorf("GRAPH_REJECTED and GRAPH_UNVERIFIED hold %d messages, want 2", quarantined)
	}

	_, ex, _ := get(ctx, p.base+"/metrics")
	for series, want := range map[string]string{
		`graphhook_notifications_total{outcome="published"}`:     "1",
		`graphhook_notifications_total{outcome="client_state"}`:  "1",
		`graphhook_notifications_total{outcome="token_invalid"}`: "1",
		`graphhook_quarantined_total`:                            "2",
	} {
		if got, _ := metricValue(ex, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}

	if err := p.stop(t); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "the JWKS URL is plain http and is not a Microsoft identity host") {
		t.Errorf("no start-up warning for a plain http --jwks-url")
	}
	if !strings.Contains(logs, `"request_id":"req-genuine"`) {
		t.Errorf("the access log lacks the request id")
	}
	// The receiver's own line about the forged item carries the same id.
	found := false
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"msg":"notification rejected"`) && strings.Contains(line, `"request_id":"req-forged-clientState"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the rejection log line lacks the request id of its request:\n%s", logs)
	}
	var wantSubject struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(content, &wantSubject)
	natsToken, err := os.ReadFile(filepath.Join(dir, "data", defaultNATSTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"NATS token":           strings.TrimSpace(string(natsToken)),
		"clientState":          clientState,
		"forged clientState":   "forged-state-Yy62",
		"validation token":     tokens[0],
		"token signature":      tokens[0][strings.LastIndex(tokens[0], ".")+1:],
		"other token":          tokens[1],
		"private key":          strings.Split(string(pemData), "\n")[1],
		"query string":         "tenant=contoso",
		"decrypted content":    string(content),
		"decrypted message id": wantSubject.Subject,
	}
	for what, secret := range secrets {
		if secret == "" {
			t.Fatalf("test setup: empty %s", what)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", what)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}
