package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnect backoff of [connectNATS]: the wait doubles from the first to the
// last value, with ±25 % jitter, and then stays there.
const (
	reconnectFirst = 100 * time.Millisecond
	reconnectMax   = 5 * time.Second
)

// natsConnConfig configures [connectNATS], from the nats-* settings. URLs
// is required; at most one of CredsFile, NKeySeedFile, User (with
// Password) and Token may be set.
type natsConnConfig struct {
	// URLs are the servers to connect to, e.g. "nats://127.0.0.1:4222",
	// "tls://nats.example.com:4222". An element may itself be a
	// comma-separated list. Required.
	URLs []string

	// CredsFile is a NATS credentials file (JWT and NKey seed), as used by
	// NATS accounts and Synadia Cloud.
	CredsFile string
	// NKeySeedFile is a file holding an NKey user seed.
	NKeySeedFile string
	// User and Password authenticate with a user name and password.
	User, Password string
	// Token authenticates with a bearer token.
	Token string

	// TLSCAFile is a PEM file of CAs to trust for the server's
	// certificate, beyond the system pool.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the client certificate and key, for
	// servers that verify clients. Both or neither.
	TLSCertFile, TLSKeyFile string

	// InProcess, when set, connects to this server inside the process
	// instead of dialling URLs: the embedded server, which then costs no
	// loopback TCP per publish (about half of a one-item batch's CPU).
	InProcess nats.InProcessConnProvider

	// Name is the connection name shown by the server's monitoring.
	// Default "graphhook".
	Name string
	// Logger receives connection events: disconnects and errors at Warn,
	// reconnects at Info. URLs are logged without credentials. Nil
	// discards.
	Logger *slog.Logger
}

// errNATSConfig marks a natsConnConfig that cannot be used.
var errNATSConfig = errors.New("invalid NATS connection settings")

// connectNATS connects to NATS and keeps the connection up for as long as the
// process runs: it reconnects forever with exponential backoff (100 ms to
// 5 s, jittered), and when no server is reachable at start it returns a
// connection that is still trying rather than an error, so a receiver can
// start before its NATS server. Publishing fails fast meanwhile
// (natspub.Publisher.Deliver returns natspub.ErrNotConnected). The caller closes the
// connection (Drain or Close).
func connectNATS(cfg natsConnConfig) (*nats.Conn, error) {
	var urls []string
	for _, u := range cfg.URLs {
		for part := range strings.SplitSeq(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				urls = append(urls, part)
			}
		}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: URLs is required", errNATSConfig)
	}
	auth := 0
	for _, set := range []bool{cfg.CredsFile != "", cfg.NKeySeedFile != "", cfg.User != "", cfg.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, fmt.Errorf("%w: set only one of CredsFile, NKeySeedFile, User and Token", errNATSConfig)
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, fmt.Errorf("%w: Password without User", errNATSConfig)
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, fmt.Errorf("%w: set both TLSCertFile and TLSKeyFile, or neither", errNATSConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := cfg.Name
	if name == "" {
		name = "graphhook"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(2 * time.Second),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil { // a close or drain we asked for
				log.Info("NATS disconnected")
				return
			}
			log.Warn("NATS disconnected", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Info("NATS connection closed")
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			log.Warn("NATS error", "error", err)
		}),
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: NKey seed file: %w", errNATSConfig, err)
		}
		opts = append(opts, o)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.InProcess != nil {
		opts = append(opts, nats.InProcessServer(cfg.InProcess))
	}
	if cfg.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCAFile))
	}
	if cfg.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCertFile, cfg.TLSKeyFile))
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if !nc.IsConnected() {
		log.Warn("NATS not reachable yet, retrying in the background")
	}
	return nc, nil
}

// reconnectDelay is the backoff between reconnect attempts.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectFirst
	for i := 1; i < attempts && d < reconnectMax; i++ {
		d *= 2
	}
	d = min(d, reconnectMax)
	return d - d/4 + rand.N(d/2)
}
