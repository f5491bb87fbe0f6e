package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
)

func invalidateCommand() command {
	return command{
		name:    "invalidate",
		summary: "purge keys (or --clear everything) on every cache node, sent in the project's wire format",
		usage:   "[--redis ADDR] [--channel CH] (KEY... | --clear)",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` (host:port; comma-separated for a cluster) (default \"localhost:6379\")")
			clear := fs.Bool("clear", false, "clear every node's whole cache instead of dropping keys")
			raw := fs.Bool("raw", false, "publish each key as a bare payload (the original format) instead of an envelope")
			return func(ctx context.Context, keys []string) error {
				switch {
				case *clear && len(keys) > 0:
					return usagef("--clear takes no keys")
				case !*clear && len(keys) == 0:
					return usagef("no keys given (or use --clear)")
				}
				for _, k := range keys {
					if k == "" {
						return usagef("empty key (an empty payload would clear every node; use --clear)")
					}
				}
				s, err := cf.resolve()
				if err != nil {
					return err
				}
				s = s.withDefaultAddress()
				return runInvalidate(ctx, e, s, keys, *clear, *raw)
			}
		},
	}
}

// randomOrigin returns a non-zero random node id, so peers track this
// purge's sequence numbers apart from every cache node's.
func randomOrigin() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("random origin: %w", err)
		}
		if o := binary.LittleEndian.Uint64(b[:]); o != 0 {
			return o, nil
		}
	}
}

func runInvalidate(ctx context.Context, e *env, s settings, keys []string, clear, raw bool) error {
	var payloads [][]byte
	var origin uint64
	switch {
	case raw && clear:
		payloads = [][]byte{{}}
	case raw:
		for _, k := range keys {
			payloads = append(payloads, []byte(k))
		}
	default:
		var err error
		if origin, err = randomOrigin(); err != nil {
			return err
		}
		maxBytes := config.DefaultMaxMessageBytes
		if inv := s.cache.Invalidation; inv != nil && inv.MaxMessageBytes > 0 {
			maxBytes = inv.MaxMessageBytes
		}
		payloads, _, _ = wire.AppendBatches(nil, nil, origin, 1, clear, keys, maxBytes)
	}

	c, err := connect(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	var receivers int64
	for _, p := range payloads {
		var n int64
		if s.redis.ShardedPubSub {
			n, err = c.SPublish(ctx, s.redis.Channel, p).Result()
		} else {
			n, err = c.Publish(ctx, s.redis.Channel, p).Result()
		}
		if err != nil {
			return redisError(s.addrString(), err)
		}
		receivers = max(receivers, n)
	}
	what := fmt.Sprintf("%d key(s)", len(keys))
	if clear {
		what = "clear"
	}
	format := fmt.Sprintf("envelope, origin %016x, seq 1..%d", origin, len(payloads))
	if raw {
		format = "raw payload"
	}
	fmt.Fprintf(e.stdout, "published %d message(s) (%s; %s) to %q on %s: %d subscriber(s) received it\n",
		len(payloads), what, format, s.redis.Channel, s.addrString(), receivers)
	return nil
}
