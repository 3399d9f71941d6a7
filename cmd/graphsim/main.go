// Command graphsim runs a local Microsoft Graph change-notification
// simulator and drives it: serve, subscribe, change, lifecycle,
// deliveries, token and load. Run "graphsim help" for usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "graphsim:", err)
		}
		os.Exit(exitCode(err))
	}
}
