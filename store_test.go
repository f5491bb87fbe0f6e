package invacache_test

import (
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// TestStatsCountAGetOrLoadMissOnce: a GetOrLoad that loads is one miss, and
// the Get that finds its value one hit.
func TestStatsCountAGetOrLoadMissOnce(t *testing.T) {
	leakcheck.Check(t)
	c := newLocal[int](t, config.InMemoryConfig{})
	if _, err := c.GetOrLoad("k", func(string) (int, time.Duration, error) { return 1, 0, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("k"); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Misses != 1 || st.Hits != 1 || st.Loads != 1 {
		t.Errorf("Stats misses/hits/loads = %d/%d/%d, want 1/1/1", st.Misses, st.Hits, st.Loads)
	}
}
