// Package handlers mounts a [receiver.Receiver] on an Echo v4 server.
//
// [Register] adds the notification and lifecycle endpoints (they may share a
// URL: the receiver dispatches on lifecycleEvent versus changeType) with
// Echo's BodyLimit middleware in front. Errors are returned as
// [*echo.HTTPError], so the application's own HTTPErrorHandler renders them;
// Echo's default renders {"message": "..."}. A 503 carries Retry-After so
// Graph redelivers.
//
//	e := echo.New()
//	handlers.Register(e, r, handlers.Config{})
//
// Query parameters carried on the notificationUrl reach the Sink in
// [receiver.Batch].Query.
package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/graphhook/graphhook/receiver"
)

// Defaults for [Config].
const (
	DefaultNotificationPath = "/notifications"
	DefaultLifecyclePath    = "/lifecycle"
)

// Config says where [Register] mounts the endpoints.
type Config struct {
	// NotificationPath is the notificationUrl's path. Default "/notifications".
	NotificationPath string
	// LifecyclePath is the lifecycleNotificationUrl's path. Default
	// "/lifecycle". It may equal NotificationPath.
	LifecyclePath string
	// BodyLimit caps request bodies in bytes, 413 over it, whether the body
	// comes with a Content-Length or chunked. Default, and upper bound: the
	// receiver's MaxBodyBytes (4 MiB).
	BodyLimit int64
	// Middleware is added to both routes after the body limit, e.g. a
	// request logger or metrics.
	Middleware []echo.MiddlewareFunc
}

// Register mounts r on e at cfg's paths, for POST (notifications and
// handshakes) and GET (handshakes only; Graph uses POST, GET is answered
// tolerantly).
func Register(e *echo.Echo, r *receiver.Receiver, cfg Config) {
	if cfg.NotificationPath == "" {
		cfg.NotificationPath = DefaultNotificationPath
	}
	if cfg.LifecyclePath == "" {
		cfg.LifecyclePath = DefaultLifecyclePath
	}
	if cfg.BodyLimit <= 0 || cfg.BodyLimit > r.MaxBodyBytes() {
		cfg.BodyLimit = r.MaxBodyBytes()
	}
	mw := append([]echo.MiddlewareFunc{bodyLimit(cfg.BodyLimit)}, cfg.Middleware...)
	h := Notifications(r)
	paths := []string{cfg.NotificationPath}
	if cfg.LifecyclePath != cfg.NotificationPath {
		paths = append(paths, cfg.LifecyclePath)
	}
	for _, p := range paths {
		e.POST(p, h, mw...)
		e.GET(p, h, mw...)
	}
}

// bodyLimit caps the request body with http.MaxBytesReader, which the
// receiver recognises and answers 413. (Echo's BodyLimit middleware reports
// an overlong chunked body as a read error the receiver cannot tell from a
// broken connection, which would make it a 400.)
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("%v: limit is %d bytes", receiver.ErrTooLarge, limit))
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}

// Notifications returns the Echo handler for a notification or lifecycle
// endpoint: it answers the validation handshake, or reads, verifies and
// delivers a batch and answers 202.
func Notifications(r *receiver.Receiver) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if r.Handshake(c.Response(), req) {
			return nil
		}
		body, err := r.ReadRequest(c.Response(), req)
		if err != nil {
			return httpError(c, r, err)
		}
		if _, err := r.Receive(req.Context(), body, c.QueryParams()); err != nil {
			return httpError(c, r, err)
		}
		return c.NoContent(http.StatusAccepted)
	}
}

func httpError(c echo.Context, r *receiver.Receiver, err error) error {
	status := receiver.StatusOf(err)
	msg := http.StatusText(status)
	switch status {
	case http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", r.RetryAfter())
	case http.StatusMethodNotAllowed:
		c.Response().Header().Set("Allow", "POST")
		msg = err.Error()
	default:
		if status < 500 {
			msg = err.Error()
		}
	}
	return echo.NewHTTPError(status, msg).SetInternal(fmt.Errorf("graphhook: %w", err))
}
