package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// Tests of issue 18: the log must never lie. Each arranges a log that does
// not hold every message a replica missed and checks that the catch-up
// fails with ErrNoContinuity (the engine then clears).

// logIDs returns the ids of the log's entries, marker first.
func logIDs(t testing.TB, srv *redisserver.Server, d *Driver) []string {
	t.Helper()
	return strings.Fields(do(t, srv, "EVAL", "local r = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do table.insert(r, e[1]) end return table.concat(r, ' ')", "1", d.streamKey))
}

// publishN publishes n keys "k0".."k<n-1>", 100 per call.
func publishN(t testing.TB, d *Driver, n int) {
	t.Helper()
	for i := 0; i < n; i += 100 {
		var batch []string
		for j := i; j < min(i+100, n); j++ {
			batch = append(batch, "k"+strconv.Itoa(j))
		}
		publish(t, d, batch...)
	}
}

// Issue case 1: the log is trimmed while a catch-up reads it, past the
// entry the catch-up has reached: the next chunk must not start further on.
func TestReplayTrimDuringCatchUp(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	h0 := head(t, d)
	publishN(t, d, 1000)
	ids := logIDs(t, srv, d)[1:] // without the marker
	if len(ids) != 1000 {
		t.Fatalf("%d entries, want 1000", len(ids))
	}
	n := 0
	_, err := d.Replay(context.Background(), h0, func(invalidation.LogPos, []byte) error {
		if n++; n == 512 {
			do(t, srv, "XTRIM", d.streamKey, "MINID", ids[700])
		}
		return nil
	})
	if !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Fatalf("Replay passed %d entries, err %v; want ErrNoContinuity (188 entries were trimmed unread)", n, err)
	}
	if n > 512 {
		t.Errorf("Replay passed %d entries; want it to stop at the chunk after the trim (512)", n)
	}
	t.Log(err)
}

// Issue case 3: the cursor's own entry is XDELed, then the log is trimmed
// past it: max-deleted-entry-id still names the cursor (trimming does not
// move it), so only the entries themselves tell.
func TestReplayCursorDeletedThenTrimmed(t *testing.T) {
	leakcheck.Check(t)
	srv, d, _ := linked(t, redisserver.Options{}, Config{}, 0)
	head(t, d)
	publish(t, d, "a", "b", "c", "d")
	ids := logIDs(t, srv, d)[1:]
	id, _ := wire.ParseLogID(ids[0])
	cur := invalidation.LogPos{Epoch: do(t, srv, "GET", d.epochKey), ID: id}
	do(t, srv, "XDEL", d.streamKey, ids[0])
	do(t, srv, "XTRIM", d.streamKey, "MINID", ids[2]) // b trimmed, unseen by max-deleted-entry-id
	got, _, err := replayAll(t, d, cur)
	if !errors.Is(err, invalidation.ErrNoContinuity) {
		t.Fatalf("Replay = %d entries (%v), err %v; want ErrNoContinuity", len(got), got, err)
	}
	t.Log(err)
}
