// Command replay sends quarantined notifications through a receiver again,
// after the configuration that rejected them has been fixed (a rotated
// clientState added, a missing decryption key installed, the app id for
// token validation corrected).
//
// graphhook publishes every rejected item, byte for byte as Graph sent it,
// to the quarantine stream (GRAPH_REJECTED) on
//
//	graph.rejected.<reason>.<tenantId>
//
// with the reason, the error and the batch's validationTokens in headers.
// replay reads the items of one reason (or all), rebuilds
// changeNotificationCollection bodies
//
//	{"value":[<raw item>, ...], "validationTokens":[...]}
//
// grouping items that arrived with the same validationTokens, and POSTs
// them to the receiver's notification URL, as Graph would:
//
//	replay --url https://hooks.example.com/graph/notify --reason decrypt
//	replay --url http://127.0.0.1:8080/notify --reason client_state --tenant 84bd8158-6d4d-4958-8b9f-9d6445542f95
//
// Reasons are malformed, client_state, token_invalid, token_missing and
// decrypt. The receiver checks every item again: items it now accepts are
// published as events (exactly once, thanks to the stream's
// deduplication); items it still rejects stay quarantined (the copy is
// deduplicated against the original). replay never deletes from the
// quarantine stream; items age out after its max age (24 h by default).
//
// Note that Graph's validationTokens expire about an hour after they were
// issued: rich items quarantined longer ago are rejected again as
// token_invalid by a receiver that validates tokens.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stdout)
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	creds := fs.String("creds", "", "NATS credentials file")
	stream := fs.String("stream", natspub.DefaultQuarantineStream, "quarantine stream")
	prefix := fs.String("prefix", natspub.DefaultSubjectPrefix, "subject prefix")
	reason := fs.String("reason", "", "replay only items rejected for this reason (default: all)")
	tenant := fs.String("tenant", "", "replay only items of this tenant id (default: all)")
	target := fs.String("url", "", "the receiver's notification URL to POST to (required)")
	batchSize := fs.Int("batch", 100, "most items per POST")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		return errors.New("--url is required")
	}
	if *batchSize < 1 {
		return errors.New("--batch must be at least 1")
	}
	filter := *prefix + ".rejected."
	if *reason != "" {
		filter += natspub.Token(*reason) + "."
	} else {
		filter += "*."
	}
	if *tenant != "" {
		filter += natspub.Token(*tenant)
	} else {
		filter += ">"
	}

	nc, err := natspub.Connect(natspub.ConnConfig{URLs: []string{*natsURL}, CredsFile: *creds, Name: "graphhook-replay"})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// An ephemeral consumer: reading leaves the quarantine as it is.
	cons, err := js.CreateConsumer(ctx, *stream, jetstream.ConsumerConfig{
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("read stream %s: %w", *stream, err)
	}
	defer js.DeleteConsumer(context.WithoutCancel(ctx), *stream, cons.CachedInfo().Name)
	pending := int(cons.CachedInfo().NumPending)

	client := &http.Client{Timeout: 10 * time.Second}
	var items []json.RawMessage
	var tokens []string
	posts, sent := 0, 0
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		coll := map[string]any{"value": items}
		if len(tokens) > 0 {
			coll["validationTokens"] = tokens
		}
		if err := post(ctx, client, *target, coll); err != nil {
			return fmt.Errorf("after %d items: %w", sent, err)
		}
		posts++
		sent += len(items)
		items = items[:0]
		return nil
	}
	for read := 0; read < pending; {
		batch, err := cons.Fetch(min(*batchSize, pending-read), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			t := m.Headers().Values(natspub.HeaderValidationToken)
			if len(items) == *batchSize || len(items) > 0 && !slices.Equal(t, tokens) {
				if err := flush(); err != nil {
					return err
				}
			}
			tokens = t
			items = append(items, json.RawMessage(m.Data()))
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == 0 {
			return fmt.Errorf("quarantine stream ended after %d of %d items", read, pending)
		}
		read += got
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %d items from %s (%s) in %d requests\n", sent, *stream, filter, posts)
	return nil
}

// post sends one changeNotificationCollection and requires a 2xx answer.
func post(ctx context.Context, client *http.Client, url string, coll any) error {
	body, err := json.Marshal(coll)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
