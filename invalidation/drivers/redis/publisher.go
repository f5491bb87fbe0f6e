package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
)

// Publisher invalidates keys in the caches of every node on a channel
// without holding a cache itself: for a service that writes to the
// database and must invalidate every replica's copy. Its broadcasts are a
// cache's broadcasts: the same envelope (with an origin id of its own and
// per-origin sequence numbers, so receivers detect a lost message), the same
// outbox (duplicate keys coalesce, a clear subsumes the keys queued with it,
// a failed publish is retried with backoff until Close), and the driver's
// one Publish (routing to the channel's cluster master, the replay log). It
// never subscribes, so it holds no subscription connection. It shares the
// publish pool of drivers built in the process from equal settings.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	d   *Driver
	eng *engine.Engine
}

// NewPublisher returns a publisher for cfg's channel (the settings of New,
// and the options WithLogger and WithMaxMessageBytes). It does not connect
// (unlike New, it does not probe the user's permissions): the first
// Invalidate or Clear does. A publish Redis refuses is retried, reported
// on the logger (Warn) and in Stats, and named by the error of an
// Invalidate or Clear whose ctx ends first. Invalid settings return an error
// naming the field and wrapping config.ErrInvalidConfig.
func NewPublisher(cfg Config, opts ...Option) (*Publisher, error) {
	d, err := New(cfg, append(opts, func(o *options) { o.noProbe = true })...)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	eng, err := engine.NewPublisher(engine.Config{Driver: d, Logger: o.logger, MaxMessageBytes: o.maxMessageBytes})
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("redis: publisher: %w", err)
	}
	return &Publisher{d: d, eng: eng}, nil
}

// ErrInvalidArgument is wrapped by Invalidate's error for a key longer than
// an invalidation message carries (1 MiB less 64 bytes). It is
// invacache.ErrInvalidArgument.
var ErrInvalidArgument = engine.ErrInvalidArgument

// Invalidate removes keys from every node's cache: it queues them and waits
// until they were published or ctx ends. When ctx ends first it returns an
// error wrapping ctx's, and the keys stay queued: they are published (retried
// with backoff) until Close. It returns ErrClosed after Close, and an error
// wrapping ErrInvalidArgument (queuing none of keys) when a key is too long
// to broadcast: every node would reject the message and clear its cache.
func (p *Publisher) Invalidate(ctx context.Context, keys ...string) error {
	if err := p.eng.BroadcastDelete(keys...); err != nil {
		return p.err(err)
	}
	return p.flush(ctx)
}

// Clear empties every node's cache; it waits like Invalidate.
func (p *Publisher) Clear(ctx context.Context) error {
	if err := p.eng.BroadcastClear(); err != nil {
		return p.err(err)
	}
	return p.flush(ctx)
}

func (p *Publisher) flush(ctx context.Context) error {
	if err := p.eng.Flush(ctx); err != nil {
		if ctx.Err() != nil {
			if last := p.d.lastPublishErr(); last != nil {
				return fmt.Errorf("redis: publisher: not published yet (still queued; the last attempt failed: %v): %w", last, ctx.Err())
			}
			return fmt.Errorf("redis: publisher: not published yet (still queued): %w", ctx.Err())
		}
		return p.err(err)
	}
	return nil
}

func (p *Publisher) err(err error) error {
	if errors.Is(err, engine.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("redis: publisher: %w", err)
}

// Channel returns the channel the publisher publishes to.
func (p *Publisher) Channel() string { return p.d.Channel() }

// Client returns the go-redis client the publisher publishes with (shared
// with drivers of equal settings; do not close it).
func (p *Publisher) Client() goredis.UniversalClient { return p.d.Client() }

// Origin returns the publisher's origin id, carried by each of its messages
// (invacache monitor shows it).
func (p *Publisher) Origin() uint64 { return p.eng.NodeID() }

// PublisherStats counts what a Publisher sent.
type PublisherStats struct {
	KeysSent        uint64 // keys in published messages (after coalescing)
	ClearsSent      uint64 // clears published
	MessagesSent    uint64 // payloads published
	PublishFailures uint64 // publish attempts that failed (each was retried)
	OutboxDepth     int    // keys (a clear counts 1) queued or being published
	// Log counts what the publishes did to the replay log (payloads sent
	// outside it, log resets; see LogStats).
	Log LogStats
}

// Stats returns a snapshot of the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	s := p.eng.Stats()
	return PublisherStats{
		KeysSent: s.KeysSent, ClearsSent: s.ClearsSent, MessagesSent: s.MessagesSent,
		PublishFailures: s.PublishFailures, OutboxDepth: s.OutboxDepth, Log: p.d.LogStats(),
	}
}

// Close publishes what is still queued for at most the default flush
// timeout (config.DefaultFlushTimeout), then releases the connections. A
// broadcast still unsent then is lost and reported by the error. Close is
// idempotent.
func (p *Publisher) Close() error {
	err := p.eng.Close()
	if derr := p.d.Close(); derr != nil {
		err = errors.Join(err, derr)
	}
	if err != nil {
		return fmt.Errorf("redis: publisher: close: %w", err)
	}
	return nil
}
