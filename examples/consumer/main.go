// Command consumer reads graphhook's events from JetStream with a durable
// consumer and prints them, one event per line followed by its JSON body.
//
// Events are published on
//
//	graph.notifications.<tenantId>.<subscriptionId>.<changeType>
//	graph.lifecycle.<tenantId>.<subscriptionId>.<lifecycleEvent>
//
// so a subject filter selects what a consumer gets:
//
//	consumer                                                  # everything in the GRAPH stream
//	consumer --filter 'graph.notifications.<tenantId>.>'      # one tenant's change notifications
//	consumer --filter 'graph.notifications.*.*.created'       # one change type, every tenant
//	consumer --filter 'graph.lifecycle.>'                     # lifecycle events only
//
// --filter may be repeated. A tenant or subscription id that contains
// characters not allowed in a subject token is escaped as natspub.SubjectToken
// describes; Graph's GUIDs are used as they are.
//
// The consumer is durable (--durable, default "graphhook-consumer"): stop
// and restart it and it continues where it left off, because each event is
// acknowledged after it is printed.
//
// With the receiver's embedded NATS server, NATS_URL must carry the
// server's token, which is in <data-dir>/nats-token (./data by default):
// from the receiver's directory,
//
//	export NATS_URL="nats://$(cat data/nats-token)@127.0.0.1:4222"
//
// Changing the filters of an existing durable consumer updates it. Use
// --count to stop after n events.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// NATS_URL, as the nats CLI reads it, keeps a token off the command
	// line (where ps shows it); an explicit --nats-url still wins.
	args := os.Args[1:]
	if u := os.Getenv("NATS_URL"); u != "" {
		args = append([]string{"--nats-url", u}, args...)
	}
	if err := run(ctx, args, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.SetOutput(stdout)
	url := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated (default $NATS_URL when set)")
	creds := fs.String("creds", "", "NATS credentials file")
	stream := fs.String("stream", natspub.DefaultStream, "stream to read")
	durable := fs.String("durable", "graphhook-consumer", "durable consumer name")
	count := fs.Int("count", 0, "stop after this many events (0: run until interrupted)")
	var filters []string
	fs.Func("filter", "subject filter, e.g. graph.lifecycle.> (repeatable; default: the whole stream)", func(s string) error {
		if strings.TrimSpace(s) == "" {
			return errors.New("empty filter")
		}
		filters = append(filters, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}

	nc, err := connect(*url, *creds, "graphhook-consumer")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, *stream, jetstream.ConsumerConfig{
		Durable:        *durable,
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", *durable, *stream, err)
	}
	// One pull per event keeps the example simple and never holds events
	// it will not print (a stream of high volume would use cons.Messages).
	for n := 0; *count == 0 || n < *count; n++ {
		msg, err := nextMsg(ctx, cons)
		if err != nil {
			return err
		}
		h := msg.Headers()
		fmt.Fprintf(stdout, "%s %s %s %s\n%s\n", h.Get(natspub.HeaderTime), h.Get(natspub.HeaderType), h.Get(natspub.HeaderSubject), msg.Subject(), msg.Data())
		if err := msg.DoubleAck(ctx); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	return nil
}

// nextMsg waits for the next event until ctx ends.
func nextMsg(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	for {
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(wait))
		cancel()
		switch {
		case err == nil:
			return msg, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, jetstream.ErrNoMessages):
			continue // nothing new yet: pull again
		default:
			return nil, err
		}
	}
}

// connect connects to the NATS server(s) at url. The receiver's embedded
// server admits only clients that present its token, so a refusal says
// where the token is.
func connect(url, creds, name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("NATS at %s refused the connection: %w; the receiver's embedded server needs its token, "+
			"which is in <data-dir>/nats-token (./data/nats-token by default): "+
			`export NATS_URL="nats://$(cat data/nats-token)@127.0.0.1:4222", run from the receiver's directory`, redact(url), err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact(url), err)
	}
	return nc, nil
}

// redact removes the credentials from a NATS URL (list).
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if s := strings.Index(u, "://"); s >= 0 && s < at {
				parts[i] = u[:s+3] + "REDACTED" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
