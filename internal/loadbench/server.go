package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names the daemon uses by default (cmd/receiver --stream,
// --quarantine-stream).
const (
	streamName     = "GRAPH"
	quarantineName = "GRAPH_REJECTED"
)

// errExited means a server process exited before it was ready, usually
// because another process took one of its ports after freePort chose it.
var errExited = errors.New("exited before it was ready")

// server is a process under test: the daemon or the bare baseline.
type server struct {
	cmd      *exec.Cmd
	done     chan error // Wait's result
	URL      string     // notification URL
	natsAddr string     // embedded NATS (daemon only)
	dataDir  string     // daemon only
	logPath  string
}

// pid returns the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// daemonConfig is what every daemon of a harness run shares.
type daemonConfig struct {
	ClientState string
	AppID       string
	JWKSURL     string
	Keys        []string // --key values: path,id=...
}

// startDaemon starts cmd/receiver bin with embedded JetStream in a fresh
// data directory under work and waits until /readyz answers 200.
func startDaemon(ctx context.Context, bin, work string, cfg daemonConfig) (*server, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(work, "daemon-")
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	args := []string{
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--embedded-nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"--data-dir", filepath.Join(dir, "data"),
		"--client-state", cfg.ClientState,
		"--app-id", cfg.AppID,
		"--jwks-url", cfg.JWKSURL,
		"--log-level", "error",
	}
	for _, k := range cfg.Keys {
		args = append(args, "--key", k)
	}
	s := &server{
		URL:      base + "/notifications",
		natsAddr: fmt.Sprintf("127.0.0.1:%d", natsPort),
		dataDir:  filepath.Join(dir, "data"),
		logPath:  filepath.Join(dir, "receiver.log"),
	}
	if err := s.start(bin, args); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, base+"/readyz"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startBare starts this binary in -bare mode and waits until it answers.
func startBare(ctx context.Context, self, work string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	s := &server{URL: base + "/notifications", logPath: filepath.Join(work, "bare.log")}
	if err := s.start(self, []string{"-bare", "-listen", fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, base+"/healthz"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) start(bin string, args []string) error {
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	return nil
}

// waitReady polls url until it answers 200, the process exits, or 60 s pass.
func (s *server) waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("%w: %s (%v); its log: %s", errExited, filepath.Base(s.cmd.Path), err, s.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60 s at %s; its log: %s", filepath.Base(s.cmd.Path), url, s.tail())
		}
	}
}

// tail returns the end of the server's log, for error messages.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// stop sends SIGTERM, waits up to 15 s, then kills.
func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	if s.dataDir != "" {
		os.RemoveAll(filepath.Dir(s.dataDir))
	}
}

// streamCounts returns the number of messages in the daemon's notification
// and quarantine streams, read over the embedded NATS server with the token
// the daemon generated.
func (s *server) streamCounts(ctx context.Context) (stored, quarantined uint64, err error) {
	tok, err := os.ReadFile(filepath.Join(s.dataDir, "nats-token"))
	if err != nil {
		return 0, 0, fmt.Errorf("read the embedded NATS token: %w", err)
	}
	nc, err := nats.Connect("nats://"+s.natsAddr, nats.Token(strings.TrimSpace(string(tok))), nats.Name("loadbench"))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	count := func(name string) (uint64, error) {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		return info.State.Msgs, nil
	}
	if stored, err = count(streamName); err != nil {
		return 0, 0, err
	}
	quarantined, err = count(quarantineName)
	return stored, quarantined, err
}

// bareCollection is what the bare baseline decodes: Graph's
// changeNotificationCollection with the fields a minimal consumer reads.
type bareCollection struct {
	Value []struct {
		ID                             string          `json:"id"`
		SubscriptionID                 string          `json:"subscriptionId"`
		SubscriptionExpirationDateTime string          `json:"subscriptionExpirationDateTime"`
		ChangeType                     string          `json:"changeType"`
		Resource                       string          `json:"resource"`
		ClientState                    string          `json:"clientState"`
		TenantID                       string          `json:"tenantId"`
		ResourceData                   json.RawMessage `json:"resourceData"`
		EncryptedContent               json.RawMessage `json:"encryptedContent"`
	} `json:"value"`
	ValidationTokens []string `json:"validationTokens"`
}

// bareHandler is the baseline: the least a net/http server must do for
// Graph, echo the validation handshake, decode the JSON and answer 202.
// It verifies nothing and stores nothing.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /notifications", func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, tok)
			return
		}
		var c bareCollection
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&c); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// serveBare runs the bare baseline on addr until ctx ends.
func serveBare(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, Handler: bareHandler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
