package natspub_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

func spanNamed(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func intAttr(s sdktrace.ReadOnlySpan, key string) int64 {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

// consume reads every message of stream and, as a consumer in another
// process would, continues each one's trace in a consumer span.
func consume(t *testing.T, js jetstream.JetStream, stream string, tr trace.Tracer) []trace.SpanContext {
	t.Helper()
	var parents []trace.SpanContext
	for _, m := range streamMsgs(t, js, stream) {
		ctx := propagation.TraceContext{}.Extract(t.Context(), natspub.HeaderCarrier(m.Header))
		parents = append(parents, trace.SpanContextFromContext(ctx))
		_, span := tr.Start(ctx, "process "+m.Subject, trace.WithSpanKind(trace.SpanKindConsumer))
		span.End()
	}
	return parents
}

// TestTraceContextReachesConsumers: every message a batch publishes
// carries the W3C traceparent of the batch's trace, and a consumer that
// extracts it with the propagator gets a span whose parent is the batch's
// publish span (a child of the receiver's batch span); without a publish
// span, the batch span itself; without tracing, no header at all.
func TestTraceContextReachesConsumers(t *testing.T) {
	key := testkit.DecryptKey(t, certID)
	for _, tt := range []struct {
		name                    string
		traceReceiver, tracePub bool
		wantParent              string // the span consumers continue; "" for none
	}{
		{"receiver and publisher traced", true, true, "graphhook.publish"},
		{"receiver traced", true, false, "graphhook.receive"},
		{"off", false, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			nc := startNATS(t)
			pcfg := natspub.Config{}
			if tt.tracePub {
				pcfg.TracerProvider = tp
			}
			e := newEnv(t, nc, key, pcfg)
			rcfg := receiver.Config{Sink: e.pub, ClientStates: []string{secret}, Keys: nil}
			if tt.traceReceiver {
				rcfg.TracerProvider = tp
			}
			rcv, err := receiver.New(rcfg)
			if err != nil {
				t.Fatal(err)
			}
			e.srv = httptest.NewServer(rcv)
			t.Cleanup(e.srv.Close)
			forged := basicItem("AAA", "updated", "users/u1/messages/m3", `W/"3"`)
			forged["clientState"] = "forged"
			e.mustPost(t, body(t, nil,
				basicItem("AAB", "created", "users/u1/messages/m1", `W/"1"`),
				basicItem("AAC", "updated", "users/u1/messages/m2", `W/"2"`),
				forged))

			consumer := tp.Tracer("consumer")
			parents := consume(t, e.js, natspub.DefaultStream, consumer)
			parents = append(parents, consume(t, e.js, natspub.DefaultUnverifiedStream, consumer)...)
			if len(parents) != 3 {
				t.Fatalf("%d messages, want 2 events and 1 quarantine message", len(parents))
			}
			spans := sr.Ended()
			if tt.wantParent == "" {
				for i, p := range parents {
					if p.IsValid() {
						t.Errorf("message %d carries trace context %v with tracing off", i, p)
					}
				}
				if len(spans) != 3 {
					t.Errorf("spans %d, want only the 3 consumer spans", len(spans))
				}
				return
			}
			want := spanNamed(spans, tt.wantParent)
			batch := spanNamed(spans, "graphhook.receive")
			if want == nil || batch == nil {
				t.Fatalf("no %s or graphhook.receive span", tt.wantParent)
			}
			for i, p := range parents {
				if p.SpanID() != want.SpanContext().SpanID() || p.TraceID() != batch.SpanContext().TraceID() || !p.IsRemote() {
					t.Errorf("message %d: trace context %v, want span %s of the batch's trace", i, p, tt.wantParent)
				}
			}
			var consumed int
			for _, s := range spans {
				if s.SpanKind() == trace.SpanKindConsumer {
					consumed++
					if s.Parent().SpanID() != want.SpanContext().SpanID() || s.SpanContext().TraceID() != batch.SpanContext().TraceID() {
						t.Errorf("consumer span %s: parent %v, want %s", s.Name(), s.Parent().SpanID(), tt.wantParent)
					}
				}
			}
			if consumed != 3 {
				t.Errorf("%d consumer spans, want 3", consumed)
			}
			if pub := spanNamed(spans, "graphhook.publish"); pub != nil {
				if pub.Parent().SpanID() != batch.SpanContext().SpanID() || pub.SpanKind() != trace.SpanKindProducer {
					t.Errorf("publish span: parent %v kind %v, want the batch span and producer", pub.Parent().SpanID(), pub.SpanKind())
				}
				for k, v := range map[string]int64{"messaging.batch.message_count": 3, "graphhook.accepted": 2, "graphhook.rejected": 1} {
					if got := intAttr(pub, k); got != v {
						t.Errorf("publish span: %s = %d, want %d", k, got, v)
					}
				}
				if !slices.Contains(pub.Attributes(), attribute.String("messaging.system", "nats")) {
					t.Errorf("publish span attributes %v lack messaging.system=nats", pub.Attributes())
				}
			}
		})
	}
}

// TestPublishSpanCarriesTraceStateAndFailure: a Deliver under a remote
// parent with a tracestate passes the tracestate on to its messages; a
// Deliver that fails ends its span with an error status.
func TestPublishSpanCarriesTraceStateAndFailure(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	nc := startNATS(t)
	pub := newPublisher(t, nc, natspub.Config{TracerProvider: tp})
	js := newJS(t, nc)
	ts, err := trace.ParseTraceState("vendor=opaque")
	if err != nil {
		t.Fatal(err)
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), parent)
	n := &receiver.Notification{SubscriptionID: subID, TenantID: tenant, ChangeType: "created", Resource: "users/u1/messages/m1", ID: "AAA"}
	if err := pub.Deliver(ctx, &receiver.Batch{Notifications: []*receiver.Notification{n}, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	msgs := wantCount(t, js, natspub.DefaultStream, 1)
	if got := msgs[0].Header.Get(natspub.HeaderTraceState); got != "vendor=opaque" {
		t.Errorf("tracestate = %q, want vendor=opaque", got)
	}
	span := spanNamed(sr.Ended(), "graphhook.publish")
	if span == nil || span.SpanContext().TraceID() != parent.TraceID() || span.Parent().SpanID() != parent.SpanID() {
		t.Fatalf("publish span %v is not the child of the remote parent", span)
	}
	if got := msgs[0].Header.Get(natspub.HeaderTraceParent); got != "00-"+parent.TraceID().String()+"-"+span.SpanContext().SpanID().String()+"-01" {
		t.Errorf("traceparent = %q, want the publish span's", got)
	}

	sr.Reset()
	nc.Close()
	if err := pub.Deliver(ctx, &receiver.Batch{Notifications: []*receiver.Notification{n}}); !errors.Is(err, natspub.ErrNotConnected) {
		t.Fatalf("Deliver on a closed connection: %v, want ErrNotConnected", err)
	}
	span = spanNamed(sr.Ended(), "graphhook.publish")
	if span == nil || span.Status().Code != codes.Error {
		t.Errorf("failed Deliver: span %v, want an error status", span)
	}
}

// HeaderCarrier reads and writes NATS's case-sensitive headers exactly,
// where propagation.HeaderCarrier would canonicalise the key.
func TestHeaderCarrierKeepsCase(t *testing.T) {
	h := natspub.HeaderCarrier{}
	prop := propagation.TraceContext{}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, TraceFlags: trace.FlagsSampled})
	prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	if _, ok := h[natspub.HeaderTraceParent]; !ok || len(h.Keys()) != 1 {
		t.Fatalf("headers %v, want exactly %q", h, natspub.HeaderTraceParent)
	}
	got := trace.SpanContextFromContext(prop.Extract(context.Background(), h))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("extracted %v, want %v", got, sc)
	}
}
