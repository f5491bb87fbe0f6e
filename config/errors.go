package config

import "errors"

// ErrInvalidConfig is wrapped by every configuration error, so callers can test
// for it with errors.Is. The root package re-exports it as invacache.ErrInvalidConfig.
var ErrInvalidConfig = errors.New("invalid config")
