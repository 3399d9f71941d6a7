package natspub_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go/jetstream"
)

func TestConfigValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name      string
		cfg       natspub.Config
		wantField string
	}{
		{"zero value", natspub.Config{}, ""},
		{"wildcard prefix", natspub.Config{SubjectPrefix: "graph.*"}, "SubjectPrefix"},
		{"tab in prefix", natspub.Config{SubjectPrefix: "a\tb"}, "SubjectPrefix"},
		{"dot in stream", natspub.Config{Stream: "A.B"}, "Stream"},
		{"slash in quarantine", natspub.Config{QuarantineStream: "A/B"}, "QuarantineStream"},
		{"long unverified", natspub.Config{UnverifiedStream: strings.Repeat("U", 256)}, "UnverifiedStream"},
		{"unverified is the default quarantine", natspub.Config{UnverifiedStream: natspub.DefaultQuarantineStream}, "UnverifiedStream"},
		{"quarantine is the stream", natspub.Config{Stream: "X", QuarantineStream: "X"}, "QuarantineStream"},
		{"negative replicas", natspub.Config{Replicas: -1}, "Replicas"},
		{"too many quarantine replicas", natspub.Config{QuarantineReplicas: 6}, "QuarantineReplicas"},
		{"all set", natspub.Config{SubjectPrefix: "acme.graph", Stream: "S", QuarantineStream: "Q", UnverifiedStream: "U", Replicas: 3}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			ce, ok := errors.AsType[*natspub.ConfigError](err)
			if !ok || ce.Field != tt.wantField || !errors.Is(err, natspub.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want a *ConfigError for %s", err, tt.wantField)
			}
			if !strings.HasPrefix(err.Error(), "natspub: Config."+tt.wantField+": ") {
				t.Errorf("error text %q", err)
			}
		})
	}
	t.Run("New reports it too", func(t *testing.T) {
		_, err := natspub.New(t.Context(), natspub.Config{})
		if ce, ok := errors.AsType[*natspub.ConfigError](err); !ok || ce.Field != "Conn" {
			t.Errorf("New without Conn = %v, want a *ConfigError for Conn", err)
		}
	})
}

