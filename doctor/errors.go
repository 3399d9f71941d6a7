package doctor

import "errors"

// Sentinels wrapped by [ConfigError].
var (
	// ErrRequired reports a required Config field left empty.
	ErrRequired = errors.New("doctor: required")
	// ErrInvalid reports a Config field with an unusable value.
	ErrInvalid = errors.New("doctor: invalid value")
)

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field string // the Config field's Go name, e.g. "URL"
	Err   error  // what is wrong; wraps ErrRequired or ErrInvalid
}

// Error returns "doctor: Config.<Field>: <Err>".
func (e *ConfigError) Error() string { return "doctor: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }
