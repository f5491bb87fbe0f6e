package invacache

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// settings is a configuration after defaults and validation. NewCache builds
// it from a copy, so the caller's config is never modified.
type settings struct {
	shardCount    int
	capacity      int
	defaultTTL    time.Duration
	sweepInterval time.Duration
	logger        *slog.Logger
	inval         *invalSettings // nil: a local cache
}

type invalSettings struct {
	driver          invalidation.Driver // handed in by the user; nil means open spec
	spec            invalidation.Spec
	maxStaleness    time.Duration // 0: bound disabled
	outageStaleness time.Duration // 0: off
	gapStrategy     string
	backoffMin      time.Duration
	backoffMax      time.Duration
	maxMessageBytes int
	flushTimeout    time.Duration
	outboxMaxKeys   int
	outboxMaxBytes  int
}

func resolve(cfg config.InvaCacheConfig) (settings, error) {
	s := settings{logger: cfg.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	r, err := config.Resolve(cfg) // the one place the options are checked
	if err != nil {
		return s, fmt.Errorf("invacache: %w", err)
	}
	mem := r.Backend.InMemory
	s.capacity, s.shardCount, s.sweepInterval = mem.Capacity, mem.ShardCount, mem.SweeperInterval
	if mem.Ttl != "" {
		s.defaultTTL, _ = time.ParseDuration(mem.Ttl) // checked by Resolve
	}
	if ic := r.Invalidation; ic != nil {
		s.inval = &invalSettings{
			driver:          ic.Driver,
			maxStaleness:    ic.MaxStaleness,
			outageStaleness: ic.OutageStaleness,
			gapStrategy:     ic.GapStrategy,
			backoffMin:      ic.RetryBackoffMin,
			backoffMax:      ic.RetryBackoffMax,
			maxMessageBytes: ic.MaxMessageBytes,
			flushTimeout:    ic.FlushTimeout,
			outboxMaxKeys:   ic.OutboxMaxKeys,
			outboxMaxBytes:  ic.OutboxMaxBytes,
		}
		if ic.Driver == nil {
			s.inval.spec = invalidation.Spec{Type: ic.Type, Options: ic.DriverConfig, Logger: s.logger}
		}
	}
	return s, nil
}
