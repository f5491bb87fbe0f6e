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

// TestCLIAndLibraryAgree: every command that reads --config (demo,
// invalidate, monitor, bench) accepts exactly the configuration files that a
// program reading them with config.Parse and building a cache with NewCache
// accepts, and refuses the others with the library's message. The Redis is a
// closed port, so an accepted file ends in "cannot reach Redis", a refused
// one in a configuration error.
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
		{"json map nanoseconds", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"address": "%s", "dialTimeout": 100000000}}}`, false}, // a bare number is no duration
		{"yaml map window too long", "c.yaml", "invalidation: {type: redis, driverConfig: {address: '%s', replayWindow: 48h}}", false},
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
		{"duration in words", "c.yaml", "invalidation:\n  type: redis\n  maxStaleness: 3 seconds\n  redis: {address: %s}\n", false},
		{"typed bare number dial timeout", "c.json", `{"invalidation": {"type": "redis", "redis": {"address": "%s", "dialTimeout": 5}}}`, false},
		{"map dial timeout of 5ns", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"Address": "%s", "DialTimeout": 5}}}`, false},
		{"capacity a string", "c.json", `{"backend": {"inMemory": {"capacity": "big"}}, "invalidation": {"type": "redis", "redis": {"address": "%s"}}}`, false},
		{"shards over capacity", "c.json", `{"backend": {"inMemory": {"capacity": 10, "shardCount": 20}}, "invalidation": {"type": "redis", "redis": {"address": "%s"}}}`, false},
		{"ttl in words", "c.yaml", "backend:\n  inMemory:\n    ttl: 10 minutes\ninvalidation:\n  type: redis\n  redis: {address: %s}\n", false},
		{"key given twice", "c.yaml", "invalidation:\n  type: redis\n  type: redis\n  redis: {address: %s}\n", false},
		{"both driver forms", "c.json", `{"invalidation": {"type": "redis", "redis": {"address": "%s"}, "driverConfig": {"Address": "x"}}}`, false},
		{"typed settings for another type", "c.yaml", "invalidation:\n  type: memory\n  redis: {address: %s}\n", false},
		{"unknown backend", "c.json", `{"backendName": "redis", "invalidation": {"type": "redis", "redis": {"address": "%s"}}}`, false},
		{"backoff max below min", "c.yaml", "invalidation:\n  type: redis\n  retryBackoffMin: 2s\n  retryBackoffMax: 1s\n  redis: {address: %s}\n", false},
		{"max staleness below minimum", "c.yaml", "invalidation:\n  type: redis\n  maxStaleness: 10ms\n  redis: {address: %s}\n", false},
		{"message size below minimum", "c.yaml", "invalidation:\n  type: redis\n  maxMessageBytes: 10\n  redis: {address: %s}\n", false},
		{"pool size above maximum", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    address: %s\n    poolSize: 100000\n", false},
		{"sentinel without sentinels", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    address: %s\n    masterName: mymaster\n", false},
		{"typed tls CA file missing", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    address: %s\n    tls: {enabled: true, caFile: /nonexistent/ca.pem}\n", false},
		{"map tls typo", "c.json", `{"invalidation": {"type": "redis", "driverConfig": {"Address": "%s", "TLS": {"Enabeld": true}}}}`, false},
		{"staleness off", "c.yaml", "invalidation:\n  type: redis\n  disableMaxStaleness: true\n  redis: {address: %s, dialTimeout: 100ms}\n", true},
		{"cluster seed", "c.yaml", "invalidation:\n  type: redis\n  redis:\n    addresses: [%s]\n    shardedPubSub: true\n    dialTimeout: 100ms\n", true},
	}
	for _, tc := range files {
		t.Run(tc.name, func(t *testing.T) {
			content := fmt.Sprintf(tc.content, addr)
			path := writeFile(t, tc.file, content)

			// Each command's verdict, and its message without the
			// "invacache CMD: " prefix, must be the same.
			var cliAccepts bool
			var firstMsg string
			for i, cmd := range []string{"invalidate", "demo", "monitor", "bench"} {
				args := []string{cmd, "--config", path}
				if cmd == "invalidate" {
					args = append(args, "k")
				}
				_, stderr, code := runCLI(t, args...)
				accepts := !strings.Contains(stderr, "invalid config")
				if code == 0 || (accepts && !strings.Contains(stderr, "cannot reach Redis")) {
					t.Fatalf("%s: exit %d, stderr %q; want a config error or \"cannot reach Redis\"", cmd, code, stderr)
				}
				msg := strings.TrimPrefix(stderr, "invacache "+cmd+": ")
				if i == 0 {
					cliAccepts, firstMsg = accepts, msg
				} else if msg != firstMsg {
					t.Errorf("%s says %q, invalidate says %q; want the same", cmd, msg, firstMsg)
				}
			}
			stderr := firstMsg

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
