package main

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/relay/postgres"
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

// TestRelayMetrics: the collector exports every invacache_relay_* metric
// from a relay's Stats, and /readyz answers 503 while it does not stream.
func TestRelayMetrics(t *testing.T) {
	leakcheck.Check(t)
	m, err := postgres.ParseMapping("users=u:{id}")
	if err != nil {
		t.Fatal(err)
	}
	r, err := postgres.New(postgres.Config{Postgres: "postgres://u@127.0.0.1:1/db", Mappings: []postgres.Mapping{m}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(relayCollector{r})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, want := range []string{"invacache_relay_transactions_total", "invacache_relay_keys_published_total",
		"invacache_relay_reconnects_total", "invacache_relay_last_acked_lsn", "invacache_relay_slot_lag_bytes",
		"invacache_relay_commit_to_publish_seconds", "invacache_relay_ready"} {
		if !got[want] {
			t.Errorf("metric %s missing; got %v", want, got)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer serveRelay(ln, r)()
	for path, want := range map[string]int{"/readyz": http.StatusServiceUnavailable, "/metrics": http.StatusOK} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}
