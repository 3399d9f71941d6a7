// Command nethttp embeds a graphhook receiver in a plain net/http server.
//
//	GRAPH_CLIENT_STATE=secretClientValue go run ./examples/nethttp -listen 127.0.0.1:8080
//
// The receiver answers Graph's validation handshake, checks every item's
// clientState, and calls the callbacks below for accepted change and
// lifecycle notifications before answering 202. Forged items go to
// OnRejected and never to OnChange.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/graphhook/graphhook/receiver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "nethttp:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. When ready is not nil it receives the address
// the server listens on.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("nethttp", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	clientState := getenv("GRAPH_CLIENT_STATE")
	if clientState == "" {
		return errors.New("set GRAPH_CLIENT_STATE to the clientState of your subscriptions")
	}

	r, err := receiver.New(receiver.Config{
		ClientStates: []string{clientState},
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Sink: receiver.Callbacks{
			OnChange: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
				fmt.Fprintf(stdout, "change %s %s\n", n.ChangeType, n.Resource)
				return nil
			},
			OnLifecycle: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
				// reauthorizationRequired: renew the subscription (PATCH);
				// subscriptionRemoved: recreate it; missed: resync with delta.
				fmt.Fprintf(stdout, "lifecycle %s %s\n", n.LifecycleEvent, n.SubscriptionID)
				return nil
			},
			OnRejected: func(ctx context.Context, rj *receiver.Rejected, q url.Values) error {
				fmt.Fprintf(stdout, "rejected %s\n", rj.Reason)
				return nil
			},
		},
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/notifications", r)
	mux.Handle("/lifecycle", r)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
