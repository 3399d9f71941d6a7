// Command loadbench is graphhook's load harness: it builds the daemon
// (cmd/receiver, pure Go and, when libssl-dev is installed, with
// -tags openssl), starts it on 127.0.0.1 with embedded JetStream, drives it
// with pre-generated Microsoft Graph notification bodies, and writes
// BENCHMARKS.md.
//
// Run it from the repository root, usually through scripts/load.sh:
//
//	scripts/load.sh                        # medians of 5 runs of 10 s per row
//	scripts/load.sh -runs 1 -duration 2s   # short mode: a quick check
//
// For every scenario (basic batch 1 and 100, rich RSA-2048 and RSA-4096
// batch 1 and 100, the validation handshake) and every run it measures, in
// the same run and one at a time on the same machine:
//
//   - the daemon, restarted for each run with a fresh data directory:
//     notifications/s (closed loop), p50/p99 latency, server CPU-seconds per
//     1,000 notifications (utime+stime of /proc/<pid>/stat) and peak RSS
//     (VmHWM of /proc/<pid>/status), and afterwards that every answered item
//     is in the JetStream stream and none was quarantined;
//   - a bare net/http baseline that only decodes the JSON and answers 202
//     (this binary with -bare, in its own process);
//   - for rich scenarios, the raw decrypt rate and CPU time per decrypt of
//     each RSA backend on every core (this binary with -raw-rsa, built with
//     the same backend);
//   - the p99 latency at half of each server's peak rate (open loop).
//
// It also sends the 1,000-change burst (10 concurrent batches of 100 rich
// RSA-2048 changes) to an idle daemon and counts 503 answers.
//
// The load client spends no CPU on RSA or JWT signing while measuring:
// rich items are encrypted and their validationToken signed before the
// first run; each request copies a pre-built body and writes a counter into
// its notification ids, so no item is deduplicated. Rich bodies cycle
// through twice as many distinct items as the receiver's cache of
// unwrapped keys holds, so every item costs an RSA operation. The client
// reports its own CPU time (getrusage), which it takes from the server's
// cores.
//
// -json keeps every run's numbers; -from-json renders BENCHMARKS.md from
// them again without measuring.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	Runs        int
	Duration    time.Duration
	Warmup      time.Duration
	RawDuration time.Duration
	Concurrency int
	// BatchConcurrency is the closed-loop workers of batch-100 scenarios.
	BatchConcurrency int
	InFlight         int
	Scenarios        string
	OpenSSL          string
	Half             bool
	Burst            bool
	Out              string
	JSON             string
	Root             string
	Go               string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.Runs, "runs", 5, "runs per row; the report gives medians (fewer than 5 is short mode)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured window of each run")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured load before each run's window (capped at half of -duration)")
	fs.DurationVar(&o.RawDuration, "raw-duration", 3*time.Second, "how long each raw decrypt measurement runs (capped at -duration)")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "closed-loop workers (requests in flight) at peak load, batch-1 scenarios and the handshake")
	fs.IntVar(&o.BatchConcurrency, "batch-concurrency", 4, "closed-loop workers at peak load, batch-100 scenarios (4 batches of 100 rich RSA-4096 items are about 1 s of RSA on 2 cores)")
	fs.IntVar(&o.InFlight, "inflight", 64, "most requests in flight in the open-loop (half of peak) runs")
	fs.StringVar(&o.Scenarios, "scenarios", "all", "comma-separated scenarios to run: "+scenarioNames())
	fs.StringVar(&o.OpenSSL, "openssl", "auto", "also measure the -tags openssl build: auto (when it builds), on, off")
	fs.BoolVar(&o.Half, "half", true, "measure p99 at half of peak load")
	fs.BoolVar(&o.Burst, "burst", true, "send the 1,000-change burst")
	fs.StringVar(&o.Out, "out", "BENCHMARKS.md", "report file")
	fs.StringVar(&o.JSON, "json", "", "also write every run's measurements to this JSON file")
	fs.StringVar(&o.Root, "root", ".", "repository root (where go.mod is)")
	fs.StringVar(&o.Go, "go", "go", "go command used to build the binaries")
	bare := fs.Bool("bare", false, "serve the bare baseline on -listen (used by the harness itself)")
	listen := fs.String("listen", "127.0.0.1:0", "address for -bare")
	fromJSON := fs.String("from-json", "", "write -out from a file written by -json, without measuring")
	raw := fs.Bool("raw-rsa", false, "print the raw decrypt rate of -key as JSON (used by the harness itself)")
	key := fs.String("key", "", "PEM key file for -raw-rsa")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; flags only (see -help)", fs.Args())
	}
	switch {
	case *bare:
		return serveBare(ctx, *listen)
	case *fromJSON != "":
		b, err := os.ReadFile(*fromJSON)
		if err != nil {
			return err
		}
		var rep report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", *fromJSON, err)
		}
		return writeReportFile(o.Out, &rep, stderr)
	case *raw:
		if *key == "" {
			return errors.New("-raw-rsa needs -key FILE")
		}
		r, err := rawDecryptRate(ctx, *key, o.Duration)
		if err != nil {
			return err
		}
		return printRaw(stdout, r)
	}
	if o.Runs < 1 || o.Duration <= 0 || o.Concurrency < 1 || o.BatchConcurrency < 1 || o.InFlight < 1 {
		return errors.New("-runs, -duration, -concurrency, -batch-concurrency and -inflight must be positive")
	}
	switch o.OpenSSL {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("-openssl %q: use auto, on or off", o.OpenSSL)
	}
	o.Warmup = min(o.Warmup, o.Duration/2)
	o.RawDuration = min(o.RawDuration, o.Duration)
	scs, err := selectScenarios(o.Scenarios)
	if err != nil {
		return err
	}
	h, err := newHarness(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer h.close()
	rep, runErr := h.runAll(ctx, scs)
	if runErr != nil && len(rep.Rows) == 0 {
		return runErr
	}
	if err := writeReportFile(o.Out, rep, stderr); err != nil {
		return errors.Join(runErr, err)
	}
	if n := rep.failedChecks(); n > 0 {
		fmt.Fprintf(stderr, "WARNING: %d run(s) failed their check; see the stream columns of %s and the CHECK FAILED lines above\n", n, o.Out)
	}
	if o.JSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return errors.Join(runErr, err)
		}
		if err := os.WriteFile(o.JSON, append(b, '\n'), 0o644); err != nil {
			return errors.Join(runErr, err)
		}
		fmt.Fprintf(stderr, "wrote %s\n", o.JSON)
	}
	if runErr != nil {
		return fmt.Errorf("stopped early, %s has the runs so far: %w", o.Out, runErr)
	}
	return nil
}

// writeReportFile writes rep as Markdown to path.
func writeReportFile(path string, rep *report, log io.Writer) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeReport(f, rep); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(log, "wrote %s\n", path)
	return nil
}
