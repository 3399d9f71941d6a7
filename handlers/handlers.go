// Package handlers mounts a [receiver.Receiver] on an Echo v4 server.
//
// [Register] adds the notification and lifecycle endpoints (they may share a
// URL: the receiver dispatches on lifecycleEvent versus changeType), with an
// optional body limit in front. The receiver answers; only its errors are
// returned, as [*echo.HTTPError] carrying the receiver's status and message
// (and, already set on the response, its Retry-After or Allow header), so
// the application's own HTTPErrorHandler renders them; Echo's default
// renders {"message": "..."}.
//
//	e := echo.New()
//	handlers.Register(e, r, handlers.Config{})
//
// Query parameters carried on the notificationUrl reach the Sink in
// [receiver.Batch].Query.
package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/graphhook/graphhook/receiver"
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
	// receiver's Config.MaxBodyBytes (4 MiB), which the receiver applies
	// itself.
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
		cfg.NotificationPath = "/notifications"
	}
	if cfg.LifecyclePath == "" {
		cfg.LifecyclePath = "/lifecycle"
	}
	var mw []echo.MiddlewareFunc
	if cfg.BodyLimit > 0 {
		mw = append(mw, bodyLimit(cfg.BodyLimit))
	}
	mw = append(mw, cfg.Middleware...)
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
// receiver recognises and answers 413 with the rest of its error policy.
// (Echo's BodyLimit middleware reports an overlong chunked body as a read
// error the receiver cannot tell from a broken connection, which would make
// it a 400.)
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}

// Notifications returns the Echo handler for a notification or lifecycle
// endpoint: it answers the validation handshake, or reads, verifies and
// delivers a batch and answers 202, all with [receiver.Receiver.Handle].
func Notifications(r *receiver.Receiver) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := r.Handle(c.Response(), c.Request())
		if e, ok := errors.AsType[*receiver.Error](err); ok {
			return echo.NewHTTPError(e.Status(), e.Message()).SetInternal(fmt.Errorf("graphhook: %w", err))
		}
		return err
	}
}
