package invalidation

import (
	"cmp"
	"context"
	"errors"
)

// ErrNoContinuity is wrapped by a Replayer's error when the log cannot prove
// that it still holds every entry after the asked position: entries after it
// were trimmed, the log was recreated (a new epoch: a restart without
// persistence), or the log ends before the position (a failover to a replica
// that lost the tail). The node must then clear its cache.
var ErrNoContinuity = errors.New("invalidation: replay log cannot prove continuity")

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

// LogPos is a position in a replay log: which incarnation of the log
// (Epoch, set when the log is created; a log recreated after its data was
// lost has a new one) and the id of an entry in it.
type LogPos struct {
	Epoch string
	ID    LogID
}

// Replayer is implemented by drivers that keep a replayable log of what they
// publish, written atomically with each publish, so a node that may have
// missed messages can catch up instead of clearing its cache. A driver
// whose log is turned off does not implement it (or its Replay returns
// ErrNoContinuity).
type Replayer interface {
	// LogHead returns the position of the log's last entry now (the zero
	// LogID with the log's epoch when it is empty). A node that has just
	// cleared starts its cursor there.
	LogHead(ctx context.Context) (LogPos, error)

	// Replay calls fn, in order, for every entry after `after`, up to the
	// log's end as it stands when Replay starts, reading in bounded chunks.
	// It returns the position of the last entry passed to fn (`after` when
	// there was none). If the log cannot prove that it holds every entry
	// after `after`, Replay returns an error wrapping ErrNoContinuity; any
	// other error (the network) means the node cannot tell and must treat
	// it like a discontinuity or retry later. fn's payload is only valid
	// during the call.
	Replay(ctx context.Context, after LogPos, fn func(pos LogPos, payload []byte)) (LogPos, error)
}
