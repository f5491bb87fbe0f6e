package chaos

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in      string
		want    []Kind
		wantErr bool
	}{
		{"", AllKinds, false},
		{"all", AllKinds, false},
		{"kill", []Kind{Kill}, false},
		{"slow, cut,slow", []Kind{Slow, Cut}, false},
		{"kill,flood", nil, true},
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
	if c.Duration != 30*time.Second || c.Nodes != 4 || c.MaxStaleness != time.Second || !slices.Equal(c.Faults, AllKinds) || c.Seed == 0 {
		t.Errorf("defaults = %+v, want 30s, 4 nodes, MaxStaleness 1s, every kind, a seed", c)
	}
	bad := []Config{
		{Duration: time.Second},
		{Nodes: 1},
		{Keys: -1},
		{ReadRate: -1},
		{Slack: -time.Second},
	}
	for _, b := range bad {
		if err := b.resolve(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("resolve(%+v) = %v, want ErrInvalidConfig", b, err)
		}
	}
}
