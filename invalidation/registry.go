package invalidation

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrUnknownDriver is returned by Open for a name no driver registered.
var ErrUnknownDriver = errors.New("invalidation: unknown driver type")

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{} // guarded by registryMu
)

// Register makes a driver available under name, for InvalidationConfig.Type.
// Drivers call it from an init function, so a blank import selects them. It
// returns an error for an empty name, a nil factory or a name already taken.
func Register(name string, f Factory) error {
	if name == "" {
		return errors.New("invalidation: Register: empty driver name")
	}
	if f == nil {
		return fmt.Errorf("invalidation: Register %q: nil factory", name)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		return fmt.Errorf("invalidation: Register %q: driver already registered", name)
	}
	registry[name] = f
	return nil
}

// MustRegister is Register for init functions: a duplicate name is a
// programming error in the binary's imports, so it panics.
func MustRegister(name string, f Factory) {
	if err := Register(name, f); err != nil {
		panic(err)
	}
}

// Open builds a driver with the factory registered under spec.Type.
func Open(spec Spec) (Driver, error) {
	registryMu.RLock()
	f, ok := registry[spec.Type]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %v; did you blank-import the driver?)", ErrUnknownDriver, spec.Type, Registered())
	}
	return f(spec)
}

// Registered lists the registered driver names, sorted.
func Registered() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
