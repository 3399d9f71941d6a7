// Command receiver is graphhook's standalone daemon: it receives Microsoft
// Graph change notifications over HTTP(S), verifies them (clientState,
// validationTokens, encrypted content) and publishes them to NATS
// JetStream.
//
// With no flags it needs no other software: it serves
// http://localhost:8080/notifications and /lifecycle, runs an embedded NATS
// server with JetStream storing in ./data and listening for clients on
// 127.0.0.1:4222 (they authenticate with the token in ./data/nats-token),
// and prints how to consume the events.
//
// Settings come from flags, GRAPHHOOK_* environment variables and an
// optional YAML file (--config), under the same names; "receiver help
// config" prints them as a table. "receiver keygen" creates a key pair for
// rich notifications. A "subscriptions:" section in the file runs the
// subscription manager, which keeps the Graph subscriptions it declares
// alive; "receiver subscriptions ..." runs its steps by hand.
//
// Operations: /healthz, /readyz and /metrics (Prometheus), on --listen
// when it is a loopback address, else on 127.0.0.1:9091 unless
// --ops-listen says where. Memory is bounded by --max-inflight-bytes,
// --body-timeout and --max-connections (bodies up to 256 KiB keep up to a
// quarter of the in-flight budget). SIGINT or SIGTERM shut down
// gracefully (new connections are refused, open ones are answered with
// Connection: close for up to a second, in-flight requests and their
// publishes finish, NATS is drained, the embedded server stops last, the
// last trace spans are flushed); SIGHUP reloads the TLS certificate and
// the desired subscriptions.
//
// Tracing: with the standard OpenTelemetry environment asking for an
// exporter (OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_TRACES_EXPORTER=otlp),
// every batch is a span exported over OTLP/HTTP and every NATS message
// carries its traceparent; otherwise no spans are started.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/graphhook/graphhook/decrypt"
)

func main() {
	schedulerForOpenSSL()
	startHeapFloor(heapFloorBytes)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// exitCode prints err (one line per problem) and returns the process exit
// status: 0 for success, 2 for a command line that cannot be parsed, 1 for
// anything else.
func exitCode(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(os.Stderr, "receiver: "+indentLines(err.Error()))
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// schedulerForOpenSSL gives the Go scheduler one P more than cores in the
// OpenSSL build, unless GOMAXPROCS is set. Its RSA runs in C, and Go
// counts a goroutine in a C call against its P until the runtime's
// monitor takes the P back, so with RSA in C on every core the daemon's
// Go code (HTTP, JSON, NATS acknowledgements) waits for that, and cores
// idle. Load harness, RSA-2048 batches of 100: as is, the cores 1.86 busy
// and 2.47x the pure-Go build (medians of 5 runs); with one P more, 1.95
// busy and 2.57x (medians of 3). Setting it stops the runtime following a
// later change of the container's CPU limit; set GOMAXPROCS to choose.
func schedulerForOpenSSL() {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || decrypt.Backend != "openssl" {
		return
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
}
