package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

// spanSink is a Sink that records the span context it was handed.
type spanSink struct {
	mu  sync.Mutex
	scs []trace.SpanContext
	err error
}

func (s *spanSink) Deliver(ctx context.Context, b *receiver.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scs = append(s.scs, trace.SpanContextFromContext(ctx))
	return s.err
}

func (s *spanSink) last() trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.scs) == 0 {
		return trace.SpanContext{}
	}
	return s.scs[len(s.scs)-1]
}

func newRecorder() (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	sr := tracetest.NewSpanRecorder()
	return sr, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func spanNamed(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no span %q among %v", name, spanNames(spans))
	return nil
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	return names
}

// wantInts checks integer attributes of s.
func wantInts(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]int64) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		if g, ok := got[attribute.Key(k)]; !ok || g.AsInt64() != v {
			t.Errorf("span %s: %s = %v, want %d", s.Name(), k, g.String(), v)
		}
	}
}

// TestTracingSpanPerBatch: with a TracerProvider, a rich batch gives one
// server span with a child span per verification step, all in one trace;
// the Sink is handed the batch span's context (so the publish continues
// the trace); the spans carry counts and the outcome, and none of the
// batch's secrets.
func TestTracingSpanPerBatch(t *testing.T) {
	key := testkit.DecryptKey(t, "cert-1")
	ring := testkit.KeyRing(t, key)
	sr, tp := newRecorder()
	sink := &spanSink{}
	srv, mint := verifiedServer(t, receiver.Config{ClientStates: []string{secret}, Sink: sink, Keys: ring, TracerProvider: tp})

	const content = `{"subject":"private words"}`
	tok := mint(tenant)
	items := []map[string]any{
		richItem(t, 0, key, content), // subscription 0
		richItem(t, 1, key, content), // subscription 1
		item(2, "forged", "updated"), // subscription 2, rejected
		item(4, secret, "deleted"),   // subscription 1
	}
	body := collectionWithToken(t, tok, items...)
	accept(t, srv.URL+"/notifications", body)

	spans := sr.Ended()
	if got, want := spanNames(spans), []string{"graphhook.verify.client_state", "graphhook.verify.tokens", "graphhook.decrypt", "graphhook.receive"}; !slices.Equal(got, want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	root := spanNamed(t, spans, "graphhook.receive")
	if root.Parent().IsValid() || root.SpanKind() != trace.SpanKindServer {
		t.Errorf("batch span: parent %v, kind %v; want a root server span", root.Parent(), root.SpanKind())
	}
	wantInts(t, root, map[string]int64{"graphhook.items": 4, "graphhook.subscriptions": 3, "graphhook.accepted": 3,
		"graphhook.rejected": 1, "graphhook.rejected.client_state": 1, "http.response.status_code": 202})
	if got := attrs(root)["graphhook.outcome"].AsString(); got != "accepted" {
		t.Errorf("outcome %q, want accepted", got)
	}
	if root.Status().Code != codes.Unset {
		t.Errorf("batch span status %v, want unset", root.Status())
	}
	for _, s := range spans[:3] {
		if s.Parent().SpanID() != root.SpanContext().SpanID() || s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %s is not a child of the batch span", s.Name())
		}
		if s.StartTime().Before(root.StartTime()) || s.EndTime().After(root.EndTime()) {
			t.Errorf("span %s is outside the batch span", s.Name())
		}
	}
	wantInts(t, spanNamed(t, spans, "graphhook.verify.client_state"), map[string]int64{"graphhook.items": 4, "graphhook.rejected": 1})
	wantInts(t, spanNamed(t, spans, "graphhook.verify.tokens"), map[string]int64{"graphhook.items": 3, "graphhook.tokens": 1, "graphhook.tenants": 1, "graphhook.rejected": 0})
	dec := spanNamed(t, spans, "graphhook.decrypt")
	wantInts(t, dec, map[string]int64{"graphhook.items": 2, "graphhook.cached": 0, "graphhook.rejected": 0})
	if !attrs(dec)["graphhook.admitted"].AsBool() {
		t.Error("decrypt span: admitted not true")
	}
	if sc := sink.last(); sc.SpanID() != root.SpanContext().SpanID() {
		t.Errorf("the Sink was handed span %v, want the batch span %v", sc.SpanID(), root.SpanContext().SpanID())
	}

	// The same batch again: its keys come from the cache.
	sr.Reset()
	accept(t, srv.URL+"/notifications", body)
	wantInts(t, spanNamed(t, sr.Ended(), "graphhook.decrypt"), map[string]int64{"graphhook.items": 2, "graphhook.cached": 2})
	spans = append(spans, sr.Ended()...)

	for _, s := range spans {
		text := fmt.Sprint(s.Name(), s.Attributes(), s.Status(), s.Events(), s.Links())
		for _, leak := range []string{secret, "forged", tok, "private words", tenant, subBase} {
			if strings.Contains(text, leak) {
				t.Errorf("span %s carries %q: %s", s.Name(), leak, text)
			}
		}
	}
}

