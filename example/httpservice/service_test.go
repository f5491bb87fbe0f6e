package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

// client talks to one replica.
type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// item GETs an id and decodes it (code 200) or returns the code.
func (c client) item(id string) (response, int) {
	c.t.Helper()
	code, body := c.do(http.MethodGet, "/items/"+id, "")
	var r response
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			c.t.Fatalf("GET /items/%s: %v in %q", id, err, body)
		}
	}
	return r, code
}

func (c client) put(id, value string) response {
	c.t.Helper()
	code, body := c.do(http.MethodPut, "/items/"+id, value)
	var r response
	if code != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil {
		c.t.Fatalf("PUT /items/%s = %d %q, want 200 and an item", id, code, body)
	}
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// walkthrough is the README's scenario against two replicas a and b.
func walkthrough(t *testing.T, a, b client) {
	t.Helper()
	if _, code := a.item("x"); code != http.StatusNotFound {
		t.Errorf("GET of a missing item = %d, want 404", code)
	}
	if w := a.put("x", "v1"); w.Version == 0 || w.Value != "v1" {
		t.Errorf("PUT = %+v, want v1 with a version", w)
	}
	if r, _ := b.item("x"); r.Value != "v1" || r.Source != "database" {
		t.Errorf("first GET on b = %+v, want v1 from the database", r)
	}
	// The PUT's invalidation may reach b while b loads: that load is then
	// not cached (rule 5), so b caches v1 at its next read at the latest.
	eventually(t, "b should serve v1 from its cache", func() bool {
		r, _ := b.item("x")
		if r.Value != "v1" {
			t.Fatalf("GET on b = %+v, want v1", r)
		}
		return r.Source == "cache"
	})
	w := a.put("x", "v2")
	eventually(t, "b should drop its copy and read v2", func() bool {
		r, _ := b.item("x")
		return r.Value == "v2" && r.Version == w.Version
	})
	if code, _ := b.do(http.MethodDelete, "/items/x", ""); code != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", code)
	}
	eventually(t, "a should drop its copy after b's DELETE", func() bool {
		_, code := a.item("x")
		return code == http.StatusNotFound
	})
	for name, c := range map[string]client{"a": a, "b": b} {
		if code, body := c.do(http.MethodGet, "/readyz", ""); code != http.StatusOK {
			t.Errorf("%s /readyz = %d %q, want 200", name, code, body)
		}
	}
	code, body := a.do(http.MethodGet, "/metrics", "")
	for _, want := range []string{`invacache_loads_total{name="items"}`, `invacache_link_up{name="items"} 1`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d, missing %q", code, want)
		}
	}
}

// The service's handlers on two replicas of an in-process cluster sharing
// one database.
func TestServiceOnTheMemoryBus(t *testing.T) {
	leakcheck.Check(t)
	cl := invacachetest.NewCluster[Item](t, 2, config.InvaCacheConfig{
		Invalidation: &config.InvalidationConfig{MaxStaleness: 300 * time.Millisecond},
	})
	db := newMemDB()
	var clients []client
	for i, n := range cl.Nodes() {
		svc := &service{name: fmt.Sprint("replica-", i), cache: n, db: db, log: slog.New(slog.DiscardHandler)}
		metrics, err := newMetrics(n.Stats)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.routes(metrics))
		t.Cleanup(srv.Close)
		clients = append(clients, client{t, srv.URL})
	}
	walkthrough(t, clients[0], clients[1])

	cl.Node(1).Stall()
	eventually(t, "/linkz should fail while b's link is stalled", func() bool {
		code, _ := clients[1].do(http.MethodGet, "/linkz", "")
		return code == http.StatusServiceUnavailable
	})
	if code, body := clients[1].do(http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz while b's link is stalled = %d %q, want 200 (readiness is not the link)", code, body)
	}
	cl.Node(1).Unstall()
	eventually(t, "/linkz should pass again", func() bool {
		code, _ := clients[1].do(http.MethodGet, "/linkz", "")
		return code == http.StatusOK
	})
}

// The whole program twice against a real redis-server, stopped gracefully.
func TestTwoReplicasOnRedis(t *testing.T) {
	leakcheck.Check(t)
	rs := redisserver.StartT(t, redisserver.Options{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var clients []client
	var done []chan error
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o := options{redisAddr: rs.Addr(), channel: "httpservice:test", name: fmt.Sprint("replica-", i),
			maxStaleness: time.Second, dbLatency: time.Millisecond, ttl: time.Minute}
		errc := make(chan error, 1)
		go func() { errc <- run(ctx, ln, o, slog.New(slog.DiscardHandler)) }()
		done = append(done, errc)
		clients = append(clients, client{t, "http://" + ln.Addr().String()})
	}
	for _, c := range clients {
		eventually(t, "a replica should become ready", func() bool {
			code, _ := c.do(http.MethodGet, "/readyz", "")
			return code == http.StatusOK
		})
	}
	walkthrough(t, clients[0], clients[1])
	stop()
	for i, errc := range done {
		if err := <-errc; err != nil {
			t.Errorf("replica %d: run after the stop = %v, want nil (graceful)", i, err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}
