package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// TestCLIAndLibraryAgree: the CLI accepts exactly the configuration files
// that a program reading them with config.Parse and building a cache with
// NewCache accepts. The CLI's `invalidate` runs against a closed port, so an
// accepted file ends in "cannot reach Redis", a refused one in a
// configuration error.
func TestCLIAndLibraryAgree(t *testing.T) {
	leakcheck.Check(t)
	addr := closedAddr(t)
	files := []struct {
		name, file, content string
		accept              bool
	}{
		{"yaml typed", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    address: %s\n    dialTimeout: 100ms\n", true},
		{"json typed", "c.json", `{"invalidation": {"type": "redis", "redis": {"address": "%s", "dialTimeout": "100ms"}}}`, true},
		{"json map", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"Address": "%s", "DialTimeout": "100ms", "PoolSize": 2}}}`, true},
		{"json map nanoseconds", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"address": "%s", "dialTimeout": 100000000}}}`, true},
		{"yaml map", "c.yml", "invalidation:\n  type: redis\n  driverConfig:\n    Address: %s\n    DialTimeout: 100ms\n", true},
		{"typed typo", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    adress: %s\n", false},
		{"map typo", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"Adress": "%s"}}}`, false},
		{"map wrong type", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"Address": "%s", "DB": "one"}}}`, false},
		{"typed negative db", "c.json", `{"invalidation": {"type": "redis", "redis": {"address": "%s", "db": -1}}}`, false},
		{"typed negative pool", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    address: %s\n    poolSize: -1\n", false},
		{"map negative dial timeout", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"Address": "%s", "DialTimeout": "-1s"}}}`, false},
		{"negative staleness", "c.yaml", "invalidation:\n  type: redis\n  maxStaleness: -1s\n  redis: {address: %s}\n", false},
		{"bare number staleness", "c.json", `{"invalidation": {"type": "redis", "maxStaleness": 3, "redis": {"address": "%s"}}}`, false},
		{"unknown type", "c.yaml", "invalidation:\n  type: rediss\n  redis: {address: %s}\n", false},
		{"missing type", "c.json", `{"invalidation": {"driverConfig": {"Address": "%s"}}}`, false},
		{"unknown top-level key", "c.json", `{"invalidaton": {"type": "redis", "redis": {"address": "%s"}}}`, false},
		{"bad gap strategy", "c.yaml", "invalidation:\n  type: redis\n  gapStrategy: maybe\n  redis: {address: %s}\n", false},
		{"negative capacity", "c.yaml", "backend:\n  inMemory:\n    capacity: -1\ninvalidation:\n  type: redis\n  redis: {address: %s}\n", false},
	}
	for _, tc := range files {
		t.Run(tc.name, func(t *testing.T) {
			content := fmt.Sprintf(tc.content, addr)
			path := writeFile(t, tc.file, content)

			_, stderr, code := runCLI(t, "invalidate", "--config", path, "k")
			cliAccepts := !strings.Contains(stderr, "invalid config")
			if code == 0 || (cliAccepts && !strings.Contains(stderr, "cannot reach Redis")) {
				t.Fatalf("CLI: exit %d, stderr %q; want a config error or \"cannot reach Redis\"", code, stderr)
			}

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(data)
			if err == nil {
				var c invacache.Cache[string]
				if c, err = invacache.NewCache[string](cfg); err == nil {
					c.Close()
				}
			}
			libAccepts := err == nil

			if cliAccepts != libAccepts || libAccepts != tc.accept {
				t.Errorf("CLI accepts: %v (%q), library accepts: %v (%v); want both %v", cliAccepts, stderr, libAccepts, err, tc.accept)
			}
		})
	}
}
