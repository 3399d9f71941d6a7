package doctor

import "errors"

// ErrInvalidConfig is matched (errors.Is) by every [ConfigError].
var ErrInvalidConfig = errors.New("doctor: invalid config")

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field string // the Config field's Go name, e.g. "URL"
	Err   error  // what is wrong
}

// Error returns "doctor: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "doctor: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns e.Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
