package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// TestRelayUsage: bad flags exit 2 with one line naming the flag; a
// database that cannot be reached exits 1 naming it.
func TestRelayUsage(t *testing.T) {
	leakcheck.Check(t)
	t.Setenv("INVACACHE_POSTGRES", "")
	closedPG := "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"no postgres", []string{"relay", "--map", "users=u:{id}"}, 2, "--postgres: no connection string"},
		{"no map", []string{"relay", "--postgres", closedPG}, 2, "--map: no table mapped"},
		{"bad template", []string{"relay", "--postgres", closedPG, "--map", "users=u:{id"}, 2, "is not closed"},
		{"bad mapping", []string{"relay", "--postgres", closedPG, "--map", "users"}, 2, "want [schema.]table=template"},
		{"bad slot", []string{"relay", "--postgres", closedPG, "--map", "users=u:{id}", "--slot", "Bad-Slot"}, 2, "Slot"},
		{"stray argument", []string{"relay", "--postgres", closedPG, "--map", "users=u:{id}", "extra"}, 2, "unexpected argument"},
		{"unreachable redis", []string{"relay", "--postgres", closedPG, "--map", "users=u:{id}", "--redis", "127.0.0.1:1", "--dial-timeout", "1s"}, 1, "cannot connect: redis 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("run(%q) = %d, stderr %q; want %d containing %q", tt.args, code, errOut.String(), tt.wantCode, tt.want)
			}
		})
	}
}
