package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/redis/go-redis/v9"
)

type monitorOptions struct {
	duration time.Duration
	count    int
	maxKeys  int
	sharded  bool
}

func monitorCommand() command {
	return command{
		name:    "monitor",
		summary: "decode the invalidation channel live: origin, sequence, operation, keys; flags raw keys, malformed payloads and sequence gaps",
		usage:   "[--redis ADDR] [--channel CH] [--duration D] [--count N]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` (host:port; comma-separated for a cluster) (default \"localhost:6379\")")
			var o monitorOptions
			fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
			fs.IntVar(&o.count, "count", 0, "stop after this many messages (default: no limit)")
			fs.IntVar(&o.maxKeys, "max-keys", 10, "keys printed per operation before eliding the rest")
			fs.BoolVar(&o.sharded, "sharded", false, "use SSUBSCRIBE (sharded Pub/Sub, Redis 7 cluster)")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if o.duration < 0 || o.count < 0 || o.maxKeys < 1 {
					return usagef("--duration/--count must not be negative, --max-keys at least 1")
				}
				s, err := cf.resolve()
				if err != nil {
					return err
				}
				s = s.withDefaultAddress()
				if o.sharded {
					s.redis.ShardedPubSub = true
				}
				return runMonitor(ctx, e, s, o)
			}
		},
	}
}

// monitorStats counts what the monitor saw.
type monitorStats struct {
	messages, envelopes, raw, malformed int
	keys, clears                        int
	gaps, lost, replays                 int
	origins                             map[uint64]uint64 // origin → last sequence seen
}

func runMonitor(ctx context.Context, e *env, s settings, o monitorOptions) error {
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	c, err := connect(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	var sub *redis.PubSub
	if s.redis.ShardedPubSub {
		sub = c.SSubscribe(ctx, s.redis.Channel)
	} else {
		sub = c.Subscribe(ctx, s.redis.Channel)
	}
	// Receive blocks in a socket read that a context does not interrupt:
	// closing the PubSub does.
	stopped := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-ctx.Done():
			sub.Close()
		case <-stopped:
		}
	}()
	defer func() {
		close(stopped)
		<-watcherDone
		sub.Close()
	}()

	st := &monitorStats{origins: map[uint64]uint64{}}
	w := e.stdout
	afterReconnect := false
	backoff := 50 * time.Millisecond
	for o.count == 0 || st.messages < o.count {
		m, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(w, "%s  LINK DOWN: %s (reconnecting; messages published meanwhile are lost)\n", stamp(), oneLine(err.Error()))
			afterReconnect = true
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				fmt.Fprintf(w, "%s  subscribed to %q on %s\n", stamp(), m.Channel, s.addrString())
			}
		case *redis.Message:
			st.messages++
			monitorPayload(w, st, []byte(m.Payload), o.maxKeys, afterReconnect)
			afterReconnect = false
		}
	}
	fmt.Fprintf(w, "%d message(s): %d envelope(s) (%d key(s), %d clear(s)), %d raw, %d malformed; %d gap(s) (%d message(s) lost), %d replay(s); %d origin(s)\n",
		st.messages, st.envelopes, st.keys, st.clears, st.raw, st.malformed, st.gaps, st.lost, st.replays, len(st.origins))
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) || ctx.Err() == nil {
		return nil
	}
	return ctx.Err()
}

func stamp() string { return time.Now().Format("15:04:05.000") }

// monitorPayload prints one payload and updates the counters.
func monitorPayload(w io.Writer, st *monitorStats, p []byte, maxKeys int, afterReconnect bool) {
	msg, err := wire.Decode(p)
	if err != nil {
		st.malformed++
		fmt.Fprintf(w, "%s  MALFORMED %d bytes %s: %s\n", stamp(), len(p), preview(p, 48), oneLine(err.Error()))
		return
	}
	if msg.Raw {
		st.raw++
		if msg.Ops[0].Clear {
			st.clears++
			fmt.Fprintf(w, "%s  RAW clear (empty payload: every node clears its cache)\n", stamp())
		} else {
			st.keys++
			fmt.Fprintf(w, "%s  RAW key %s (no envelope: every node drops the key)\n", stamp(), strconv.Quote(msg.Ops[0].Keys[0]))
		}
		return
	}
	st.envelopes++
	if last, ok := st.origins[msg.Origin]; ok {
		switch {
		case msg.Seq == last+1:
		case msg.Seq > last+1:
			st.gaps++
			st.lost += int(msg.Seq - last - 1)
			why := ""
			if afterReconnect {
				why = " while the monitor was reconnecting"
			}
			fmt.Fprintf(w, "%s  GAP origin=%016x expected seq %d, got %d: %d message(s) lost%s (nodes clear their caches)\n",
				stamp(), msg.Origin, last+1, msg.Seq, msg.Seq-last-1, why)
		default:
			st.replays++
			fmt.Fprintf(w, "%s  REPLAY origin=%016x seq %d after %d (duplicate, or the origin restarted)\n", stamp(), msg.Origin, msg.Seq, last)
		}
	}
	if last, ok := st.origins[msg.Origin]; !ok || msg.Seq > last {
		st.origins[msg.Origin] = msg.Seq
	}
	var b strings.Builder
	for i, op := range msg.Ops {
		if i > 0 {
			b.WriteString("; ")
		}
		if op.Clear {
			st.clears++
			b.WriteString("clear")
			continue
		}
		st.keys += len(op.Keys)
		fmt.Fprintf(&b, "delete %d key(s):", len(op.Keys))
		for j, k := range op.Keys {
			if j == maxKeys {
				fmt.Fprintf(&b, " … (+%d more)", len(op.Keys)-maxKeys)
				break
			}
			b.WriteByte(' ')
			b.WriteString(quoteKey(k))
		}
	}
	fmt.Fprintf(w, "%s  origin=%016x seq=%d v%d %s\n", stamp(), msg.Origin, msg.Seq, msg.Version, b.String())
}

// quoteKey quotes a key only when it would be ambiguous in a space-separated list.
func quoteKey(k string) string {
	if k == "" || strings.ContainsAny(k, " \"\\") || strconv.Quote(k) != `"`+k+`"` {
		return strconv.Quote(k)
	}
	return k
}

// preview shows the first n bytes of p, escaped.
func preview(p []byte, n int) string {
	if len(p) <= n {
		return strconv.Quote(string(p))
	}
	return strconv.Quote(string(p[:n])) + "…"
}
