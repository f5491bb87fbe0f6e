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
	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/redis/go-redis/v9"
)

type monitorOptions struct {
	duration time.Duration
	count    int
	maxKeys  int
	json     bool
}

func monitorCommand() command {
	return command{
		name:    "monitor",
		summary: "decode the invalidation channel live: replay log id, origin, sequence, operation, keys; flags raw keys, malformed payloads, sequence gaps and replay log resets",
		usage:   "[--redis ADDR] [--channel CH] [--duration D] [--count N]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` (host:port; comma-separated for a cluster) (default \"localhost:6379\")")
			var o monitorOptions
			fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
			fs.IntVar(&o.count, "count", 0, "stop after this many messages (default: no limit)")
			fs.IntVar(&o.maxKeys, "max-keys", 10, "keys printed per operation before eliding the rest (text output; --json lists every key)")
			fs.BoolVar(&o.json, "json", false, "print one JSON object per line (event: subscribed, message, raw_key, raw_clear, malformed, gap, replay, log_reset, link_down, summary)")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if o.duration < 0 || o.count < 0 || o.maxKeys < 1 {
					switch {
					case o.duration < 0:
						return usagef("--duration: %v is negative", o.duration)
					case o.count < 0:
						return usagef("--count: %d is negative", o.count)
					}
					return usagef("--max-keys: %d, want at least 1", o.maxKeys)
				}
				s, err := cf.resolve()
				if err != nil {
					return err
				}
				s = s.withDefaultAddress()
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

	// The replay log: payloads that came in a log frame, the position of
	// the last one, and how often the log's epoch changed (recreated).
	logged, logResets int
	lastLog           *invalidation.LogPos
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
	out := &monitorPrinter{w: e.stdout, json: o.json, maxKeys: o.maxKeys}
	afterReconnect := false
	backoff := 50 * time.Millisecond
	for o.count == 0 || st.messages < o.count {
		m, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			out.event(monitorEvent{Event: "link_down", Error: oneLine(err.Error())},
				"LINK DOWN: %s (reconnecting; messages published meanwhile are lost)", oneLine(err.Error()))
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
				out.event(monitorEvent{Event: "subscribed", Channel: m.Channel, Server: s.addrString()},
					"subscribed to %q on %s", m.Channel, s.addrString())
			}
		case *redis.Message:
			st.messages++
			monitorPayload(out, st, []byte(m.Payload), afterReconnect)
			afterReconnect = false
		}
	}
	if out.json {
		out.writeJSON(monitorSummary{Event: "summary", Messages: st.messages, Envelopes: st.envelopes, Keys: st.keys, Clears: st.clears,
			Raw: st.raw, Malformed: st.malformed, Gaps: st.gaps, Lost: st.lost, Replays: st.replays, Origins: len(st.origins),
			Logged: st.logged, LogResets: st.logResets})
	} else {
		fmt.Fprintf(out.w, "%d message(s): %d envelope(s) (%d key(s), %d clear(s)), %d raw, %d malformed; %d gap(s) (%d message(s) lost), %d replay(s); %d origin(s); %d logged, %d log reset(s)\n",
			st.messages, st.envelopes, st.keys, st.clears, st.raw, st.malformed, st.gaps, st.lost, st.replays, len(st.origins), st.logged, st.logResets)
	}
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) || ctx.Err() == nil {
		return nil
	}
	return ctx.Err()
}

// monitorPrinter writes the monitor's events as text lines or, with
// --json, as one JSON object per line.
type monitorPrinter struct {
	w       io.Writer
	json    bool
	maxKeys int // keys per operation in text output

	// log is the replay log position of the payload being printed (nil
	// when it came without a log frame); every event it causes carries it.
	log *invalidation.LogPos
}

// monitorEvent is one line of monitor --json output.
type monitorEvent struct {
	Time        string      `json:"time"` // RFC 3339, nanoseconds
	Event       string      `json:"event"`
	LogEpoch    string      `json:"log_epoch,omitempty"`      // the payload's replay log position, when it came in a log frame
	LogID       string      `json:"log_id,omitempty"`         // stream entry id "ms-seq"
	PrevEpoch   string      `json:"prev_log_epoch,omitempty"` // log_reset
	Channel     string      `json:"channel,omitempty"`
	Server      string      `json:"server,omitempty"`
	Origin      string      `json:"origin,omitempty"` // 16 hex digits
	Seq         uint64      `json:"seq,omitempty"`
	Version     int         `json:"version,omitempty"`
	Ops         []monitorOp `json:"ops,omitempty"`
	Key         *string     `json:"key,omitempty"`          // raw_key
	ExpectedSeq uint64      `json:"expected_seq,omitempty"` // gap
	Lost        uint64      `json:"lost,omitempty"`         // gap
	Reconnected bool        `json:"while_reconnecting,omitempty"`
	LastSeq     uint64      `json:"last_seq,omitempty"` // replay
	Bytes       *int        `json:"bytes,omitempty"`    // malformed
	Preview     string      `json:"preview,omitempty"`  // malformed: the first bytes, quoted
	Error       string      `json:"error,omitempty"`
}

// monitorOp is one operation of an envelope.
type monitorOp struct {
	Op   string   `json:"op"` // "delete" or "clear"
	Keys []string `json:"keys,omitempty"`
}

