package faults

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
)

// binaries are the real programs the scenarios run, built once per test
// binary by buildBinaries into a directory TestMain removes.
type binaries struct {
	receiver string // go build github.com/graphhook/graphhook/cmd/receiver
	nats     string // go build github.com/nats-io/nats-server/v2
}

// builder builds the binaries at most once.
type builder struct {
	dir  string
	once sync.Once
	bins binaries
	err  error
}

// get builds both binaries (in parallel) on first use and returns them.
func (b *builder) get(t *testing.T) binaries {
	t.Helper()
	b.once.Do(func() {
		start := time.Now()
		t.Logf("building the receiver and nats-server into a temporary directory ...")
		targets := []struct {
			out, pkg string
			dst      *string
		}{
			{filepath.Join(b.dir, "receiver"), "github.com/graphhook/graphhook/cmd/receiver", &b.bins.receiver},
			{filepath.Join(b.dir, "nats-server"), "github.com/nats-io/nats-server/v2", &b.bins.nats},
		}
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, tg := range targets {
			wg.Go(func() {
				cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-faults", "-o", tg.out, tg.pkg)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("go build %s: %v\n%s", tg.pkg, err, out)
					return
				}
				*tg.dst = tg.out
			})
		}
		wg.Wait()
		b.err = errors.Join(errs...)
		t.Logf("built in %v", time.Since(start).Round(100*time.Millisecond))
	})
	if b.err != nil {
		t.Fatalf("%v (run go mod download if the module cache is empty)", b.err)
	}
	return b.bins
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one run of a program under a test. It is killed at the end of
// the test unless it has exited.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *testkit.SyncBuffer
	done           chan struct{}
	waitErr        error // set before done is closed
}

// startProc starts bin with args and an environment that holds only PATH
// and a fresh HOME.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	p.cmd.Dir = t.TempDir() // nothing a process writes lands in the repository
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) output, last 3000 bytes:\n%s", p.name, p.cmd.Process.Pid, tail(p.stdout.String()+p.stderr.String(), 3000))
		}
	})
	return p
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (if it still runs) and waits for the exit.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// wait waits up to timeout for the exit and returns the exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
	}
	if ee, ok := errors.AsType[*exec.ExitError](p.waitErr); ok {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatalf("%s: %v", p.name, p.waitErr)
	}
	return 0
}

// waitOutput waits until the process printed something matching re on
// stdout or stderr, and fails the test if it exits first.
func (p *proc) waitOutput(t *testing.T, timeout time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	testkit.CheckFor(t, timeout, func() error {
		if m = re.FindStringSubmatch(p.stdout.String() + p.stderr.String()); m != nil {
			return nil
		}
		if p.exited() {
			t.Fatalf("%s exited before printing %q: %v\n%s", p.name, re, p.waitErr, tail(p.stdout.String()+p.stderr.String(), 3000))
		}
		return fmt.Errorf("%s has not printed %q yet", p.name, re)
	})
	return m
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes,
// or 0 where /proc does not tell.
func (p *proc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// natsNode is one external nats-server with JetStream on a fixed port and
// store, so that a restart finds its data where it left it.
type natsNode struct {
	bin  string
	name string
	port int
	dir  string // store and configuration
	conf string
	p    *proc
}

var natsReady = regexp.MustCompile(`Server is ready`)

// newNATS prepares (but does not start) a standalone server.
func newNATS(t *testing.T, bin, name string) *natsNode {
	t.Helper()
	n := &natsNode{bin: bin, name: name, port: freePort(t), dir: t.TempDir()}
	n.writeConf(t, "")
	return n
}

// newCluster prepares (but does not start) size servers that route to
// each other as one JetStream cluster.
func newCluster(t *testing.T, bin string, size int) []*natsNode {
	t.Helper()
	nodes := make([]*natsNode, size)
	routePorts := make([]int, size)
	for i := range nodes {
		nodes[i] = &natsNode{bin: bin, name: fmt.Sprintf("n%d", i+1), port: freePort(t), dir: t.TempDir()}
		routePorts[i] = freePort(t)
	}
	for i, n := range nodes {
		var routes []string
		for j, rp := range routePorts {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", rp))
			}
		}
		n.writeConf(t, fmt.Sprintf("cluster {\n  name: faults\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", routePorts[i], strings.Join(routes, ", ")))
	}
	return nodes
}

// writeConf writes the server's configuration file. max_payload leaves
// room for the receiver's default 4 MiB body limit plus headers, as the
// receiver requires of an external server.
func (n *natsNode) writeConf(t *testing.T, extra string) {
	t.Helper()
	conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\nmax_payload: 8MB\njetstream {\n  store_dir: %q\n}\n%s",
		n.name, n.port, filepath.Join(n.dir, "store"), extra)
	n.conf = filepath.Join(n.dir, "nats.conf")
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// url is the server's client URL.
func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// start starts the server and waits until it accepts clients.
func (n *natsNode) start(t *testing.T) {
	t.Helper()
	n.p = startProc(t, "nats-server "+n.name, n.bin, "-c", n.conf)
	n.p.waitOutput(t, 30*time.Second, natsReady)
}

// receiverProc is the receiver binary; restarts keep its port, so the
// subscription's notificationUrl stays right.
type receiverProc struct {
	bin  string
	args []string // everything but --listen
	port int      // 0 until the first start picked one
	url  string   // http://127.0.0.1:port/notifications
	p    *proc
	runs int
}

var bannerRe = regexp.MustCompile(`notifications: (http://\S+?/notifications)\n`)

// newReceiver prepares a receiver using the NATS servers at natsURLs with
// the given clientState and extra flags.
func newReceiver(t *testing.T, bin string, natsURLs []string, clientState string, extra ...string) *receiverProc {
	t.Helper()
	args := []string{
		"--nats-url", strings.Join(natsURLs, ","),
		"--data-dir", t.TempDir(),
		"--client-state", clientState,
		"--log-format", "json",
	}
	return &receiverProc{bin: bin, args: append(args, extra...)}
}

// start starts the receiver (on a free port the first time, on the same
// port later) and waits for its banner.
func (r *receiverProc) start(t *testing.T) {
	t.Helper()
	r.launch(t)
	r.waitServing(t)
}

// launch starts the process without waiting for it to serve.
func (r *receiverProc) launch(t *testing.T) {
	t.Helper()
	r.runs++
	listen := "127.0.0.1:0"
	if r.port != 0 {
		listen = fmt.Sprintf("127.0.0.1:%d", r.port)
	}
	r.p = startProc(t, fmt.Sprintf("receiver (run %d)", r.runs), r.bin, append([]string{"--listen", listen}, r.args...)...)
}

// waitServing waits for the banner of the last launch.
func (r *receiverProc) waitServing(t *testing.T) {
	t.Helper()
	m := r.p.waitOutput(t, 60*time.Second, bannerRe)
	r.url = m[1]
	if r.port == 0 {
		_, portStr, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(r.url, "http://"), "/notifications"))
		r.port, _ = strconv.Atoi(portStr)
	}
}

// base is the receiver's http://host:port.
func (r *receiverProc) base() string { return strings.TrimSuffix(r.url, "/notifications") }
