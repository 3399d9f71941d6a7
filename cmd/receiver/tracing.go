package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// errTracingEnv reports an OTEL_* variable setupTracing cannot follow.
var errTracingEnv = errors.New("tracing")

// defaultServiceName is the service.name of the daemon's spans unless
// OTEL_SERVICE_NAME says otherwise.
const defaultServiceName = "graphhook-receiver"

// defaultOTLPEndpoint is the OTLP/HTTP endpoint of a collector on the same
// host, OpenTelemetry's default.
const defaultOTLPEndpoint = "http://localhost:4318"

// setupTracing returns the TracerProvider for receiver.Config and
// natspub.Config and the function that flushes and stops it, as the
// standard OpenTelemetry environment asks (read through getenv):
//
//   - Tracing is off unless OTEL_TRACES_EXPORTER is "otlp" or an OTLP
//     endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT, to which /v1/traces is
//     added, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as it is; default
//     http://localhost:4318). OTEL_TRACES_EXPORTER=none or
//     OTEL_SDK_DISABLED=true turn it off whatever else is set. Off, the
//     provider is a no-op one (the libraries then start no spans at all)
//     and the shutdown function does nothing.
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: http/protobuf (the default) or
//     http/json; gRPC is not built in.
//   - OTEL_EXPORTER_OTLP_[TRACES_]HEADERS (key=value pairs, comma
//     separated, values percent-encoded), _TIMEOUT (milliseconds, default
//     10000) and _COMPRESSION (gzip or none).
//   - OTEL_SERVICE_NAME (default graphhook-receiver), OTEL_RESOURCE_ATTRIBUTES,
//     OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default
//     parentbased_always_on).
//
// The exporter reads its TLS settings (OTEL_EXPORTER_OTLP_CERTIFICATE and
// friends) and the SDK its batching limits (OTEL_BSP_*) from the process
// environment itself. It never installs a global provider or propagator.
// Errors name the variable and say what it accepts, never its value, as a
// header may hold a credential.
func setupTracing(ctx context.Context, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	off := func() (trace.TracerProvider, func(context.Context) error, error) {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	// signal returns the traces-specific variable, or else the general one.
	signal := func(name string) (string, string) {
		if v := getenv("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
			return "OTEL_EXPORTER_OTLP_TRACES_" + name, v
		}
		return "OTEL_EXPORTER_OTLP_" + name, getenv("OTEL_EXPORTER_OTLP_" + name)
	}
	if disabled, _ := strconv.ParseBool(getenv("OTEL_SDK_DISABLED")); disabled {
		return off()
	}
	traceEndpoint, endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return off()
	case "":
		if traceEndpoint == "" && endpoint == "" {
			return off()
		}
	case "otlp":
	default:
		return nil, nil, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q is not supported: set otlp, or none to turn tracing off", errTracingEnv, exp)
	}

	target := traceEndpoint
	if target == "" {
		target = strings.TrimSuffix(cmp.Or(endpoint, defaultOTLPEndpoint), "/") + "/v1/traces"
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		name := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
		if traceEndpoint == "" {
			name = "OTEL_EXPORTER_OTLP_ENDPOINT"
		}
		return nil, nil, fmt.Errorf("%w: %s is not an http:// or https:// URL (example: http://localhost:4318)", errTracingEnv, name)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(target)}

	switch name, v := signal("PROTOCOL"); v {
	case "", "http/protobuf":
	case "http/json":
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	default:
		return nil, nil, fmt.Errorf("%w: %s=%q is not supported: set http/protobuf (a collector's port 4318) or http/json", errTracingEnv, name, v)
	}
	headers := map[string]string{}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if err := parsePairs(getenv(name), headers); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w (format: key1=value1,key2=value2, values percent-encoded)", errTracingEnv, name, err)
		}
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	if name, v := signal("TIMEOUT"); v != "" {
		ms, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s=%q is not a whole number of milliseconds (example: 10000)", errTracingEnv, name, v)
		}
		opts = append(opts, otlptracehttp.WithTimeout(time.Duration(ms)*time.Millisecond))
	}
	switch name, v := signal("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	default:
		return nil, nil, fmt.Errorf("%w: %s=%q is not supported: set gzip or none", errTracingEnv, name, v)
	}

	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, nil, err
	}
	attrs := map[string]string{}
	if err := parsePairs(getenv("OTEL_RESOURCE_ATTRIBUTES"), attrs); err != nil {
		return nil, nil, fmt.Errorf("%w: OTEL_RESOURCE_ATTRIBUTES: %w (format: key1=value1,key2=value2)", errTracingEnv, err)
	}
	attrs["service.name"] = cmp.Or(getenv("OTEL_SERVICE_NAME"), attrs["service.name"], defaultServiceName)
	if _, ok := attrs["service.version"]; !ok {
		attrs["service.version"] = version
	}
	kvs := make([]attribute.KeyValue, 0, len(attrs))
	for k, v := range attrs {
		kvs = append(kvs, attribute.String(k, v))
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(kvs...))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: resource: %w", errTracingEnv, err)
	}

	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: OTLP exporter: %w", errTracingEnv, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return tp, tp.Shutdown, nil
}

// samplerFromEnv is the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name; default parentbased_always_on.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		arg := getenv("OTEL_TRACES_SAMPLER_ARG")
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("%w: OTEL_TRACES_SAMPLER_ARG=%q is not a ratio from 0 to 1 (example: 0.25)", errTracingEnv, arg)
		}
		return r, nil
	}
	switch s := getenv("OTEL_TRACES_SAMPLER"); s {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if s == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, fmt.Errorf("%w: OTEL_TRACES_SAMPLER=%q is not supported: set always_on, always_off, traceidratio or their parentbased_ forms", errTracingEnv, s)
	}
}

// parsePairs adds the comma-separated key=value pairs of s to m, with
// percent-encoded values, as the OTLP headers and the resource attributes
// are written. Its errors name the entry by position, never its text.
func parsePairs(s string, m map[string]string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	for i, entry := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("entry %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("entry %d (%s) has a bad percent-encoding", i+1, k)
		}
		m[k] = dv
	}
	return nil
}

// traceLogHandler wraps h so that a line logged with the context of a
// traced batch (the receiver logs every request's line with it) carries
// trace_id and span_id, the keys an operator searches a trace by. Lines
// without a span are passed on unchanged.
func traceLogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, rec slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		rec = rec.Clone()
		rec.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