// monitorSummary is the last line of monitor --json output.
type monitorSummary struct {
	Event     string `json:"event"` // "summary"
	Messages  int    `json:"messages"`
	Envelopes int    `json:"envelopes"`
	Keys      int    `json:"keys"`
	Clears    int    `json:"clears"`
	Raw       int    `json:"raw"`
	Malformed int    `json:"malformed"`
	Gaps      int    `json:"gaps"`
	Lost      int    `json:"lost"`
	Replays   int    `json:"replays"`
	Origins   int    `json:"origins"`
	Logged    int    `json:"logged"`     // payloads that came in a replay log frame
	LogResets int    `json:"log_resets"` // changes of the log's epoch
}

// event prints ev, or the text line format/args after a time stamp.
func (p *monitorPrinter) event(ev monitorEvent, format string, args ...any) {
	now := time.Now()
	if p.json {
		ev.Time = now.Format(time.RFC3339Nano)
		if p.log != nil {
			ev.LogEpoch, ev.LogID = p.log.Epoch, p.log.ID.String()
		}
		p.writeJSON(ev)
		return
	}
	log := ""
	if p.log != nil {
		log = "log=" + p.log.String() + " "
	}
	fmt.Fprintf(p.w, "%s  %s%s\n", now.Format("15:04:05.000"), log, fmt.Sprintf(format, args...))
}

func (p *monitorPrinter) writeJSON(v any) { writeJSONLine(p.w, v) }

func origin(o uint64) string { return fmt.Sprintf("%016x", o) }

// monitorPayload prints one payload and updates the counters. A payload in
// a replay log frame is decoded inside it, and its events carry its log
// position.
func monitorPayload(out *monitorPrinter, st *monitorStats, p []byte, afterReconnect bool) {
	out.log = nil
	if wire.IsFrame(p) {
		pos, inner, ok := wire.DecodeFrame(p)
		if !ok {
			st.malformed++
			n := len(p)
			out.event(monitorEvent{Event: "malformed", Bytes: &n, Preview: preview(p, 48), Error: "not a well-formed replay log frame"},
				"MALFORMED %d bytes %s: not a well-formed replay log frame (nodes treat it as a gap)", len(p), preview(p, 48))
			return
		}
		st.logged++
		out.log = &pos
		if st.lastLog != nil && st.lastLog.Epoch != pos.Epoch {
			st.logResets++
			out.event(monitorEvent{Event: "log_reset", PrevEpoch: st.lastLog.Epoch},
				"LOG RESET: epoch %s, was %s (the replay log was recreated: nodes that were away cannot catch up and clear)", pos.Epoch, st.lastLog.Epoch)
		}
		st.lastLog = &pos
		p = inner
	}
	msg, err := wire.Decode(p)
	if err != nil {
		st.malformed++
		n := len(p)
		out.event(monitorEvent{Event: "malformed", Bytes: &n, Preview: preview(p, 48), Error: oneLine(err.Error())},
			"MALFORMED %d bytes %s: %s", len(p), preview(p, 48), oneLine(err.Error()))
		return
	}
	if msg.Raw {
		st.raw++
		if msg.Ops[0].Clear {
			st.clears++
			out.event(monitorEvent{Event: "raw_clear"}, "RAW clear (empty payload: every node clears its cache)")
		} else {
			st.keys++
			k := msg.Ops[0].Keys[0]
			out.event(monitorEvent{Event: "raw_key", Key: &k}, "RAW key %s (no envelope: every node drops the key)", strconv.Quote(k))
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
			out.event(monitorEvent{Event: "gap", Origin: origin(msg.Origin), ExpectedSeq: last + 1, Seq: msg.Seq, Lost: msg.Seq - last - 1, Reconnected: afterReconnect},
				"GAP origin=%016x expected seq %d, got %d: %d message(s) lost%s (nodes clear their caches)", msg.Origin, last+1, msg.Seq, msg.Seq-last-1, why)
		default:
			st.replays++
			out.event(monitorEvent{Event: "replay", Origin: origin(msg.Origin), Seq: msg.Seq, LastSeq: last},
				"REPLAY origin=%016x seq %d after %d (duplicate, or the origin restarted)", msg.Origin, msg.Seq, last)
		}
	}
	if last, ok := st.origins[msg.Origin]; !ok || msg.Seq > last {
		st.origins[msg.Origin] = msg.Seq
	}
	var b strings.Builder
	ops := make([]monitorOp, 0, len(msg.Ops))
	for i, op := range msg.Ops {
		if i > 0 {
			b.WriteString("; ")
		}
		if op.Clear {
			st.clears++
			b.WriteString("clear")
			ops = append(ops, monitorOp{Op: "clear"})
			continue
		}
		st.keys += len(op.Keys)
		ops = append(ops, monitorOp{Op: "delete", Keys: op.Keys})
		fmt.Fprintf(&b, "delete %d key(s):", len(op.Keys))
		for j, k := range op.Keys {
			if j == out.maxKeys {
				fmt.Fprintf(&b, " … (+%d more)", len(op.Keys)-out.maxKeys)
				break
			}
			b.WriteByte(' ')
			b.WriteString(quoteKey(k))
		}
	}
	out.event(monitorEvent{Event: "message", Origin: origin(msg.Origin), Seq: msg.Seq, Version: int(msg.Version), Ops: ops},
		"origin=%016x seq=%d v%d %s", msg.Origin, msg.Seq, msg.Version, b.String())
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
