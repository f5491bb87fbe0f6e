package chaos

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in      string
		want    []Kind
		wantErr bool
	}{
		{"", nil, false},
		{"all", nil, false},
		{"failover,kill", []Kind{Failover, Kill}, false},
		{"kill", []Kind{Kill}, false},
		{"slow, cut,slow", []Kind{Slow, Cut}, false},
		{"kill,flood", nil, true},
		{"trim,rdb,oom,xdel,unlogged,poison", LogKinds, false},
	}
	for _, tc := range tests {
		got, err := ParseKinds(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseKinds(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if tc.wantErr && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseKinds(%q) error %v does not wrap ErrInvalidConfig", tc.in, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseKinds(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestConfigResolve(t *testing.T) {
	var c Config
	if err := c.resolve(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if c.Duration != 30*time.Second || c.Nodes != 4 || c.MaxStaleness != time.Second || c.Topology != Standalone ||
		!slices.Equal(c.Faults, Standalone.Kinds()) || c.Seed == 0 {
		t.Errorf("defaults = %+v, want 30s, 4 nodes, MaxStaleness 1s, standalone, every standalone kind, a seed", c)
	}
	for _, tc := range []struct {
		topo Topology
		want []Kind
	}{
		{Cluster, append([]Kind{Kill, Failover, Cut}, LogKinds...)},
		{ClusterSharded, []Kind{Kill, Failover, Cut}},
		{Sentinel, []Kind{Kill, Cut}},
	} {
		c := Config{Topology: tc.topo}
		if err := c.resolve(); err != nil {
			t.Fatalf("Config{Topology: %s}: %v", tc.topo, err)
		}
		if !slices.Equal(c.Faults, tc.want) {
			t.Errorf("%s default faults = %v, want %v", tc.topo, c.Faults, tc.want)
		}
	}
	bad := []Config{
		{Duration: time.Second},
		{Nodes: 1},
		{Keys: -1},
		{ReadRate: -1},
		{Slack: -time.Second},
		{Topology: "ring"},
		{Topology: Cluster, Faults: []Kind{Slow}},
		{Faults: []Kind{Failover}},
		{Topology: Sentinel, Faults: []Kind{RDB}},
	}
	for _, b := range bad {
		if err := b.resolve(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("resolve(%+v) = %v, want ErrInvalidConfig", b, err)
		}
	}
}

func TestPermuteGivesEachNodeItsOwnOrder(t *testing.T) {
	for _, n := range []int{3, 6} {
		s := make([]string, n)
		for i := range s {
			s[i] = string(rune('a' + i))
		}
		seen := map[string]int{}
		for i := 0; i < 4; i++ {
			p := permute(s, i)
			if got, want := len(p), n; got != want {
				t.Fatalf("len(permute(%d addrs, %d)) = %d, want %d", n, i, got, want)
			}
			key := strings.Join(p, ",")
			if j, dup := seen[key]; dup {
				t.Errorf("permute(%d addrs): nodes %d and %d get the same order %s (they would share connections)", n, j, i, key)
			}
			seen[key] = i
			sorted := slices.Clone(p)
			slices.Sort(sorted)
			if !slices.Equal(sorted, s) {
				t.Errorf("permute(%v, %d) = %v, not a permutation", s, i, p)
			}
		}
	}
}
