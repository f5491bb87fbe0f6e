package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFile(t *testing.T) {
	leakcheck.Check(t)
	yamlTyped := `
backend:
  inMemory:
    shardCount: 8
    capacity: 500
invalidation:
  type: redis
  maxStaleness: 1500ms
  redis:
    address: "10.0.0.1:6379"
    channel: app:inv
    dialTimeout: 2s
`
	jsonMap := `{"invalidation": {"type": "redis", "maxStaleness": "4s",
  "driverConfig": {"Address": "10.0.0.2:6380", "DB": 3, "Channel": "c2", "DialTimeout": "3s"}}}`
	tests := []struct {
		name, file, content string
		flags               []string
		wantAddr, wantCh    string
		wantDB              int
		wantStale, wantDial time.Duration
	}{
		{"yaml typed", "c.yaml", yamlTyped, nil, "10.0.0.1:6379", "app:inv", 0, 1500 * time.Millisecond, 2 * time.Second},
		{"json driverConfig", "c.json", jsonMap, nil, "10.0.0.2:6380", "c2", 3, 4 * time.Second, 3 * time.Second},
		{"flags override", "c.yml", yamlTyped, []string{"--redis", "h:1", "--channel", "x", "--db", "2"}, "h:1", "x", 2, 1500 * time.Millisecond, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			cf := addCommonFlags(fs, "")
			if err := fs.Parse(append([]string{"--config", writeFile(t, tc.file, tc.content)}, tc.flags...)); err != nil {
				t.Fatal(err)
			}
			s, err := cf.resolve()
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if s.redis.Address != tc.wantAddr || s.redis.Channel != tc.wantCh || s.redis.DB != tc.wantDB || s.redis.DialTimeout != tc.wantDial {
				t.Errorf("redis = %+v, want address %q channel %q db %d dialTimeout %v", s.redis, tc.wantAddr, tc.wantCh, tc.wantDB, tc.wantDial)
			}
			if got := s.cache.Invalidation.MaxStaleness; got != tc.wantStale {
				t.Errorf("MaxStaleness = %v, want %v", got, tc.wantStale)
			}
		})
	}
}

func TestConfigFileErrors(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name, file, content, want string
	}{
		{"unknown field", "c.json", `{"bogus": 1}`, "bogus: unknown key"},
		{"bad duration", "c.yaml", "invalidation:\n  type: redis\n  maxStaleness: soon\n", "invalidation.maxStaleness: \"soon\" is not a duration"},
		{"bad yaml", "c.yaml", "a: [", "YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oneErrorLine(t, []string{"invalidate", "--config", writeFile(t, tc.file, tc.content), "k"}, 1, tc.want)
		})
	}
	oneErrorLine(t, []string{"invalidate", "--config", filepath.Join(t.TempDir(), "missing.json"), "k"}, 1, "no such file")
	if !strings.Contains(defaultChannel, "invacache") {
		t.Errorf("defaultChannel = %q", defaultChannel)
	}
}

func TestParseInterspersed(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		args     []string
		wantPos  string
		wantAddr string
	}{
		{[]string{"k1", "--redis", "h:1", "k2"}, "[k1 k2]", "h:1"},
		{[]string{"--redis", "h:2", "k1"}, "[k1]", "h:2"},
		{[]string{"k1", "--", "--redis", "k2"}, "[k1 --redis k2]", ""},
		{nil, "[]", ""},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		addr := fs.String("redis", "", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := fmt.Sprint(pos); got != tc.wantPos || *addr != tc.wantAddr {
			t.Errorf("%v: positional %s, --redis %q; want %s, %q", tc.args, got, *addr, tc.wantPos, tc.wantAddr)
		}
	}
}
