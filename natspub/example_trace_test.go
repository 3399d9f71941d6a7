package natspub_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
)

// ExampleHeaderCarrier traces a batch from the receiver to a consumer: the
// receiver and the Publisher share a TracerProvider (here with an
// in-memory recorder; a daemon uses an OTLP exporter), and the consumer
// continues the trace from the message's traceparent header.
func ExampleHeaderCarrier() {
	ctx := context.Background()
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	defer tp.Shutdown(ctx)

	dir, err := os.MkdirTemp("", "graphhook-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: dir, Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	pub, err := natspub.New(ctx, natspub.Config{Conn: nc, TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	rcv, err := receiver.New(receiver.Config{Sink: pub, ClientStates: []string{"secretClientValue"}, TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	_, err = rcv.Receive(ctx, []byte(`{"value":[{"id":"AAA","subscriptionId":"c6126aa3-0ed8-412f-a988-71e6cee627c4",
		"clientState":"secretClientValue","changeType":"created","resource":"users/u1/messages/m1",
		"tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95"}]}`), nil)
	if err != nil {
		log.Fatal(err)
	}

	// The consumer, in another process.
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, natspub.DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	mctx := propagation.TraceContext{}.Extract(ctx, natspub.HeaderCarrier(msg.Headers()))
	_, span := tp.Tracer("consumer").Start(mctx, "process notification", trace.WithSpanKind(trace.SpanKindConsumer))
	span.End()

	// The spans, each with the name of its parent.
	names := map[trace.SpanID]string{{}: "(root)"}
	for _, s := range recorder.Ended() {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range recorder.Ended() {
		fmt.Printf("%s <- %s\n", s.Name(), names[s.Parent().SpanID()])
	}
	// Output:
	// graphhook.verify.client_state <- graphhook.receive
	// graphhook.publish <- graphhook.receive
	// graphhook.receive <- (root)
	// process notification <- graphhook.publish
}
