package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
)

// parseLevel parses --log-level.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// newLogger returns the process logger: text or JSON on w at the
// configured level. Only the command chooses a handler; the packages it
// wires take this logger in their Config.
func newLogger(c *config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}

// noteKey is the context key of a request's *requestNote, set by
// observe.
type noteKey struct{}

// noteCtx is a request's context carrying its note: one allocation, where
// a note in context.WithValue would be two (seen in the handshake
// profile). Cancellation and every other value come from the parent.
type noteCtx struct {
	context.Context
	note requestNote
	// header is the X-Request-Id header's value list, kept here so that
	// setting it costs no allocation of its own.
	header [1]string
}

// Value returns the note for noteKey, else the parent's value.
func (c *noteCtx) Value(key any) any {
	if key == (noteKey{}) {
		return &c.note
	}
	return c.Context.Value(key)
}

// noteOf returns the requestNote observe put in ctx, or nil.
func noteOf(ctx context.Context) *requestNote {
	n, _ := ctx.Value(noteKey{}).(*requestNote)
	return n
}

// requestIDHandler adds the request id of the record's context, so that
// what the receiver logs about a request (rejected items, the batch
// outcome) carries the same request_id as the access log line.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if n := noteOf(ctx); n != nil {
		r.AddAttrs(slog.String("request_id", n.id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// infoAsDebug logs a library's Info records at Debug: the daemon writes
// one Info line per request itself (observe), so the receiver's own
// per-request lines would double it. Warnings and errors pass unchanged.
type infoAsDebug struct{ slog.Handler }

func (h infoAsDebug) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h infoAsDebug) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h infoAsDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return infoAsDebug{h.Handler.WithAttrs(attrs)}
}

func (h infoAsDebug) WithGroup(name string) slog.Handler {
	return infoAsDebug{h.Handler.WithGroup(name)}
}

// requestNote carries a request's id to the log lines written about it,
// and what the Sink saw of its batch to its access log line.
type requestNote struct {
	id                 string
	delivered          atomic.Bool
	accepted, rejected atomic.Int64
}
