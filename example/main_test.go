package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

func TestRun(t *testing.T) {
	leakcheck.Check(t)
	s := redisserver.StartT(t, redisserver.Options{})
	var out bytes.Buffer
	if err := run(s.Addr(), "example:test", &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`both cached user:1:`,
		`B dropped its copy`,
		`A: "Alice Smith"  B: (miss)`,
		`B loads user:1 from the database`,
		`A: (miss)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
