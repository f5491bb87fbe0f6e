package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// checkDriver builds the driver of ic, as NewCache would, and closes it at
// once: a driver checks its settings when it is built and connects only
// later, so this reports the settings NewCache would refuse (a replay
// window out of range, a duration written as a number, an unknown key)
// without touching the network. Errors name the section of the document
// the settings came from. A driver that is not registered was reported by
// Resolve; an injected Driver has nothing to check. ic is resolved (the
// typed form turned into DriverConfig); section is where the settings were
// in the document.
func checkDriver(ic *InvalidationConfig, section string) error {
	if ic == nil || ic.Driver != nil {
		return nil
	}
	spec := invalidation.Spec{Type: ic.Type, Options: ic.DriverConfig, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d, err := invalidation.Open(spec)
	if err != nil {
		if !errors.Is(err, ErrInvalidConfig) {
			err = fmt.Errorf("%w: %w", err, ErrInvalidConfig)
		}
		return fmt.Errorf("config: %s: %w", section, err)
	}
	return d.Close()
}
