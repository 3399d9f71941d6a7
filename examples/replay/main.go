// Command replay sends quarantined notifications through a receiver again,
// after the configuration that rejected them has been fixed (a rotated
// clientState added, a missing decryption key installed, the app id for
// token validation corrected).
//
// For every request, graphhook publishes the items it rejected to the
// quarantine stream (GRAPH_REJECTED), one message per reason, on
//
//	graph.rejected.<reason>.<tenantId>
//
// where tenantId is "_" when the items do not share one. Each message body
// is a changeNotificationCollection, the items byte for byte as Graph sent
// them with the request's validationTokens:
//
//	{"value":[<raw item>, ...], "validationTokens":[...]}
//
// replay reads the messages of one reason (or all) and POSTs each body to
// the receiver's notification URL, as Graph would:
//
//	replay --url https://hooks.example.com/graph/notify --reason decrypt
//	replay --url http://127.0.0.1:8080/notify --reason client_state --tenant 84bd8158-6d4d-4958-8b9f-9d6445542f95
//
// Reasons are malformed, client_state, token_invalid, token_missing and
// decrypt. --tenant reads the messages of that tenant and those on "_",
// and from the latter POSTs only the items whose tenantId matches.
//
// The receiver checks every item again: items it now accepts are
// published as events (exactly once, thanks to the stream's
// deduplication); items it still rejects stay quarantined (a body POSTed
// unchanged and rejected again is deduplicated against the original).
// replay never deletes from the quarantine stream; messages age out after
// its max age (24 h by default).
//
// Graph's validationTokens carry their own expiry (exp); Microsoft documents
// no lifetime, and its examples show 8 to 24 hours. Rich items whose tokens
// have expired are rejected again as token_invalid by a receiver that
// validates tokens, so replay them soon after the fix.
//
// The bodies hold real clientStates and validationTokens, so replay never
// follows a redirect (a 3xx answer is an error: give the final URL), and
// it warns when --url is plain http to a host other than loopback.
//
// With the receiver's embedded NATS server, NATS_URL must carry the
// server's token, which is in <data-dir>/nats-token (./data by default):
// from the receiver's directory,
//
//	export NATS_URL="nats://$(cat data/nats-token)@127.0.0.1:4222"
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
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
	if err := run(ctx, args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stdout)
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated (default $NATS_URL when set)")
	creds := fs.String("creds", "", "NATS credentials file")
	stream := fs.String("stream", "", "quarantine stream (default: the one that holds --reason; without --reason "+natspub.DefaultQuarantineStream+" and "+natspub.DefaultUnverifiedStream+")")
	prefix := fs.String("prefix", natspub.DefaultSubjectPrefix, "subject prefix")
	reason := fs.String("reason", "", "replay only items rejected for this reason (default: all)")
	tenant := fs.String("tenant", "", "replay only items of this tenant id (default: all)")
	target := fs.String("url", "", "the receiver's notification URL to POST to (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		return errors.New("--url is required")
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL (example: --url https://hooks.example.com/notifications)", *target)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(stdout, "warning: --url is plain http to %s: the replayed bodies carry clientStates and validationTokens in clear; use https\n", u.Host)
	}
	filters := subjectFilters(*prefix, *reason, *tenant)

	nc, err := connect(*natsURL, *creds, "graphhook-replay")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// natspub keeps items that passed clientState and items anyone can
	// send in two streams; the server knows which holds a reason.
	streams := []string{*stream}
	switch {
	case *stream != "":
	case *reason == "":
		streams = []string{natspub.DefaultQuarantineStream, natspub.DefaultUnverifiedStream}
	default:
		name, err := js.StreamNameBySubject(ctx, filters[0])
		if err != nil {
			return fmt.Errorf("no stream holds %s (set --stream): %w", filters[0], err)
		}
		streams = []string{name}
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		// A redirect would send the secrets in the body to another URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, stream := range streams {
		sent, posts, err := replayStream(ctx, js, client, stream, filters, *tenant, *target)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d items from %s (%s) in %d requests\n", sent, stream, strings.Join(filters, ", "), posts)
	}
	return nil
}

