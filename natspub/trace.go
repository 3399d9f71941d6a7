package natspub

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// W3C Trace Context headers: the context of the batch that published a
// message, for consumers that continue its trace (see "Tracing" in the
// package documentation).
const (
	headerTraceParent = "traceparent"
	headerTraceState  = "tracestate"
)

// tracerName is the instrumentation scope of the Publisher's spans.
const tracerName = "github.com/graphhook/graphhook/natspub"

// spanPublish is the name of the span of one Deliver.
const spanPublish = "graphhook.publish"

// HeaderCarrier adapts a NATS message's headers to OpenTelemetry's
// [propagation.TextMapCarrier], so that a consumer continues the trace of
// the batch that published the message:
//
//	ctx = propagation.TraceContext{}.Extract(ctx, natspub.HeaderCarrier(msg.Headers()))
//	ctx, span := tracer.Start(ctx, "process", trace.WithSpanKind(trace.SpanKindConsumer))
//
// NATS headers are case-sensitive, unlike HTTP's: propagation.HeaderCarrier
// would look for "Traceparent" and find nothing.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys returns the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// tracer starts the Publisher's spans; without a TracerProvider it starts
// none, at no cost.
type tracer struct {
	t    trace.Tracer // nil: no spans
	none trace.Span
}

func newTracer(tp trace.TracerProvider) tracer {
	t := tracer{none: noop.Span{}}
	// A no-op provider is no tracing, too: no spans, not even no-op ones.
	if _, isNoop := tp.(noop.TracerProvider); tp != nil && !isNoop {
		t.t = tp.Tracer(tracerName)
	}
	return t
}

// startPublish starts the span of one Deliver.
func (t tracer) startPublish(ctx context.Context, accepted, rejected int) (context.Context, trace.Span) {
	if t.t == nil {
		return ctx, t.none
	}
	return t.t.Start(ctx, spanPublish, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "send"),
		attribute.String("messaging.operation.name", "publish"),
		attribute.Int("graphhook.accepted", accepted),
		attribute.Int("graphhook.rejected", rejected),
	))
}

// endPublish records the outcome of a Deliver on its span and ends it.
func endPublish(span trace.Span, messages int, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("messaging.batch.message_count", messages))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceHeaders returns the W3C Trace Context headers of ctx's span, or
// nil when ctx carries none.
func traceHeaders(ctx context.Context) propagation.MapCarrier {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	h := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, h)
	return h
}
