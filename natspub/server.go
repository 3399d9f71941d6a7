package natspub

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults for [ServerConfig].
const (
	defaultServerHost       = "127.0.0.1"
	defaultServerPort       = 4222
	DefaultServerMaxPayload = 8 << 20
	serverReadyTimeout      = 10 * time.Second
)

// ServerConfig configures [StartServer]. StoreDir is required.
type ServerConfig struct {
	// StoreDir is the JetStream data directory. Required. Streams survive
	// a restart on the same directory.
	StoreDir string
	// Host is the address to listen on. Default "127.0.0.1". Client
	// traffic is not encrypted: keep it off untrusted networks.
	Host string
	// Port is the client port. Default 4222; -1 picks a free port (read
	// it back with ClientURL).
	Port int
	// MaxPayload is the largest message the server accepts. Default
	// 8 MiB, above the receiver's default 4 MiB body limit, so that a rich
	// notification's decrypted resource always fits. (A stock nats-server
	// allows 1 MiB.)
	MaxPayload int32
	// Token, when set, is the token every client must present
	// (nats://TOKEN@host:port, or nats.Token). Without it any process that
	// reaches the port can read the streams (decrypted content, the
	// quarantine) and publish into them.
	Token string
	// Logger receives the server's notices (Info), warnings and errors.
	// Debug and trace output, which could show message contents, are
	// never enabled. Nil discards.
	Logger *slog.Logger
}

// StartServer starts an in-process nats-server with JetStream on
// cfg.StoreDir and waits until it accepts connections. Stop it with
// Shutdown and WaitForShutdown. A port already in use is an error wrapping
// [ErrServerStart] and the listen error (errors.Is(err,
// syscall.EADDRINUSE) holds).
func StartServer(cfg ServerConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("%w: ServerConfig.StoreDir is required", ErrInvalidConfig)
	}
	if cfg.Host == "" {
		cfg.Host = defaultServerHost
	}
	if cfg.Port == 0 {
		cfg.Port = defaultServerPort
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultServerMaxPayload
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	if cfg.Port > 0 {
		// nats-server reports a busy port only to its logger, after Start
		// has returned; probe it first for a clear error.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%w: listen on %s: %w", ErrServerStart, addr, err)
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName:    "graphhook",
		Host:          cfg.Host,
		Port:          cfg.Port,
		JetStream:     true,
		StoreDir:      cfg.StoreDir,
		MaxPayload:    cfg.MaxPayload,
		Authorization: cfg.Token,
		NoSigs:        true,
		NoLog:         cfg.Logger == nil,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrServerStart, err)
	}
	sl := &serverLogger{log: cfg.Logger}
	if cfg.Logger == nil {
		sl.log = slog.New(slog.DiscardHandler)
	}
	ns.SetLoggerV2(sl, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(serverReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		cause := sl.fatal()
		if cause == nil {
			cause = fmt.Errorf("not ready for connections on %s after %v", addr, serverReadyTimeout)
		}
		return nil, fmt.Errorf("%w: %w", ErrServerStart, cause)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		cause := sl.fatal()
		if cause == nil {
			cause = errors.New("JetStream is not enabled")
		}
		return nil, fmt.Errorf("%w: %w", ErrServerStart, cause)
	}
	return ns, nil
}

// serverLogger adapts nats-server's logger to slog and remembers the first
// fatal message, which the server does not return to the caller.
type serverLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	err error
}

func (l *serverLogger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  {}
func (l *serverLogger) Tracef(format string, v ...any)  {}
func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	if l.err == nil {
		l.err = errors.New(msg)
	}
	l.mu.Unlock()
}