// TestTracingOutcomes: a refused batch (also one refused before its body
// is read) is the caller's fault (status unset,
// as for an HTTP server span), a batch we cannot take now is our error; a
// basic batch has no token or decryption span.
func TestTracingOutcomes(t *testing.T) {
	for _, tt := range []struct {
		name        string
		contentType string
		body        []byte
		sinkErr     error
		wantStatus  int
		wantOutcome string
		wantCode    codes.Code
		wantSpans   []string
	}{
		{"basic", "application/json", collection(t, item(0, secret, "created")), nil, 202, "accepted", codes.Unset,
			[]string{"graphhook.verify.client_state", "graphhook.receive"}},
		{"malformed", "application/json", []byte(`{"value":`), nil, 400, "refused", codes.Unset,
			[]string{"graphhook.receive"}},
		{"not JSON", "text/plain", collection(t, item(0, secret, "created")), nil, 415, "refused", codes.Unset,
			[]string{"graphhook.receive"}},
		{"sink down", "application/json", collection(t, item(0, secret, "created")), errors.New("disk on fire"), 503, "unavailable", codes.Error,
			[]string{"graphhook.verify.client_state", "graphhook.receive"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sr, tp := newRecorder()
			srv, _ := serve(t, receiver.Config{ClientStates: []string{secret}, Sink: &spanSink{err: tt.sinkErr}, TracerProvider: tp})
			if resp, _ := post(t, srv.URL+"/notifications", tt.contentType, tt.body); resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			spans := sr.Ended()
			if got := spanNames(spans); !slices.Equal(got, tt.wantSpans) {
				t.Fatalf("spans %v, want %v", got, tt.wantSpans)
			}
			root := spanNamed(t, spans, "graphhook.receive")
			wantInts(t, root, map[string]int64{"http.response.status_code": int64(tt.wantStatus)})
			if got := attrs(root)["graphhook.outcome"].AsString(); got != tt.wantOutcome {
				t.Errorf("outcome %q, want %q", got, tt.wantOutcome)
			}
			if root.Status().Code != tt.wantCode {
				t.Errorf("status %v, want %v", root.Status(), tt.wantCode)
			}
		})
	}
}

// TestTracingOffStartsNoSpans: without a TracerProvider the Receiver
// (or with a no-op one) starts no span and leaves a caller's span alone (it never uses the
// global provider): the Sink sees the caller's span, which gets none of
// the Receiver's attributes. With one, the batch span is the caller's
// child, of kind internal.
func TestTracingOffStartsNoSpans(t *testing.T) {
	sr, tp := newRecorder()
	for _, p := range []trace.TracerProvider{nil, noop.NewTracerProvider(), tp} {
		traced := p == trace.TracerProvider(tp)
		sr.Reset()
		sink := &spanSink{}
		r, err := receiver.New(receiver.Config{ClientStates: []string{secret}, Sink: sink, TracerProvider: p})
		if err != nil {
			t.Fatal(err)
		}
		ctx, outer := tp.Tracer("test").Start(t.Context(), "outer")
		if _, err := r.Receive(ctx, collection(t, item(0, secret, "created")), url.Values{}); err != nil {
			t.Fatal(err)
		}
		outer.End()
		spans := sr.Ended()
		switch {
		case !traced && len(spans) != 1:
			t.Fatalf("off: spans %v, want only the caller's", spanNames(spans))
		case !traced && len(spans[0].Attributes()) != 0:
			t.Errorf("off: the caller's span got attributes %v", spans[0].Attributes())
		case !traced && sink.last().SpanID() != outer.SpanContext().SpanID():
			t.Errorf("off: the Sink saw span %v, want the caller's", sink.last().SpanID())
		case traced:
			root := spanNamed(t, spans, "graphhook.receive")
			if root.Parent().SpanID() != outer.SpanContext().SpanID() || root.SpanKind() != trace.SpanKindInternal {
				t.Errorf("on: batch span parent %v kind %v, want the caller's span and internal", root.Parent().SpanID(), root.SpanKind())
			}
		}
	}
}
