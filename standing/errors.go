package standing

import "errors"

// ErrInvalid is wrapped by every [ConfigError] this package returns.
var ErrInvalid = errors.New("standing: invalid value")

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field string // the Config field's Go name, e.g. "TimeoutAfter"
	Err   error  // what is wrong; wraps ErrInvalid
}

// Error returns "standing: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "standing: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }
