package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/subscriptions"
)

// cliNATSTimeout bounds how long the subscriptions command waits for NATS.
const cliNATSTimeout = 10 * time.Second

const subscriptionsUsage = `usage: receiver subscriptions list|create|renew [ID]|delete ID|rotate-cert|retry [--json] [settings]

Runs one step of the subscription manager with the daemon's settings
(--config with its subscriptions section, --nats-url, ...), then prints the
managed subscriptions (a table, or JSON with --json; clientStates are never
shown). list reads the shared bucket; the other commands call Graph and
need the renewal lease, which a running daemon holds: they then stop with
a message saying what to do. Without --nats-url they use the daemon's
embedded NATS server, or, when no daemon runs, its store in --data-dir.`

// subscriptionsCmd implements "receiver subscriptions ...".
func subscriptionsCmd(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, subscriptionsUsage)
		return nil
	}
	verb, rest := args[0], args[1:]
	id := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	asJSON := slices.Contains(rest, "--json")
	rest = slices.DeleteFunc(rest, func(a string) bool { return a == "--json" })
	switch {
	case !slices.Contains([]string{"list", "create", "renew", "delete", "rotate-cert", "retry"}, verb):
		return fmt.Errorf("%w: subscriptions: unknown command %q (example: receiver subscriptions list --config receiver.yaml)", errUsage, verb)
	case verb == "delete" && id == "":
		return fmt.Errorf("%w: subscriptions delete needs the subscription id (example: receiver subscriptions delete 7f3c... --config receiver.yaml)", errUsage)
	case id != "" && verb != "delete" && verb != "renew":
		return fmt.Errorf("%w: subscriptions %s takes no id (example: receiver subscriptions %s --config receiver.yaml)", errUsage, verb, verb)
	}

	c, err := loadConfig(rest, lookupEnv)
	if errors.Is(err, errHelp) {
		fmt.Fprintln(stdout, subscriptionsUsage)
		return nil
	}
	if err != nil {
		return err
	}
	if ps := c.validate(); len(ps) > 0 {
		return ps.err()
	}
	if c.Subscriptions == nil {
		return &problem{setting: "--config", msg: "has no subscriptions section, so there is nothing to manage (example: see \"Keeping subscriptions alive\" in the README)"}
	}
	level := slog.LevelWarn
	if l, ok := parseLevel(c.LogLevel); ok && l < slog.LevelInfo {
		level = l
	}
	d := &daemon{cfg: c, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}
	var ps problems
	d.sec, ps = c.loadSecrets()
	if len(ps) == 0 {
		d.subs, ps = c.loadSubs(lookupEnv, d.sec.keys)
	}
	if len(ps) > 0 {
		return ps.err()
	}
	urls := c.NATSURLs
	if len(urls) == 0 {
		// The embedded server runs inside the daemon: reach it there or,
		// when no daemon runs, open its store with a server of our own.
		if _, port, _ := net.SplitHostPort(c.EmbeddedNATSListen); port == "0" {
			return &problem{setting: c.where("embedded-nats-listen"), msg: "picks a free port at each start, so this command cannot tell whether the daemon's embedded NATS server runs (example: --embedded-nats-listen 127.0.0.1:4222, or --nats-url)"}
		}
		urls = []string{"nats://" + c.EmbeddedNATSListen}
		if conn, err := net.DialTimeout("tcp", c.EmbeddedNATSListen, time.Second); err == nil {
			conn.Close()
		} else {
			fmt.Fprintf(stderr, "receiver: no daemon listens on %s; opening the embedded server's store in %s for this command\n", c.EmbeddedNATSListen, c.DataDir)
			c.EmbeddedNATSListen = "127.0.0.1:0"
			if err := d.startEmbeddedNATS(); err != nil {
				return err
			}
			defer func() { d.ns.Shutdown(); d.ns.WaitForShutdown() }()
			urls = []string{d.ns.ClientURL()}
		}
	}
	if err := d.dialNATS(ctx, urls, cliNATSTimeout, "graphhook-subscriptions-cli"); err != nil {
		return err
	}
	defer d.nc.Close()
	js, err := jetstream.New(d.nc)
	if err != nil {
		return err
	}
	mgr, err := d.newManager(ctx, js, true)
	if err != nil {
		return err
	}
	defer mgr.Close() // releases the lease, so a daemon takes over at once

	switch verb {
	case "create":
		err = mgr.Reconcile(ctx)
	case "renew":
		err = mgr.RenewNow(ctx, id)
	case "delete":
		err = mgr.Delete(ctx, id)
	case "rotate-cert":
		if d.subs.key == nil {
			return &problem{setting: c.where("key"), msg: "rotate-cert moves rich subscriptions to the --key whose certificate is newest, but no --key with a certificate is set (example: --key new.pem,id=key-2 --key old.pem,id=key-1; make one with: " + exampleKeygen + ")"}
		}
		err = mgr.RotateKey(ctx, *d.subs.key)
	case "retry":
		err = mgr.Retry(ctx)
	}
	if err == nil && verb != "list" && !mgr.Holder() {
		err = subscriptions.ErrNotHolder // Reconcile returns nil without the lease
	}
	if errors.Is(err, subscriptions.ErrNotHolder) {
		return fmt.Errorf("subscriptions %s: another replica (a running daemon) holds the renewal lease, so this command did nothing. The daemon does the same on its own: it creates what is missing and renews what is due at every pass, and rotates to the newest --key when it restarts with it. To act now, stop every daemon on this bucket and run the command again (the lease is free at once after a clean stop, else after the lease TTL); then start the daemons again", verb)
	}
	if err != nil {
		return fmt.Errorf("subscriptions %s: %w", verb, err)
	}
	return writeRecords(stdout, mgr.Records(), asJSON, time.Now())
}

// writeRecords prints the managed subscriptions without their
// clientStates: a table, or a JSON array.
func writeRecords(w io.Writer, recs []subscriptions.Record, asJSON bool, now time.Time) error {
	for i := range recs {
		recs[i] = recs[i].Redacted()
	}
	slices.SortFunc(recs, func(a, b subscriptions.Record) int { return strings.Compare(a.Resource+a.ID, b.Resource+b.ID) })
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRESOURCE\tCHANGE TYPES\tEXPIRES IN\tLAST RENEWAL\tOUTCOME\tCERTIFICATE\tOWNER")
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	}
	for _, r := range recs {
		exp := "-"
		if !r.Expiration.IsZero() {
			exp = r.Expiration.Sub(now).Round(time.Second).String()
		}
		outcome := r.LastOutcome
		if r.Permanent {
			outcome += " (permanent: fix, then retry)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.ID), r.Resource, r.ChangeType, exp, ago(r.LastRenewal), dash(outcome), dash(r.CertificateID), dash(r.Owner))
	}
	return tw.Flush()
}

// dash returns s, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
