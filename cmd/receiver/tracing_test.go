package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/graphhook/graphhook/receiver"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupTracingIsOffUnlessAnExporterIsAsked(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		{"empty environment", nil},
		{"only a service name", map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}},
		{"SDK disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tp, shutdown, err := setupTracing(t.Context(), envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := tp.(noop.TracerProvider); !ok {
				t.Errorf("provider %T, want noop.TracerProvider", tp)
			}
			if err := shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

func TestSetupTracingNamesTheBadVariable(t *testing.T) {
	const credential = "Bearer%20hunter2"
	on := func(kv ...string) map[string]string {
		m := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name     string
		env      map[string]string
		wantName string // the variable the error names
	}{
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{"grpc", on("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"traces protocol wins", on("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"endpoint without scheme", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"traces endpoint not a URL", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "::"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"header without =", on("OTEL_EXPORTER_OTLP_HEADERS", "api-key="+credential+",broken"+credential), "OTEL_EXPORTER_OTLP_HEADERS"},
		{"header bad escape", on("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization="+credential+"%zz"), "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{"timeout", on("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"), "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"compression", on("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"), "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},
		{"sampler", on("OTEL_TRACES_SAMPLER", "sometimes"), "OTEL_TRACES_SAMPLER"},
		{"sampler ratio", on("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "2"), "OTEL_TRACES_SAMPLER_ARG"},
		{"resource attributes", on("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment"), "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := setupTracing(t.Context(), envOf(tt.env))
			if !errors.Is(err, errTracingEnv) {
				t.Fatalf("err = %v, want errTracingEnv", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantName) || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q: want it to name %s and never quote a header value", msg, tt.wantName)
			}
		})
	}
}

// collector is an OTLP/HTTP trace collector: it decodes every export
// request, protobuf or JSON, gzipped or not.
type collector struct {
	mu       sync.Mutex
	spans    []string          // span names
	traceIDs []string          // hex trace ids of the spans, in the same order
	resource map[string]string // string attributes of the last resource
	header   http.Header       // of the last request
	path     string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if r.Header.Get("Content-Type") == "application/json" {
		err = protojson.Unmarshal(b, &req)
	} else {
		err = proto.Unmarshal(b, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.header, c.path = r.Header.Clone(), r.URL.Path
	for _, rs := range req.GetResourceSpans() {
		c.resource = map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			c.resource[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
				c.traceIDs = append(c.traceIDs, hex.EncodeToString(s.GetTraceId()))
			}
		}
	}
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	if r.Header.Get("Content-Type") == "application/json" {
		resp = []byte("{}")
	}
	_, _ = w.Write(resp)
}

// TestSetupTracingExportsToOTLPCollector: with an OTLP endpoint in the
// environment, the receiver's spans reach a collector, with the headers,
// encoding, compression and service name the environment asks for.
func TestSetupTracingExportsToOTLPCollector(t *testing.T) {
	for _, tt := range []struct {
		name        string
		env         func(base string) map[string]string
		wantPath    string
		wantService string
		wantGzip    bool
		wantType    string
	}{
		{"endpoint", func(base string) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": base + "/", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20token-1"}
		}, "/v1/traces", "graphhook-receiver", false, "application/x-protobuf"},
		{"traces endpoint, json, gzip, service name", func(base string) map[string]string {
			return map[string]string{
				"OTEL_TRACES_EXPORTER":                  "otlp",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    base + "/otlp/traces",
				"OTEL_EXPORTER_OTLP_ENDPOINT":           "http://127.0.0.1:1", // the traces endpoint wins
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "authorization=Bearer%20token-1",
				"OTEL_EXPORTER_OTLP_PROTOCOL":           "http/json",
				"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
				"OTEL_SERVICE_NAME":                     "receiver-eu",
				"OTEL_RESOURCE_ATTRIBUTES":              "deployment.environment=prod,service.name=ignored",
			}
		}, "/otlp/traces", "receiver-eu", true, "application/json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			col := &collector{}
			srv := httptest.NewServer(col)
			t.Cleanup(srv.Close)
			tp, shutdown, err := setupTracing(t.Context(), envOf(tt.env(srv.URL)))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := tp.(noop.TracerProvider); ok {
				t.Fatal("tracing is off with an OTLP endpoint set")
			}
			r, err := receiver.New(receiver.Config{ClientStates: []string{"cs"}, TracerProvider: tp,
				Sink: receiver.SinkFunc(func(ctx context.Context, b *receiver.Batch) error { return nil })})
			if err != nil {
				t.Fatal(err)
			}
			body := `{"value":[{"subscriptionId":"s","clientState":"cs","changeType":"created","resource":"r","tenantId":"t"}]}`
			if _, err := r.Receive(t.Context(), []byte(body), url.Values{}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			testkit.CheckFor(t, 5*time.Second, func() error {
				col.mu.Lock()
				defer col.mu.Unlock()
				if !slices.Contains(col.spans, "graphhook.receive") || !slices.Contains(col.spans, "graphhook.verify.client_state") {
					return fmt.Errorf("collector has spans %v", col.spans)
				}
				return nil
			})
			col.mu.Lock()
			defer col.mu.Unlock()
			if col.path != tt.wantPath {
				t.Errorf("export went to %s, want %s", col.path, tt.wantPath)
			}
			if got := col.header.Get("Authorization"); got != "Bearer token-1" {
				t.Errorf("Authorization = %q, want the header from the environment", got)
			}
			if got := col.header.Get("Content-Encoding") == "gzip"; got != tt.wantGzip {
				t.Errorf("gzip = %v, want %v", got, tt.wantGzip)
			}
			if got := col.header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := col.resource["service.name"]; got != tt.wantService {
				t.Errorf("service.name = %q, want %q", got, tt.wantService)
			}
			if col.resource["service.version"] != version {
				t.Errorf("service.version = %q, want %q", col.resource["service.version"], version)
			}
		})
	}
}

// TestTraceLogHandlerAddsTheBatchTrace: the receiver's line for a traced
// batch carries its trace_id and span_id; without tracing it has neither.
func TestTraceLogHandlerAddsTheBatchTrace(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	for _, traced := range []bool{true, false} {
		sr.Reset()
		var out bytes.Buffer
		cfg := receiver.Config{ClientStates: []string{"cs"}, Logger: slog.New(traceLogHandler(slog.NewJSONHandler(&out, nil))).With("component", "receiver"),
			Sink: receiver.SinkFunc(func(ctx context.Context, b *receiver.Batch) error { return nil })}
		if traced {
			cfg.TracerProvider = tp
		}
		r, err := receiver.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		body := `{"value":[{"subscriptionId":"s","clientState":"cs","changeType":"created","resource":"r","tenantId":"t"}]}`
		if _, err := r.Receive(t.Context(), []byte(body), url.Values{}); err != nil {
			t.Fatal(err)
		}
		var line map[string]any
		if err := json.Unmarshal(out.Bytes(), &line); err != nil {
			t.Fatalf("log %q: %v", out.String(), err)
		}
		if line["component"] != "receiver" {
			t.Errorf("WithAttrs lost: %v", line)
		}
		if !traced {
			if _, ok := line["trace_id"]; ok {
				t.Errorf("untraced line has a trace_id: %v", line)
			}
			continue
		}
		spans := sr.Ended()
		batch := spans[len(spans)-1]
		if batch.Name() != "graphhook.receive" || line["trace_id"] != batch.SpanContext().TraceID().String() || line["span_id"] != batch.SpanContext().SpanID().String() {
			t.Errorf("line %v, want the trace and span of %s %v", line, batch.Name(), batch.SpanContext())
		}
	}
}

// TestRunTracesABatch: the daemon, with OTEL_EXPORTER_OTLP_ENDPOINT naming
// a collector, puts the batch's traceparent on the NATS message and, by
// the time run returns, has exported that trace's batch span.
func TestRunTracesABatch(t *testing.T) {
	const clientState = "a-long-enough-client-state-value"
	col := &collector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	p := startInProcess(t, baseArgs(dir, "--client-state", clientState), map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL})
	if !strings.Contains(p.stderr.String(), "tracing is on") {
		t.Errorf("the start does not say tracing is on:\n%s", p.stderr.String())
	}
	if status, err := post(t.Context(), http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "traced-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v, want 202", status, err)
	}
	js, err := jetstream.New(natstest.Connect(t, embeddedURL(t, p.nats, dir)))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), "GRAPH")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), "graph.notifications.>")
	if err != nil {
		t.Fatal(err)
	}
	tp := msg.Header.Get("traceparent")
	m := regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-01$`).FindStringSubmatch(tp)
	if m == nil {
		t.Fatalf("message traceparent %q, want a sampled W3C traceparent", tp)
	}
	// Stopping flushes the spans still batched in the SDK.
	if err := p.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for i, name := range col.spans {
		if name == "graphhook.receive" && col.traceIDs[i] == m[1] {
			return
		}
	}
	t.Errorf("collector has spans %v of traces %v, want graphhook.receive of trace %s", col.spans, col.traceIDs, m[1])
}

// TestRunLogsTracingFailures: with a collector that is not there, the
// daemon still answers 202, and the failed export is a Warn line of the
// daemon's logger that never quotes the exporter's header values.
func TestRunLogsTracingFailures(t *testing.T) {
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", clientState), map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + freeAddr(t),
		"OTEL_EXPORTER_OTLP_HEADERS":  "authorization=Bearer%20hunter2",
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "500",
	})
	if status, err := post(t.Context(), http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "untraced-1")); err != nil || status != http.StatusAccepted {
		t.Fatalf("batch: %d %v, want 202 whatever the collector does", status, err)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	logs := p.stderr.String()
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, "tracing") {
			t.Log(line)
		}
	}
	if !strings.Contains(logs, "level=WARN msg=\"tracing: ") {
		t.Errorf("no Warn line about the failed export:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") {
		t.Errorf("the logs quote an OTLP header value:\n%s", logs)
	}
}
