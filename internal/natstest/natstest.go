// Package natstest starts real in-process NATS servers with JetStream for
// tests. Nothing is mocked: tests publish to and consume from a real
// nats-server listening on 127.0.0.1, with its store in t.TempDir().
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
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
	ns := launch(t, options(dir, port))
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatalf("natstest: server on port %d not ready", port)
	}
	return ns
}

// options are what every test server shares: JetStream storing in dir,
// listening on 127.0.0.1:port, quiet, and taking payloads of up to 8 MiB.
func options(dir string, port int) *server.Options {
	return &server.Options{
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
}

// launch creates and starts a server with opts, and shuts it down in
// t.Cleanup. It does not wait for the server to be ready.
func launch(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
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

// Cluster is a JetStream cluster of in-process servers on loopback.
type Cluster struct {
	Servers []*server.Server
}

// StartCluster starts a JetStream cluster of n servers ("n1", "n2", ...)
// routed to each other on 127.0.0.1, each with its store in t.TempDir(),
// waits until they accept connections and the JetStream meta leader knows
// every peer, and
// shuts them down in t.Cleanup. Shut one down (Shutdown) to simulate the
// loss of a node.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick a cluster port: %v", err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
	}
	c := &Cluster{}
	for i := range n {
		opts := options(t.TempDir(), -1)
		opts.ServerName = "n" + strconv.Itoa(i+1)
		opts.Cluster = server.ClusterOpts{Name: "graphhook-test", Host: "127.0.0.1", Port: ports[i]}
		opts.Routes = routes
		c.Servers = append(c.Servers, launch(t, opts))
	}
	for _, ns := range c.Servers {
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("natstest: cluster server %s not ready", ns.Name())
		}
	}
	// Placement of an R3 stream needs a meta leader that has heard from
	// every peer, not just any leader.
	testkit.CheckFor(t, 20*time.Second, func() error {
		for _, ns := range c.Servers {
			if ns.JetStreamIsLeader() {
				if peers := ns.JetStreamClusterPeers(); len(peers) < n {
					return fmt.Errorf("natstest: the JetStream meta leader knows %d of %d peers", len(peers), n)
				}
				return nil
			}
		}
		return errors.New("natstest: the cluster has no JetStream meta leader")
	})
	return c
}

// URLs returns the client URLs of the servers still running, comma
// separated, for nats.Connect.
func (c *Cluster) URLs() string {
	var urls []string
	for _, ns := range c.Servers {
		if ns.Running() {
			urls = append(urls, ns.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// Server returns the server named name, or nil.
func (c *Cluster) Server(name string) *server.Server {
	for _, ns := range c.Servers {
		if ns.Name() == name {
			return ns
		}
	}
	return nil
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
