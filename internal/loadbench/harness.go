package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

// The values every generated notification and daemon share.
const (
	loadClientState = "loadbench-client-state"
	loadSubID       = "7e3f6a1c-5b2d-4c8e-9f10-2a3b4c5d6e7f"
)

// scenario is one row group of the report.
type scenario struct {
	Name  string // flag value
	Title string // in the report
	Kind  string // "basic", "rich" or "handshake"
	Batch int
	Bits  int // RSA key size of rich scenarios
}

func allScenarios() []scenario {
	return []scenario{
		{Name: "basic-1", Title: "basic, batch 1", Kind: "basic", Batch: 1},
		{Name: "basic-100", Title: "basic, batch 100", Kind: "basic", Batch: 100},
		{Name: "rich2048-1", Title: "rich RSA-2048, batch 1", Kind: "rich", Batch: 1, Bits: 2048},
		{Name: "rich2048-100", Title: "rich RSA-2048, batch 100", Kind: "rich", Batch: 100, Bits: 2048},
		{Name: "rich4096-1", Title: "rich RSA-4096, batch 1", Kind: "rich", Batch: 1, Bits: 4096},
		{Name: "rich4096-100", Title: "rich RSA-4096, batch 100", Kind: "rich", Batch: 100, Bits: 4096},
		{Name: "handshake", Title: "validation handshake", Kind: "handshake", Batch: 1},
	}
}

// errUnknownScenario means -scenarios names a scenario that does not exist.
var errUnknownScenario = errors.New("-scenarios: unknown scenario")

func scenarioNames() string {
	var n []string
	for _, s := range allScenarios() {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",") + " or all"
}

func selectScenarios(list string) ([]scenario, error) {
	all := allScenarios()
	if list == "all" || list == "" {
		return all, nil
	}
	var out []scenario
	for name := range strings.SplitSeq(list, ",") {
		found := false
		for _, s := range all {
			if s.Name == strings.TrimSpace(name) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w %q; choose from %s", errUnknownScenario, name, scenarioNames())
		}
	}
	return out, nil
}

// target is a server under test.
type target struct {
	Name    string // "bare", "graphhook go", "graphhook openssl"
	Bare    bool
	Backend string // RSA backend of a daemon
	Daemon  string // daemon binary
	Self    string // loadbench binary built with the same backend
}

// harness holds what all runs share: binaries, keys, the JWKS server,
// generated bodies.
type harness struct {
	o        options
	log      io.Writer
	work     string
	bare     target
	daemons  []target
	noOpen   string // why the openssl build is not measured
	keyFiles map[int]string
	keys     map[int]decrypt.Key
	sim      *graphsim.Sim
	dcfg     daemonConfig
	p        payload
	pools    map[int][]graphsim.Notification
	env      environment

	start      time.Time
	step, todo int
	mu         sync.Mutex
}

// environment describes the machine and build, for the report.
type environment struct {
	Date, Commit, GoVersion, CPU, OpenSSL string
	Cores                                 int
	LoadBefore, LoadAfter                 string
	Command                               string
}