// replayStream POSTs the quarantine messages of stream on filters to
// target.
func replayStream(ctx context.Context, js jetstream.JetStream, client *http.Client, stream string, filters []string, tenant, target string) (sent, posts int, err error) {
	// An ephemeral consumer: reading leaves the quarantine as it is.
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		FilterSubjects:    filters,
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer js.DeleteConsumer(context.WithoutCancel(ctx), stream, cons.CachedInfo().Name)
	pending := int(cons.CachedInfo().NumPending)

	for read := 0; read < pending; {
		batch, err := cons.Fetch(min(16, pending-read), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return sent, posts, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			body, n, err := replayBody(m, tenant)
			if err != nil {
				return sent, posts, fmt.Errorf("message %s: %w", m.Subject(), err)
			}
			if n == 0 {
				continue
			}
			if err := post(ctx, client, target, body); err != nil {
				return sent, posts, fmt.Errorf("after %d items: %w", sent, err)
			}
			posts++
			sent += n
		}
		if err := batch.Error(); err != nil {
			return sent, posts, err
		}
		if got == 0 {
			return sent, posts, fmt.Errorf("quarantine stream %s ended after %d of %d messages", stream, read, pending)
		}
		read += got
	}
	return sent, posts, nil
}

// subjectFilters returns the quarantine subjects to read. A tenant's items
// are on its own subject and, mixed with other tenants', on "_".
func subjectFilters(prefix, reason, tenant string) []string {
	base := prefix + ".rejected."
	if reason != "" {
		base += natspub.SubjectToken(reason) + "."
	} else {
		base += "*."
	}
	if tenant == "" {
		return []string{base + "*"}
	}
	filters := []string{base + natspub.SubjectToken(tenant)}
	if natspub.SubjectToken(tenant) != natspub.EmptySubjectToken {
		filters = append(filters, base+natspub.EmptySubjectToken)
	}
	return filters
}

// replayBody returns the body to POST for the quarantine message m and its
// number of items. With tenant set, the items of a message on "_" are
// narrowed to that tenant's; a body with no item left has n == 0. A body
// POSTed unchanged is deduplicated by the quarantine stream if it is
// rejected again.
func replayBody(m jetstream.Msg, tenant string) (body []byte, n int, err error) {
	data := m.Data()
	if m.Headers().Get(natspub.HeaderItems) == "" {
		// Written before quarantine messages held collections: one raw
		// item, the batch's tokens in headers.
		data = collection([]json.RawMessage{m.Data()}, m.Headers().Values(legacyTokenHeader))
	}
	c, err := receiver.Parse(data)
	if err != nil {
		return nil, 0, fmt.Errorf("not a changeNotificationCollection: %w", err)
	}
	tok := m.Subject()[strings.LastIndexByte(m.Subject(), '.')+1:]
	if tenant == "" || tok != natspub.EmptySubjectToken || natspub.SubjectToken(tenant) == natspub.EmptySubjectToken {
		return data, len(c.Value), nil
	}
	var items []json.RawMessage
	for _, it := range c.Value {
		if it.TenantID == tenant {
			items = append(items, it.Raw)
		}
	}
	if len(items) == len(c.Value) {
		return data, len(items), nil
	}
	if len(items) == 0 {
		return nil, 0, nil
	}
	return collection(items, c.ValidationTokens), len(items), nil
}

// legacyTokenHeader carried the validationTokens of a quarantined item
// before quarantine messages held whole collections.
const legacyTokenHeader = "graphhook-validation-token"

// collection returns {"value":[items...],"validationTokens":[tokens...]},
// each item's bytes unchanged, tokens only if there are any.
func collection(items []json.RawMessage, tokens []string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"value":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	if len(tokens) > 0 {
		tb, _ := json.Marshal(tokens) // strings always marshal
		b.WriteString(`,"validationTokens":`)
		b.Write(tb)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// post sends one changeNotificationCollection and requires a 2xx answer.
func post(ctx context.Context, client *http.Client, url string, body []byte) error {
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
	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("POST %s: %s: redirects are not followed, since the body holds clientStates and tokens; give the final URL with --url", url, resp.Status)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
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
