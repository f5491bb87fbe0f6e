package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/config"
	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

func invalidateCommand() command {
	return command{
		name:    "invalidate",
		summary: "purge keys (or --clear everything) on every cache node, sent in the project's wire format",
		usage:   "[--redis ADDR] [--channel CH] (KEY... | --clear)",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` (host:port; comma-separated for a cluster) (default \"localhost:6379\")")
			clear := fs.Bool("clear", false, "clear every node's whole cache instead of dropping keys")
			raw := fs.Bool("raw", false, "publish each key as a bare payload (the original format) instead of an envelope, outside the replay log (it sets the log's unlogged mark: nodes away clear)")
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

func runInvalidate(ctx context.Context, e *env, s settings, keys []string, clear, raw bool) error {
	failures := &lastErr{}
	opts := []redisdriver.Option{redisdriver.WithLogger(slog.New(failures))}
	if inv := s.cache.Invalidation; inv != nil && inv.MaxMessageBytes > 0 {
		opts = append(opts, redisdriver.WithMaxMessageBytes(inv.MaxMessageBytes))
	}
	// The library's publish-only handle: the client, TLS, envelope, outbox,
	// cluster routing and replay log of a cache's own broadcasts.
	p, err := redisdriver.NewPublisher(s.redis, opts...)
	if err != nil {
		if errors.Is(err, config.ErrInvalidConfig) {
			return err
		}
		return redisError(s.addrString(), err)
	}
	defer p.Close()
	dt := s.redis.DialTimeout
	if dt <= 0 {
		dt = redisdriver.DefaultDialTimeout
	}
	// One clear sentence when the server does not answer or refuses the
	// credentials (the publisher itself would retry until the deadline).
	pctx, cancel := context.WithTimeout(ctx, dt+time.Second)
	defer cancel()
	client := p.Client()
	if err := client.Ping(pctx).Err(); err != nil {
		return redisError(s.addrString(), err)
	}

	var messages uint64
	switch {
	case raw:
		// The original format, as `redis-cli publish` sends it: bare
		// payloads outside the envelope and the replay log. Sent by a
		// driver without the log, which also sets the log's unlogged mark,
		// so a node away now clears instead of catching up without them.
		payloads := [][]byte{{}}
		if !clear {
			payloads = payloads[:0]
			for _, k := range keys {
				payloads = append(payloads, []byte(k))
			}
		}
		rc := s.redis
		rc.DisableReplay = true
		d, err := redisdriver.New(rc)
		if err != nil {
			return redisError(s.addrString(), err)
		}
		defer d.Close()
		if err := d.Publish(pctx, payloads); err != nil {
			return redisError(s.addrString(), err)
		}
		messages = uint64(len(payloads))
	default:
		if clear {
			err = p.Clear(pctx)
		} else {
			err = p.Invalidate(pctx, keys...)
		}
		if err != nil {
			return redisError(s.addrString(), failures.or(err))
		}
		messages = p.Stats().MessagesSent
		if lg := p.Stats().Log; lg.Unlogged > 0 {
			// Delivered live, but a replica away now cannot catch up on it.
			mark := "the unlogged mark makes replicas away now clear on return"
			if lg.Unmarked > 0 {
				mark = "no mark could be set either: replicas away now may miss it until TTL"
			}
			fmt.Fprintf(e.stderr, "invacache invalidate: warning: Redis at %s refused the replay log (%s); published outside it: %s\n",
				s.addrString(), failures.or(errors.New("see the driver README for the permissions the log needs")), mark)
		}
	}
	what := fmt.Sprintf("%d key(s)", len(keys))
	if clear {
		what = "clear"
	}
	format := fmt.Sprintf("envelope, origin %016x, seq 1..%d", p.Origin(), messages)
	if raw {
		format = "raw payload"
	}
	fmt.Fprintf(e.stdout, "published %d message(s) (%s; %s) to %q on %s: %d subscriber(s) on the channel\n",
		messages, what, format, p.Channel(), s.addrString(), subscribers(pctx, client, p.Channel(), s.redis.ShardedPubSub))
	return nil
}

// subscribers counts the channel's subscribers (on the node asked, for a
// cluster); -1 when Redis does not say.
func subscribers(ctx context.Context, c redis.UniversalClient, channel string, sharded bool) int64 {
	var m map[string]int64
	var err error
	if sharded {
		m, err = c.PubSubShardNumSub(ctx, channel).Result()
	} else {
		m, err = c.PubSubNumSub(ctx, channel).Result()
	}
	if err != nil {
		return -1
	}
	return m[channel]
}
