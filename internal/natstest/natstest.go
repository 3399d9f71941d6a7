// Package natstest starts real in-process NATS servers with JetStream for
// tests. Nothing is mocked: tests publish to and consume from a real
// nats-server listening on 127.0.0.1, with its store in t.TempDir().
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Start starts a JetStream server on a random 127.0.0.1 port with its store
// in t.TempDir(), and connects to it. Both are shut down in t.Cleanup.
func Start(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	ns := RunServer(t, t.TempDir(), -1)
	return ns, Connect(t, ns.ClientURL())
}

// RunServer starts a JetStream server storing in dir and listening on
// 127.0.0.1:port (-1 picks a free port), waits until it is ready, and shuts
// it down in t.Cleanup. Start a second server on the same dir and port
// after Shutdown to simulate a restart.
func RunServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatalf("natstest: server on port %d not ready", port)
	}
	return ns
}

// Connect connects to url, reconnecting quickly and forever, and closes the
// connection in t.Cleanup.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// CheckFor calls f every interval until it returns nil, and fails the test
// with f's last error if that has not happened within timeout.
func CheckFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: condition not met after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

// Port returns the client port ns listens on.
func Port(t testing.TB, ns *server.Server) int {
	t.Helper()
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("natstest: server is not listening on TCP: %v", ns.Addr())
	}
	return addr.Port
}
