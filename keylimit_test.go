package invacache_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
)

// A key longer than an invalidation message carries is refused at the call
// (Set and Delete with invalidation) with ErrInvalidArgument, changing
// nothing, instead of reaching every peer as an envelope they reject and
// answer with a whole-cache clear. The longest key that fits still goes.
func TestKeyTooLongToBroadcastIsRefused(t *testing.T) {
	leakcheck.Check(t)
	nodes := newNodes(t, 2, nil)
	w, peer := nodes[0], nodes[1]
	long := strings.Repeat("k", wire.MaxKeyBytes+1)
	fits := strings.Repeat("f", wire.MaxKeyBytes)
	for _, n := range nodes {
		n.Set("other", "v")
		n.Set(fits, "v")
		n.Set(long, "local")
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Set", func() error { return w.Set(long, "v2", option.WithInvalidation()) }},
		{"Delete", func() error { return w.Delete(long, option.WithDeleteInvalidation()) }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, invacache.ErrInvalidArgument) {
			t.Fatalf("%s(key of %d bytes) error = %v, want one wrapping ErrInvalidArgument", c.name, len(long), err)
		}
		for _, want := range []string{"invacache: " + c.name, strconv.Itoa(len(long)), strconv.Itoa(wire.MaxKeyBytes)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error %q does not contain %q", c.name, err, want)
			}
		}
	}
	if !holds(w, long, "local") {
		t.Errorf("a refused call changed the writer's entry")
	}
	if err := w.Delete(fits, option.WithDeleteInvalidation()); err != nil {
		t.Fatalf("Delete(key of %d bytes): %v", len(fits), err)
	}
	flush(t, w.Cache)
	eventually(t, 5*time.Second, "peer drops the longest key that fits", missing(peer, fits))
	st := peer.Stats().Invalidation
	if st.Malformed != 0 || st.ClearsByReason["malformed"] != 0 {
		t.Errorf("peer saw a malformed message: Malformed %d, clears %v", st.Malformed, st.ClearsByReason)
	}
	if !holds(peer, "other", "v") || !holds(peer, long, "local") {
		t.Errorf("peer lost entries it was not told to drop")
	}
	if got := w.Set(long, "plain"); got != nil {
		t.Errorf("plain Set(long key) = %v, want nil (no broadcast, no limit)", got)
	}
}
