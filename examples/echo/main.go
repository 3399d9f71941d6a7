// Command echo mounts graphhook's endpoints on an existing Echo application,
// next to the application's own routes and middleware.
//
//	GRAPH_CLIENT_STATE=secretClientValue go run ./examples/echo -listen 127.0.0.1:8080
//
// Graph's handshake requests are anonymous: mount the endpoints outside any
// authentication middleware the rest of the app uses (here the /api group).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/graphhook/graphhook/handlers"
	"github.com/graphhook/graphhook/receiver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	clientState := getenv("GRAPH_CLIENT_STATE")
	if clientState == "" {
		return errors.New("set GRAPH_CLIENT_STATE to the clientState of your subscriptions")
	}

	// The existing application.
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	api := e.Group("/api", middleware.KeyAuth(func(key string, c echo.Context) (bool, error) {
		return key == getenv("API_KEY") && key != "", nil
	}))
	api.GET("/status", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })

	// graphhook, mounted beside it.
	r, err := receiver.New(receiver.Config{
		ClientStates: []string{clientState},
		Sink: receiver.Callbacks{
			OnChange: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
				fmt.Fprintf(stdout, "change %s %s\n", n.ChangeType, n.Resource)
				return nil
			},
			OnLifecycle: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
				fmt.Fprintf(stdout, "lifecycle %s %s\n", n.LifecycleEvent, n.SubscriptionID)
				return nil
			},
		},
	})
	if err != nil {
		return err
	}
	handlers.Register(e, r, handlers.Config{NotificationPath: "/graph/notifications", LifecyclePath: "/graph/lifecycle"})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
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
