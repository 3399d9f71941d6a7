package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/doctor"
	"github.com/graphhook/graphhook/status"
)

// statusSnapshot gathers what /status and /status.json show: readiness,
// the endpoint's standing with Graph, the streams and the quarantine.
func (d *daemon) statusSnapshot(ctx context.Context) (*status.Snapshot, error) {
	c := d.cfg
	snap := &status.Snapshot{GeneratedAt: time.Now()}
	checks, ready, _ := d.readiness(ctx)
	snap.Ready = ready
	if !ready {
		var why []string
		for name, v := range checks {
			if v != "ok" {
				why = append(why, name+": "+v)
			}
		}
		snap.Degraded = strings.Join(why, "; ")
	}
	if d.standing != nil {
		st := d.standing.Snapshot()
		if ep, ok := st.Endpoint("notifications"); ok {
			snap.Standing = &status.Standing{State: string(ep.State), SlowRatio: ep.SlowRatio, FailureRatio: ep.FailedRatio,
				Requests: ep.Responses, Window: time.Duration(st.WindowSeconds * float64(time.Second))}
		}
	}
	js, err := jetstream.New(d.nc)
	if err != nil {
		return nil, err
	}
	if d.mgr != nil {
		snap.Subscriptions = d.subscriptionStatus(ctx, js)
	}
	err = status.JetStream{JS: js, Streams: []string{c.Stream}, Quarantine: []string{c.QuarantineStream, c.UnverifiedStream}}.Fill(ctx, snap)
	return snap, err
}

// doctorCmd implements "receiver doctor": it checks the public endpoint
// the way Graph reaches it and prints a checklist with the fix for each
// failure, as each check ends.
func doctorCmd(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	fs := flag.NewFlagSet("receiver doctor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg doctor.Config
	fs.StringVar(&cfg.URL, "url", "", "the notificationUrl exactly as given to Graph (required)")
	fs.StringVar(&cfg.LifecycleURL, "lifecycle-url", "", "the lifecycleNotificationUrl, if the subscriptions have one")
	caFile := fs.String("ca-file", "", "PEM file of the roots to trust instead of the system's")
	bodyLimit := fs.String("max-body-bytes", "4MiB", "the receiver's --max-body-bytes: a body this large must be accepted")
	natsURL := fs.String("nats-url", "", "the receiver's NATS server, to check that a forged notification is not published (token from GRAPHHOOK_NATS_TOKEN)")
	natsCreds := fs.String("nats-creds", "", "NATS credentials file for --nats-url")
	fs.StringVar(&cfg.SubjectPrefix, "subject-prefix", "graph", "the receiver's --subject-prefix")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "budget of a handshake (Graph's)")
	fs.DurationVar(&cfg.DeliveryTimeout, "delivery-timeout", 3*time.Second, "budget of a notification (Graph's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: receiver doctor --url https://HOST/notifications [--lifecycle-url URL] [--ca-file PEM] [--max-body-bytes 4MiB] [--nats-url URL]")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w: doctor: %v", errUsage, err) // the standard flag package's own words
	}
	if cfg.URL == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: doctor needs --url and no other argument (example: receiver doctor --url https://hooks.example.com/notifications)", errUsage)
	}
	n, err := parseBytes(*bodyLimit)
	if err != nil {
		return &problem{setting: "--max-body-bytes", msg: fmt.Sprintf("%q is not a positive size (example: --max-body-bytes 4MiB)", *bodyLimit)}
	}
	cfg.MaxBodyBytes = n
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		cfg.RootCAs = x509.NewCertPool()
		if err != nil || !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return &problem{setting: "--ca-file", err: err, msg: fmt.Sprintf("%s holds no PEM certificate (example: --ca-file /etc/ssl/certs/my-ca.pem)", *caFile)}
		}
	}
	if *natsURL != "" {
		tok, _ := lookupEnv(envPrefix + "NATS_TOKEN")
		nc, err := connectNATS(natsConnConfig{URLs: []string{*natsURL}, CredsFile: *natsCreds, Token: tok, Name: "graphhook-doctor"})
		if err != nil {
			return &problem{setting: "--nats-url", err: err, msg: fmt.Sprintf("cannot connect: %v (example: --nats-url nats://127.0.0.1:4222)", err)}
		}
		defer nc.Close()
		cfg.NATS = nc
	}
	fmt.Fprintf(stdout, "graphhook doctor: %s\n", cfg.URL)
	cfg.Progress = func(c doctor.Check) { _ = c.WriteLine(stdout) }
	rep, err := doctor.Run(ctx, cfg)
	if err != nil {
		if e, ok := errors.AsType[*doctor.ConfigError](err); ok {
			flagName := map[string]string{"URL": "--url", "LifecycleURL": "--lifecycle-url", "HandshakeTimeout": "--handshake-timeout", "DeliveryTimeout": "--delivery-timeout"}[e.Field]
			return &problem{setting: flagName, err: err, msg: e.Err.Error() + " (example: --url https://hooks.example.com/notifications)"}
		}
		return err
	}
	_ = rep.WriteSummary(stdout)
	if !rep.OK() {
		return fmt.Errorf("doctor: %d checks failed; apply the fixes above and run it again", len(rep.Failed()))
	}
	return nil
}