// TestForgedFloodNeverEvictsItemsThatPassedClientState is issue 16's
// acceptance test: forged items of any size fill only their own stream.
func TestForgedFloodNeverEvictsItemsThatPassedClientState(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
	const bound = 256 << 10
	e := newEnv(t, startNATS(t), key, natspub.Config{QuarantineMaxBytes: bound, UnverifiedMaxBytes: bound})

	// A genuine item that passed clientState and failed later: encrypted
	// for a key the receiver does not hold.
	e.mustPost(t, body(t, []string{"eyJ0eXAiOiJKV1QifQ.e30.sig"}, richItem(t, testkit.DecryptKey(t, certID), plaintext)))
	genuine := wantCount(t, e.js, natspub.DefaultQuarantineStream, 1)[0]

	forged := func(id string, pad int) item {
		it := basicItem(id, "created", "users/u1/messages/"+id, "")
		it["clientState"] = "guessed"
		it["padding"] = strings.Repeat("x", pad)
		return it
	}
	// Sizes from tiny to larger than the bound itself, many requests.
	sizes := []int{10, 1 << 10, 16 << 10, 100 << 10, bound, 2 * bound}
	for i := range 40 {
		pad := sizes[i%len(sizes)]
		items := []item{forged("f"+strings.Repeat("a", i), pad)}
		if i%5 == 0 {
			items = append(items, item{"subscriptionId": subID, "clientState": "x", "padding": strings.Repeat("y", pad)}) // malformed
		}
		if i == 39 {
			// A genuine item in a flooded batch is still published.
			items = append(items, basicItem("ok-after-flood", "created", "users/u1/messages/ok", ""))
		}
		e.mustPost(t, body(t, nil, items...))
	}

	if got := wantCount(t, e.js, natspub.DefaultQuarantineStream, 1)[0]; got.Sequence != genuine.Sequence || !bytes.Equal(got.Data, genuine.Data) {
		t.Errorf("the item that passed clientState was replaced: seq %d, want %d", got.Sequence, genuine.Sequence)
	}
	wantCount(t, e.js, natspub.DefaultStream, 1)
	s, err := e.js.Stream(t.Context(), natspub.DefaultUnverifiedStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > bound || info.State.Msgs == 0 {
		t.Errorf("unverified stream holds %d messages, %d bytes; bound %d", info.State.Msgs, info.State.Bytes, bound)
	}
	st := e.pub.Stats()
	if st.UnverifiedDropped == 0 || st.Failed != 0 || st.Stored != 1 {
		t.Errorf("Stats = %+v, want drops counted, no failures, the genuine event stored", st)
	}
	if st.Quarantined+st.QuarantineDuplicates+st.UnverifiedDropped != 1+40+8 {
		t.Errorf("Stats = %+v: quarantined + dropped should be every rejected item (49)", st)
	}
	if err := e.pub.Ready(t.Context()); err != nil {
		t.Errorf("a full unverified stream made the publisher unready: %v", err)
	}
}

// TestNewKeepsTheOperatorsStream pre-creates the streams with settings of
// an operator's own: New keeps them, sets only what graphhook needs, and
// says so in the log.
func TestNewKeepsTheOperatorsStream(t *testing.T) {
	nc := startNATS(t)
	js := newJS(t, nc)
	op := jetstream.StreamConfig{
		Name:       natspub.DefaultStream,
		Subjects:   []string{"graph.notifications.>", "graph.gaps.>"}, // lifecycle missing, one of the operator's own
		Storage:    jetstream.FileStorage,
		MaxAge:     30 * 24 * time.Hour,
		MaxBytes:   10 << 20,
		MaxMsgs:    1000,
		Discard:    jetstream.DiscardNew,
		Duplicates: time.Minute,
	}
	if _, err := js.CreateStream(t.Context(), op); err != nil {
		t.Fatal(err)
	}
	// The quarantine stream of a version that had only one.
	legacy := jetstream.StreamConfig{Name: natspub.DefaultQuarantineStream, Subjects: []string{"graph.rejected.>"}, Storage: jetstream.FileStorage, MaxBytes: 1 << 30, Duplicates: 4 * time.Hour}
	if _, err := js.CreateStream(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	newPublisher(t, nc, natspub.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	c := streamConfig(t, js, natspub.DefaultStream)
	if c.MaxAge != op.MaxAge || c.MaxBytes != op.MaxBytes || c.MaxMsgs != op.MaxMsgs || c.Discard != jetstream.DiscardNew || c.Replicas != 1 {
		t.Errorf("operator's settings changed: age %v bytes %d msgs %d discard %v replicas %d", c.MaxAge, c.MaxBytes, c.MaxMsgs, c.Discard, c.Replicas)
	}
	if !slices.Contains(c.Subjects, "graph.lifecycle.>") || !slices.Contains(c.Subjects, "graph.notifications.>") || !slices.Contains(c.Subjects, "graph.gaps.>") {
		t.Errorf("subjects = %q, want graphhook's and the operator's graph.gaps.>", c.Subjects)
	}
	if c.Duplicates != natspub.DefaultDuplicateWindow {
		t.Errorf("duplicate window = %v, want raised to %v", c.Duplicates, natspub.DefaultDuplicateWindow)
	}
	q := streamConfig(t, js, natspub.DefaultQuarantineStream)
	if slices.Contains(q.Subjects, "graph.rejected.>") || !slices.Contains(q.Subjects, "graph.rejected.decrypt.>") || q.MaxBytes != 1<<30 || q.Duplicates != 4*time.Hour {
		t.Errorf("legacy quarantine: subjects %q, max bytes %d, dup %v", q.Subjects, q.MaxBytes, q.Duplicates)
	}
	if u := streamConfig(t, js, natspub.DefaultUnverifiedStream); !slices.Contains(u.Subjects, "graph.rejected.client_state.>") {
		t.Errorf("unverified subjects = %q", u.Subjects)
	}
	for _, want := range []string{"stream keeps the operator's setting", "setting=max_age", "setting=discard", "setting=max_bytes", "stream subjects set"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}

	t.Run("memory storage stops New", func(t *testing.T) {
		nc := startNATS(t)
		js := newJS(t, nc)
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "MEM", Subjects: []string{"graph.notifications.>", "graph.lifecycle.>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		_, err := natspub.New(t.Context(), natspub.Config{Conn: nc, Stream: "MEM"})
		if !errors.Is(err, natspub.ErrStreamSetup) || !strings.Contains(err.Error(), "file storage") || !strings.Contains(err.Error(), "MEM") {
			t.Errorf("New = %v, want ErrStreamSetup saying to use file storage", err)
		}
	})
}

// TestNewFollowsTheConfigOnlyForLimitsNobodyChanged: on a stream New
// created, a limit still at the value New applied follows the Config; one
// an operator changed since is kept.
func TestNewFollowsTheConfigOnlyForLimitsNobodyChanged(t *testing.T) {
	nc := startNATS(t)
	js := newJS(t, nc)
	newPublisher(t, nc, natspub.Config{}).Close()
	s, err := js.Stream(t.Context(), natspub.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	edited := s.CachedInfo().Config // as nats stream edit does: metadata kept
	edited.MaxAge = 30 * 24 * time.Hour
	if _, err := js.UpdateStream(t.Context(), edited); err != nil {
		t.Fatal(err)
	}
	newPublisher(t, nc, natspub.Config{MaxAge: 48 * time.Hour, QuarantineMaxBytes: 32 << 20})
	if c := streamConfig(t, js, natspub.DefaultStream); c.MaxAge != 30*24*time.Hour {
		t.Errorf("max age = %v, want the operator's 720h", c.MaxAge)
	}
	if q := streamConfig(t, js, natspub.DefaultQuarantineStream); q.MaxBytes != 32<<20 {
		t.Errorf("quarantine max bytes = %d, want the configured %d", q.MaxBytes, 32<<20)
	}
}

func TestNewRefusesAMirror(t *testing.T) {
	nc := startNATS(t)
	js := newJS(t, nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "SRC", Subjects: []string{"src.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "MIR", Mirror: &jetstream.StreamSource{Name: "SRC"}}); err != nil {
		t.Fatal(err)
	}
	_, err := natspub.New(t.Context(), natspub.Config{Conn: nc, Stream: "MIR"})
	if !errors.Is(err, natspub.ErrStreamSetup) || !strings.Contains(err.Error(), "mirrors stream SRC") {
		t.Errorf("New on a mirror = %v, want ErrStreamSetup saying it is a mirror", err)
	}
}

func streamConfig(t testing.TB, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

func TestReadyReportsAFullStream(t *testing.T) {
	one := func(id string) *receiver.Batch {
		return &receiver.Batch{Notifications: []*receiver.Notification{{ID: id, SubscriptionID: subID, TenantID: tenant, ChangeType: "created", Resource: "r"}}}
	}
	// The stored size of one event, about: JetStream adds a few dozen
	// bytes to subject, headers and body.
	m := event(t, encoder(t), one("size").Notifications[0])
	size := int64(len(m.Subject) + len(m.Data) + 64)
	for k, vs := range m.Header {
		for _, v := range vs {
			size += int64(len(k) + len(v) + 4)
		}
	}
	tests := []struct {
		name  string
		limit jetstream.StreamConfig
		sent  int // batches of one event that fit
	}{
		{"max_msgs", jetstream.StreamConfig{MaxMsgs: 2}, 2},
		// Room for one event but not two: the stream is not at its limit,
		// it refuses the next write.
		{"max_bytes", jetstream.StreamConfig{MaxBytes: size * 3 / 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := startNATS(t)
			js := newJS(t, nc)
			sc := tt.limit
			sc.Name = "FULL_" + strings.ToUpper(tt.name)
			sc.Subjects = []string{"graph.notifications.>", "graph.lifecycle.>"}
			sc.Storage = jetstream.FileStorage
			sc.Discard = jetstream.DiscardNew
			if _, err := js.CreateStream(t.Context(), sc); err != nil {
				t.Fatal(err)
			}
			p := newPublisher(t, nc, natspub.Config{Stream: sc.Name, QuarantineStream: sc.Name + "_Q", UnverifiedStream: sc.Name + "_U"})
			for i := range tt.sent {
				if err := p.Deliver(t.Context(), one("fits-"+string(rune('a'+i)))); err != nil {
					t.Fatalf("Deliver %d: %v", i, err)
				}
			}
			if err := p.Deliver(t.Context(), one("refused")); !errors.Is(err, natspub.ErrNotAcknowledged) {
				t.Fatalf("Deliver to a full stream = %v, want ErrNotAcknowledged", err)
			}
			err := p.Ready(t.Context())
			if !errors.Is(err, natspub.ErrStreamFull) || !strings.Contains(err.Error(), sc.Name) {
				t.Fatalf("Ready = %v, want ErrStreamFull naming %s", err, sc.Name)
			}
			s, err := js.Stream(t.Context(), sc.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Purge(t.Context()); err != nil {
				t.Fatal(err)
			}
			testkit.CheckFor(t, 5*time.Second, func() error { return p.Ready(t.Context()) })
			if err := p.Deliver(t.Context(), one("after-purge")); err != nil {
				t.Errorf("Deliver after the purge: %v", err)
			}
		})
	}
}
