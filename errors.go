package invacache

import (
	"errors"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/engine"
)

var (
	// ErrNotFound is returned by Get for a key the cache does not hold (or
	// may not serve right now: see InvalidationConfig.MaxStaleness).
	ErrNotFound = errors.New("invacache: key not found")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("invacache: cache closed")
	// ErrInvalidConfig is wrapped by every configuration error NewCache
	// returns; the message names the field.
	ErrInvalidConfig = config.ErrInvalidConfig
	// ErrInvalidArgument is wrapped by errors about a call's arguments, such
	// as a nil loader, a negative TTL, or a key longer than an invalidation
	// message carries (1 MiB less 64 bytes) passed to Set or Delete with
	// invalidation. The Redis driver's Publisher wraps the same value.
	ErrInvalidArgument = engine.ErrInvalidArgument
	// ErrLoaderPanic is wrapped by the error every waiter of a GetOrLoad gets
	// when the loader panicked or ended its goroutine without returning
	// (runtime.Goexit, as t.FailNow does). Nothing is cached.
	ErrLoaderPanic = errors.New("invacache: loader panicked")
)
