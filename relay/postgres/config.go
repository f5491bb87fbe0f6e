package postgres

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"

	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// Defaults applied where a Config field is zero.
const (
	DefaultSlot                = "invacache_relay"
	DefaultPublication         = "invacache_relay"
	DefaultMaxTransactionKeys  = 10000
	DefaultStatusInterval      = time.Second
	DefaultSlotActiveRetry     = time.Second
	defaultMaxPendingKeysRatio = 4
)

// Config configures a Relay. The zero value of every field but Postgres,
// Redis's address and Mappings means its default. New copies it: the
// caller's struct is never changed.
type Config struct {
	// Postgres is the connection string (a URL or key=value DSN) of the
	// primary. The user needs the REPLICATION attribute and SELECT on the
	// catalog; the relay adds replication=database itself.
	Postgres string
	// Redis is the Redis driver's configuration: the relay publishes
	// through the driver's Publisher (its envelope, outbox and replay
	// log), on Redis.Channel.
	Redis redisdriver.Config
	// Slot is the logical replication slot. It is created (pgoutput) when
	// missing and kept across restarts. Default "invacache_relay".
	Slot string
	// Publication is the publication to stream; it must exist and hold
	// every mapped table. Default "invacache_relay".
	Publication string
	// Mappings are the tables and their key templates; at least one.
	Mappings []Mapping
	// MaxTransactionKeys bounds the keys one transaction may invalidate;
	// a larger transaction sends one Clear instead. Default 10000.
	MaxTransactionKeys int
	// StatusInterval is how often the relay reports its position to
	// PostgreSQL (and so lets the slot advance). Default 1s, at most 10s.
	StatusInterval time.Duration
	// SlotActiveRetry is how often a relay whose slot is in use by another
	// one asks again. Default 1s.
	SlotActiveRetry time.Duration
	// Streaming asks pgoutput for protocol version 2 with streaming
	// (PostgreSQL 14 or later): a transaction larger than the server's
	// logical_decoding_work_mem is sent in blocks before it commits
	// instead of spilled to disk on the server; the relay keeps its keys
	// until StreamCommit and drops them on StreamAbort. Default false
	// (protocol 1).
	Streaming bool
	// Logger receives the relay's log; nil is silent.
	Logger *slog.Logger

	// hooks are test points (the kill tests SIGKILL the process in one).
	hooks *hooks
}

// hooks are test points: each, when set, runs on the publishing goroutine
// at that point (and may block there).
type hooks struct {
	beforePublish func() // a committed batch taken, not published
	afterPublish  func() // published, not yet acknowledged
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// withDefaults checks c and returns a copy with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if c.Postgres == "" {
		return c, fmt.Errorf("%w: Postgres: no connection string", ErrInvalidConfig)
	}
	if c.Slot == "" {
		c.Slot = DefaultSlot
	}
	if !slotName.MatchString(c.Slot) {
		return c, fmt.Errorf("%w: Slot %q: use lower case letters, digits and '_' (at most 63)", ErrInvalidConfig, c.Slot)
	}
	if c.Publication == "" {
		c.Publication = DefaultPublication
	}
	if len(c.Mappings) == 0 {
		return c, fmt.Errorf("%w: Mappings: no table mapped", ErrInvalidConfig)
	}
	seen := map[string]bool{}
	ms := make([]Mapping, len(c.Mappings))
	for i, m := range c.Mappings {
		if _, err := compileMapping(m); err != nil {
			return c, fmt.Errorf("Mappings[%d]: %w", i, err)
		}
		if seen[m.qualified()] {
			return c, fmt.Errorf("%w: Mappings[%d]: table %s mapped twice (put all its templates in one mapping)", ErrInvalidConfig, i, m.qualified())
		}
		seen[m.qualified()] = true
		m.Keys = append([]string(nil), m.Keys...)
		ms[i] = m
	}
	c.Mappings = ms
	switch {
	case c.MaxTransactionKeys < 0:
		return c, fmt.Errorf("%w: MaxTransactionKeys %d is negative", ErrInvalidConfig, c.MaxTransactionKeys)
	case c.MaxTransactionKeys == 0:
		c.MaxTransactionKeys = DefaultMaxTransactionKeys
	}
	switch {
	case c.StatusInterval < 0 || c.StatusInterval > 10*time.Second:
		return c, fmt.Errorf("%w: StatusInterval %v: want between 0 (default 1s) and 10s", ErrInvalidConfig, c.StatusInterval)
	case c.StatusInterval == 0:
		c.StatusInterval = DefaultStatusInterval
	}
	switch {
	case c.SlotActiveRetry < 0:
		return c, fmt.Errorf("%w: SlotActiveRetry %v is negative", ErrInvalidConfig, c.SlotActiveRetry)
	case c.SlotActiveRetry == 0:
		c.SlotActiveRetry = DefaultSlotActiveRetry
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
