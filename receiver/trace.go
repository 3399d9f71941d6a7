package receiver

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName is the instrumentation scope of the Receiver's spans.
const tracerName = "github.com/graphhook/graphhook/receiver"

// The names of the Receiver's spans (see "Tracing" in the package
// documentation): one per batch, with a child for each verification step
// the batch needs.
const (
	spanReceive     = "graphhook.receive"
	spanClientState = "graphhook.verify.client_state"
	spanTokens      = "graphhook.verify.tokens"
	spanDecrypt     = "graphhook.decrypt"
)

// Span attribute keys. The values are counts and outcomes only: a span
// never carries a clientState, a token, content or any string taken from
// the request.
const (
	attrSubscriptions = attribute.Key("graphhook.subscriptions") // distinct subscriptionIds in the batch
	attrItems         = attribute.Key("graphhook.items")         // items in the batch, or checked by the step
	attrAccepted      = attribute.Key("graphhook.accepted")      // items accepted (receive span)
	attrRejected      = attribute.Key("graphhook.rejected")      // items rejected (by the batch, or by the step)
	attrOutcome       = attribute.Key("graphhook.outcome")       // accepted, refused (4xx) or unavailable (503)
	attrLookup        = attribute.Key("graphhook.client_state.lookup")
	attrTokens        = attribute.Key("graphhook.tokens")   // validationTokens of the batch
	attrTenants       = attribute.Key("graphhook.tenants")  // distinct tenants the tokens must cover
	attrSkipped       = attribute.Key("graphhook.skipped")  // the step was switched off (Insecure...)
	attrCached        = attribute.Key("graphhook.cached")   // rich items whose unwrapped key was cached: no RSA
	attrAdmitted      = attribute.Key("graphhook.admitted") // the RSA work was admitted
	attrStatus        = attribute.Key("http.response.status_code")
	attrErrorType     = attribute.Key("error.type")
)

// tracer starts the Receiver's spans. Without a TracerProvider it starts
// none: start returns ctx unchanged and a span that records nothing, and
// costs no allocation.
type tracer struct {
	t    trace.Tracer // nil: no tracing
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

func (t tracer) start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t.t == nil {
		return ctx, t.none
	}
	return t.t.Start(ctx, name, trace.WithSpanKind(kind))
}

// receiveKind is the kind of the batch span: a server span, unless the
// caller (an HTTP middleware) already started one.
func receiveKind(ctx context.Context) trace.SpanKind {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return trace.SpanKindInternal
	}
	return trace.SpanKindServer
}

// batchAttrs records the size of a parsed batch on its span.
func batchAttrs(span trace.Span, coll *Collection) {
	if !span.IsRecording() {
		return
	}
	subs := make(map[string]struct{}, 1)
	for _, n := range coll.Value {
		subs[n.SubscriptionID] = struct{}{}
	}
	span.SetAttributes(attrItems.Int(len(coll.Value)), attrSubscriptions.Int(len(subs)))
}

// endReceive records the batch's outcome on its span and ends it.
func endReceive(span trace.Span, b *Batch, err error) {
	if !span.IsRecording() {
		return
	}
	if b != nil {
		span.SetAttributes(attrAccepted.Int(len(b.Notifications)), attrRejected.Int(len(b.Rejected)))
		var byReason [numReasons]int
		for _, rj := range b.Rejected {
			byReason[rj.Reason.index()]++
		}
		for i, n := range byReason {
			if n > 0 {
				span.SetAttributes(attribute.Int("graphhook.rejected."+string(reasons()[i]), n))
			}
		}
	}
	status := 202
	if err != nil {
		status = statusOf(err)
	}
	span.SetAttributes(attrStatus.Int(status))
	switch {
	case err == nil:
		span.SetAttributes(attrOutcome.String("accepted"))
	case status == 503:
		// Our own failure: the span is an error (the text never holds a
		// secret).
		span.SetAttributes(attrOutcome.String("unavailable"), attrErrorType.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, err.Error())
	default:
		// The caller's fault: a server span's status stays unset.
		span.SetAttributes(attrOutcome.String("refused"), attrErrorType.String(strconv.Itoa(status)))
	}
	span.End()
}

// endStep ends the span of a verification step that rejected rejected
// items, or failed with err (the batch is then answered 503).
func endStep(span trace.Span, rejected int, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrRejected.Int(rejected))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