func newHarness(ctx context.Context, o options, log io.Writer) (_ *harness, err error) {
	h := &harness{o: o, log: log, keyFiles: map[int]string{}, keys: map[int]decrypt.Key{}, pools: map[int][]graphsim.Notification{}, start: time.Now()}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if _, err := os.Stat(filepath.Join(o.Root, "go.mod")); err != nil {
		return nil, fmt.Errorf("run from the repository root or pass -root: %w", err)
	}
	if h.work, err = os.MkdirTemp("", "loadbench-"); err != nil {
		return nil, err
	}
	h.env = describeEnvironment(ctx, o)
	h.logf("building the daemon and the harness (pure Go)...")
	if err := h.build(ctx, "", "receiver-go", "./cmd/receiver"); err != nil {
		return nil, err
	}
	if err := h.build(ctx, "", "loadbench-go", "./internal/loadbench"); err != nil {
		return nil, err
	}
	h.bare = target{Name: "bare net/http", Bare: true, Self: filepath.Join(h.work, "loadbench-go")}
	h.daemons = []target{{Name: "graphhook go", Backend: "go", Daemon: filepath.Join(h.work, "receiver-go"), Self: filepath.Join(h.work, "loadbench-go")}}
	if o.OpenSSL != "off" {
		h.logf("building with -tags openssl...")
		err1 := h.build(ctx, "openssl", "receiver-openssl", "./cmd/receiver")
		err2 := h.build(ctx, "openssl", "loadbench-openssl", "./internal/loadbench")
		switch err := errors.Join(err1, err2); {
		case err == nil:
			h.daemons = append(h.daemons, target{Name: "graphhook openssl", Backend: "openssl", Daemon: filepath.Join(h.work, "receiver-openssl"), Self: filepath.Join(h.work, "loadbench-openssl")})
		case o.OpenSSL == "on":
			return nil, fmt.Errorf("-openssl on, but the openssl build failed (install libssl-dev and a C compiler): %w", err)
		default:
			h.noOpen = "the -tags openssl build failed (is libssl-dev installed?)"
			h.logf("  skipped: %s: %v", h.noOpen, err)
		}
	} else {
		h.noOpen = "-openssl off"
	}
	h.logf("generating RSA-2048 and RSA-4096 keys...")
	for _, bits := range []int{2048, 4096} {
		k, err := decrypt.GenerateKey(bits, "loadbench", 24*time.Hour)
		if err != nil {
			return nil, err
		}
		k.ID = fmt.Sprintf("loadbench-%d", bits)
		pemBytes, err := k.MarshalPEM()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(h.work, fmt.Sprintf("key-%d.pem", bits))
		if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
			return nil, err
		}
		h.keys[bits], h.keyFiles[bits] = k, path
	}
	if h.sim, err = graphsim.New(graphsim.Config{SweepInterval: -1}); err != nil {
		return nil, err
	}
	if _, err := h.sim.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	h.p = payload{ClientState: loadClientState, SubscriptionID: loadSubID, AppID: graphsim.DefaultAppID}
	h.dcfg = daemonConfig{
		ClientState: loadClientState,
		AppID:       graphsim.DefaultAppID,
		JWKSURL:     h.sim.JWKSURL(),
		Keys: []string{
			h.keyFiles[2048] + ",id=" + h.keys[2048].ID,
			h.keyFiles[4096] + ",id=" + h.keys[4096].ID,
		},
	}
	return h, nil
}

func (h *harness) close() {
	if h.sim != nil {
		h.sim.Close()
	}
	if h.work != "" {
		os.RemoveAll(h.work)
	}
}

func (h *harness) build(ctx context.Context, tags, out, pkg string) error {
	args := []string{"build", "-o", filepath.Join(h.work, out)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.CommandContext(ctx, h.o.Go, append(args, pkg)...)
	cmd.Dir = h.o.Root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", h.o.Go, strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}

// logf prints a progress line with the elapsed time.
func (h *harness) logf(format string, args ...any) {
	el := time.Since(h.start).Round(time.Second)
	fmt.Fprintf(h.log, "%7s  %s\n", el, fmt.Sprintf(format, args...))
}

// stepf prints a progress line counting steps, with an estimate of the
// time left.
func (h *harness) stepf(format string, args ...any) {
	h.mu.Lock()
	h.step++
	step, todo := h.step, h.todo
	h.mu.Unlock()
	eta := ""
	if step > 1 {
		per := time.Since(h.start) / time.Duration(step-1)
		eta = fmt.Sprintf(", about %s left", (per * time.Duration(todo-step+1)).Round(time.Second))
	}
	h.logf("[%d/%d%s] %s", step, todo, eta, fmt.Sprintf(format, args...))
}

func describeEnvironment(ctx context.Context, o options) environment {
	out := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = o.Root
		b, err := cmd.Output()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(b))
	}
	e := environment{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Commit:    out("git", "describe", "--always", "--dirty"),
		GoVersion: out(o.Go, "env", "GOVERSION"),
		OpenSSL:   out("openssl", "version"),
		Cores:     runtime.NumCPU(),
		Command:   strings.TrimSpace("scripts/load.sh " + strings.Join(measuringArgs(os.Args[1:]), " ")),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				e.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	e.LoadBefore = loadAvg()
	return e
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// measuringArgs returns args without the flags that only name output files
// (-out, -json), so that the report's command line names no local path.
func measuringArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if strings.HasPrefix(args[i], "-") && (name == "out" || name == "json") {
			if !hasValue {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}
