package invalidation

import (
	"cmp"
	"context"
	"errors"
	"strconv"
)

// ErrNoContinuity is wrapped by a Replayer's error when the log cannot prove
// that it still holds every entry after the asked position: entries after it
// were trimmed, the log was recreated (a new epoch: a restart without
// persistence), or the log ends before the position (a failover to a replica
// that lost the tail). The node must then clear its cache.
var ErrNoContinuity = errors.New("invalidation: replay log cannot prove continuity")

// ErrReplayDisabled is wrapped by a Replayer's error when the driver's log is
// turned off (the Redis driver's DisableReplay): there is nothing to replay
// and the node clears its cache on a gap, as without a Replayer. Wrappers of
// a driver (a tap, a hook) implement Replayer by forwarding and return it
// when the wrapped driver is not a Replayer.
var ErrReplayDisabled = errors.New("invalidation: replay log is disabled")

// LogID is the id of one entry of a driver's replay log. Within one log
// (one Epoch) a later entry has a greater id. The Redis driver uses the
// stream entry id "Ms-Seq".
type LogID struct {
	Ms, Seq uint64
}

// Compare returns -1, 0 or +1 as a is before, equal to or after b.
func (a LogID) Compare(b LogID) int {
	if c := cmp.Compare(a.Ms, b.Ms); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// IsZero reports whether a is the zero id (before every entry).
func (a LogID) IsZero() bool { return a == LogID{} }

// String formats a as a Redis stream id, "Ms-Seq".
func (a LogID) String() string {
	return strconv.FormatUint(a.Ms, 10) + "-" + strconv.FormatUint(a.Seq, 10)
}

// LogPos is a position in a replay log: which incarnation of the log
// (Epoch, set when the log is created; a log recreated after its data was
// lost has a new one) and the id of an entry in it.
type LogPos struct {
	Epoch string
	ID    LogID
}

// String formats p as "Epoch/Ms-Seq", for logs.
func (p LogPos) String() string { return p.Epoch + "/" + p.ID.String() }

// Replayer is implemented by drivers that keep a replayable log of what they
// publish, written atomically with each publish, so a node that may have
// missed messages can catch up instead of clearing its cache. Such a driver
// delivers every logged payload through Handler.HandleLogMessage with its
// position. A driver whose log is turned off returns ErrReplayDisabled from
// both methods (or does not implement Replayer).
//
// The engine calls both methods from inside Handler calls, on the
// subscription's delivery goroutine: they must not wait for that goroutine
// (read the log on a connection other than the subscribed one). ctx ends
// when the engine closes.
type Replayer interface {
	// LogHead returns the position of the log's last entry now (the zero
	// LogID with the log's epoch when it is empty). The engine reads it
	// before it clears its cache and starts its cursor there: every entry
	// up to the head was published before the clear.
	LogHead(ctx context.Context) (LogPos, error)

	// Replay calls fn, in order, for every entry after `after`, up to the
	// log's end as it stands when Replay starts, reading in bounded chunks
	// (the whole backlog is never held in memory). It returns the position
	// of the last entry passed to fn (`after` when there was none). If the
	// log cannot prove that it holds every entry after `after` (another
	// epoch, entries after it trimmed, a log that ends before it), Replay
	// returns an error wrapping ErrNoContinuity, before calling fn where it
	// can tell up front; any other error (the network) means the node cannot
	// tell and clears. When fn returns an error, Replay stops at once and
	// returns an error wrapping it (the engine stops at a malformed entry).
	// fn's payload is only valid during the call.
	Replay(ctx context.Context, after LogPos, fn func(pos LogPos, payload []byte) error) (LogPos, error)
}
