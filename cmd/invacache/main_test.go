package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/halilbulentorhon/invacache-go/internal/poll"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/chaos"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/redis/go-redis/v9"
)

// srv is the package's real redis-server on a free loopback port; tests
// keep apart by channel.
var srv *redisserver.Server

func TestMain(m *testing.M) {
	// The chaos tests with --procs re-execute this test binary as nodes.
	if code, ok := chaos.NodeProcess(); ok {
		os.Exit(code)
	}
	s, err := redisserver.Start(redisserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	poll.Until(t, timeout, what, cond)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func channelFor(t *testing.T) string { return "test:" + t.Name() }

func TestHelp(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "Commands:"},
		{[]string{"--help"}, "Commands:"},
		{[]string{"demo", "--help"}, "Usage: invacache demo"},
		{[]string{"invalidate", "-h"}, "Usage: invacache invalidate"},
		{[]string{"monitor", "--help"}, "Usage: invacache monitor"},
		{[]string{"bench", "--help"}, "Usage: invacache bench"},
		{[]string{"help", "monitor"}, "--count"},
	}
	for _, tc := range tests {
		out, errOut, code := runCLI(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || errOut != "" {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want 0 and stdout containing %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// oneErrorLine checks the failure contract: non-zero exit, nothing on
// stdout, exactly one line on stderr containing want.
func oneErrorLine(t *testing.T, args []string, wantCode int, want string) {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	if code != wantCode {
		t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, wantCode, errOut)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("%v: stderr %q, want exactly one line", args, errOut)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("%v: stderr %q, want it to contain %q", args, errOut, want)
	}
	if strings.Contains(args[0], "demo") || args[0] == "invalidate" {
		if out != "" {
			t.Errorf("%v: stdout %q, want empty", args, out)
		}
	}
}

func TestBadUsage(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"demo", "--nodes", "x"}, "invalid value"},
		{[]string{"demo", "--bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"demo", "--nodes", "1"}, "at least 2 nodes"},
		{[]string{"demo", "extra"}, "unexpected argument"},
		{[]string{"demo", "--fault", "--fault-at", "10s", "--duration", "5s"}, "must end before"},
		{[]string{"invalidate"}, "no keys given"},
		{[]string{"invalidate", "--clear", "k"}, "--clear takes no keys"},
		{[]string{"invalidate", "--channel", "", "k"}, "empty channel"},
		{[]string{"monitor", "--count", "-1"}, "--count: -1 is negative"},
		{[]string{"bench", "--plot", "x.png"}, "only .svg"},
	}
	for _, tc := range tests {
		if tc.args == nil {
			_, errOut, code := runCLI(t)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("no args: exit %d, stderr %q", code, errOut)
			}
			continue
		}
		oneErrorLine(t, tc.args, 2, tc.want)
	}
}

func TestUnreachableRedis(t *testing.T) {
	leakcheck.Check(t)
	addr := closedAddr(t)
	for _, cmd := range [][]string{
		{"invalidate", "k"},
		{"monitor", "--count", "1"},
		{"bench", "--samples", "1"},
		{"demo", "--duration", "1s"},
	} {
		args := append(cmd, "--redis", addr, "--dial-timeout", "500ms")
		oneErrorLine(t, args, 1, "cannot reach Redis at "+addr)
	}
}

func TestAuthFailure(t *testing.T) {
	leakcheck.Check(t)
	s := redisserver.StartT(t, redisserver.Options{Password: "s3cret"})
	oneErrorLine(t, []string{"invalidate", "--redis", s.Addr(), "--password", "wrong", "k"}, 1, "authentication to Redis at "+s.Addr()+" failed")
	oneErrorLine(t, []string{"monitor", "--redis", s.Addr(), "--count", "1"}, 1, "authentication to Redis at "+s.Addr()+" failed")
	out, errOut, code := runCLI(t, "invalidate", "--redis", s.Addr(), "--password", "s3cret", "k")
	if code != 0 || !strings.Contains(out, "published 1 message") {
		t.Errorf("right password: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// An ACL user that may connect but not publish on the channel: invalidate
// says so, not that Redis cannot be reached.
func TestInvalidatePermissionDenied(t *testing.T) {
	leakcheck.Check(t)
	s := redisserver.StartT(t, redisserver.Options{Password: "root-pw", Users: []redisserver.User{
		{Name: "noscript", Password: "pw", Rules: []string{"~*", "&*", "+@all", "-evalsha", "-eval"}},
		{Name: "nopublish", Password: "pw", Rules: []string{"~*", "&*", "+@all", "-publish"}},
	}})
	args := func(user string) []string {
		return []string{"invalidate", "--redis", s.Addr(), "--username", user, "--password", "pw", "--dial-timeout", "1s", "k"}
	}
	oneErrorLine(t, args("nopublish"), 1, "permission denied by Redis at "+s.Addr())

	// A user that may PUBLISH but not run the log's script still reaches the
	// replicas linked now (publishing never stops while PUBLISH works), and
	// is told that replicas away now cannot catch up on it.
	out, errOut, code := runCLI(t, args("noscript")...)
	if code != 0 || !strings.HasPrefix(out, "published 1 message(s)") {
		t.Errorf("noscript: exit %d, stdout %q; want 0 and a published line (stderr %q)", code, out, errOut)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "published outside it") {
		t.Errorf("noscript: stderr %q, want one warning line saying it was published outside the log", errOut)
	}
}

// newNode is a cache node on the test server's channel.
func newNode(t *testing.T, channel string) invacache.Cache[string] {
	t.Helper()
	c, err := invacache.NewCache[string](config.InvaCacheConfig{
		Invalidation: &config.InvalidationConfig{
			Type:  "redis",
			Redis: &config.RedisInvalidationConfig{Address: srv.Addr(), Channel: channel},
		},
	})
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestInvalidateReachesSubscriberAndNode(t *testing.T) {
	leakcheck.Check(t)
	ch := channelFor(t)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	sub := client.Subscribe(ctx, ch)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	node := newNode(t, ch)
	for _, k := range []string{"user:1", "user:2", "user:3"} {
		if err := node.Set(k, "v"); err != nil {
			t.Fatal(err)
		}
	}

	out, errOut, code := runCLI(t, "invalidate", "--redis", srv.Addr(), "--channel", ch, "user:1", "user:2")
	if code != 0 {
		t.Fatalf("invalidate: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "2 subscriber(s)") {
		t.Errorf("stdout %q, want the subscriber count (2: test subscriber and node)", out)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := sub.ReceiveMessage(rctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	// The library's publish path logs each message: a frame around the envelope.
	_, env, framed := wire.DecodeFrame([]byte(m.Payload))
	if !framed {
		t.Fatalf("payload %q is not a replay-log frame: not the library's publish path", m.Payload)
	}
	msg, err := wire.Decode(env)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if msg.Raw || msg.Origin == 0 || msg.Seq != 1 || len(msg.Ops) != 1 || fmt.Sprint(msg.Ops[0].Keys) != "[user:1 user:2]" {
		t.Errorf("got message %+v, want an envelope with a random origin, seq 1, keys [user:1 user:2]", msg)
	}
	waitFor(t, "the node to drop user:1 and user:2", 5*time.Second, func() bool {
		_, e1 := node.Get("user:1")
		_, e2 := node.Get("user:2")
		return errors.Is(e1, invacache.ErrNotFound) && errors.Is(e2, invacache.ErrNotFound)
	})
	if v, err := node.Get("user:3"); err != nil || v != "v" {
		t.Errorf("user:3 = %q, %v; want it kept", v, err)
	}

	if _, errOut, code := runCLI(t, "invalidate", "--redis", srv.Addr(), "--channel", ch, "--clear"); code != 0 {
		t.Fatalf("invalidate --clear: exit %d, stderr %q", code, errOut)
	}
	waitFor(t, "the node to clear", 5*time.Second, func() bool { return node.Len() == 0 })
}

func TestMonitorDecodes(t *testing.T) {
	leakcheck.Check(t)
	ch := channelFor(t)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"monitor", "--redis", srv.Addr(), "--channel", ch, "--count", "6", "--duration", "20s"}, &out, &errOut)
	}()
	waitFor(t, "the monitor to subscribe", 5*time.Second, func() bool { return strings.Contains(out.String(), "subscribed to") })

	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	p1, _, next := wire.AppendBatches(nil, nil, 0xabc, 1, false, []string{"a", "b c"}, 1<<16)
	p2, _, _ := wire.AppendBatches(nil, nil, 0xabc, next+2, true, nil, 1<<16) // seq 4: 2 lost
	for _, p := range [][]byte{p1[0], p2[0], []byte("user:1"), []byte(wire.Magic + "garbage"), {}, []byte("last")} {
		if err := client.Publish(context.Background(), ch, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("monitor: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("monitor did not stop after --count messages")
	}
	got := out.String()
	for _, want := range []string{
		`origin=0000000000000abc seq=1 v1 delete 2 key(s): a "b c"`,
		"GAP origin=0000000000000abc expected seq 2, got 4: 2 message(s) lost",
		"origin=0000000000000abc seq=4 v1 clear",
		`RAW key "user:1"`,
		"MALFORMED",
		"RAW clear",
		"6 message(s): 2 envelope(s)",
		"3 raw, 1 malformed; 1 gap(s) (2 message(s) lost)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("monitor output lacks %q:\n%s", want, got)
		}
	}
}

func TestMonitorStopsOnContext(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"monitor", "--redis", srv.Addr(), "--channel", channelFor(t)}, &out, &errOut)
	}()
	waitFor(t, "the monitor to subscribe", 5*time.Second, func() bool { return strings.Contains(out.String(), "subscribed to") })
	cancel() // what SIGINT does in the binary
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "0 message(s)") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and a summary", code, out.String(), errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("monitor did not stop on cancel")
	}
}

func checkDemo(t *testing.T, args ...string) string {
	t.Helper()
	base := []string{"demo", "--duration", "4s", "--read-rate", "500", "--write-rate", "50"}
	out, errOut, code := runCLI(t, append(base, args...)...)
	if code != 0 {
		t.Fatalf("demo %v: exit %d, stderr %q\n%s", args, code, errOut, out)
	}
	for _, want := range []string{"stale reads: 0\n", "stale bound:", "propagation:", "hit ratio"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	return out
}

func TestDemoEmbedded(t *testing.T) {
	leakcheck.Check(t)
	out := checkDemo(t)
	if !strings.Contains(out, "miniredis") {
		t.Errorf("demo without --redis should say it runs on the embedded server:\n%s", out)
	}
}

func TestDemoRealRedis(t *testing.T) {
	leakcheck.Check(t)
	ch := channelFor(t)
	// Each node must have its own subscription (separate replicas), which
	// Redis counts per connection.
	var maxSubs int
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if r, err := srv.Do("PUBSUB", "NUMSUB", ch); err == nil {
				var n int
				if _, err := fmt.Sscanf(strings.TrimPrefix(r, ch+"\n"), "%d", &n); err == nil {
					maxSubs = max(maxSubs, n)
				}
			}
		}
	}()
	out := checkDemo(t, "--redis", srv.Addr(), "--channel", ch)
	close(stop)
	<-polled
	if !strings.Contains(out, "Redis at "+srv.Addr()) {
		t.Errorf("demo output does not name the server:\n%s", out)
	}
	if maxSubs != 3 {
		t.Errorf("PUBSUB NUMSUB %s peaked at %d during the demo, want 3 (one subscription per node)", ch, maxSubs)
	}
}

func TestDemoFault(t *testing.T) {
	leakcheck.Check(t)
	out := checkDemo(t, "--duration", "6s", "--fault", "--fault-at", "1500ms", "--fault-for", "2s", "--max-staleness", "1s")
	for _, want := range []string{"fault: bus stopped", "fault: bus back", "resubscriptions after the fault"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --fault output lacks %q:\n%s", want, out)
		}
	}
}

func TestBench(t *testing.T) {
	leakcheck.Check(t)
	plot := filepath.Join(t.TempDir(), "lat.svg")
	out, errOut, code := runCLI(t, "bench", "--redis", srv.Addr(), "--channel", channelFor(t),
		"--samples", "50", "--keys", "2000", "--raw-keys", "300", "--plot", plot)
	if code != 0 {
		t.Fatalf("bench: exit %d, stderr %q\n%s", code, errOut, out)
	}
	for _, want := range []string{"cache: Delete+broadcast", "raw:   PUBLISH", "group commit", "one PUBLISH per key", "ratio:"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) || !bytes.Contains(svg, []byte("<rect x=")) {
		t.Errorf("plot is not a histogram SVG:\n%.300s", svg)
	}
}

func TestDemoFaultBlackhole(t *testing.T) {
	leakcheck.Check(t)
	out := checkDemo(t, "--duration", "6s", "--fault", "--fault-mode", "blackhole", "--fault-at", "1500ms", "--fault-for", "2500ms", "--max-staleness", "1s")
	if !strings.Contains(out, "blackholes every link") {
		t.Errorf("demo output does not describe the blackhole:\n%s", out)
	}
}

// TestDemoCatchesMissingInvalidation shows the check is not vacuous: with
// writers that do not broadcast, peers keep old versions past the bound.
func TestDemoCatchesMissingInvalidation(t *testing.T) {
	leakcheck.Check(t)
	out, errOut, code := runCLI(t, "demo", "--duration", "3s", "--read-rate", "500", "--write-rate", "50",
		"--broadcast=false", "--max-staleness", "300ms", "--publish-window", "0s", "--slack", "100ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q\n%s", code, errOut, out)
	}
	if strings.Contains(out, "stale reads: 0\n") || !strings.Contains(out, "first stale read:") {
		t.Errorf("want stale reads > 0 with an example:\n%s", out)
	}
	if !strings.Contains(errOut, "stale reads beyond the bound 400ms") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr %q, want one line naming the bound", errOut)
	}
}

func TestTLSAndACL(t *testing.T) {
	leakcheck.Check(t)
	if !redisserver.TLSSupported() {
		t.Skip("redis-server built without TLS")
	}
	s := redisserver.StartT(t, redisserver.Options{
		TLS:   true,
		Users: []redisserver.User{{Name: "ops", Password: "opspw"}},
	})
	cc := s.ClientCerts()
	tlsArgs := []string{"--redis", s.Addr(), "--tls-ca", cc.CAFile, "--tls-cert", cc.CertFile, "--tls-key", cc.KeyFile,
		"--username", "ops", "--password", "opspw", "--channel", channelFor(t)}
	out, errOut, code := runCLI(t, append([]string{"invalidate", "k1"}, tlsArgs...)...)
	if code != 0 || !strings.Contains(out, "published 1 message") {
		t.Errorf("invalidate over TLS as ops: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Without TLS the server does not answer the protocol: one clear line.
	oneErrorLine(t, []string{"invalidate", "--redis", s.Addr(), "--dial-timeout", "500ms", "k1"}, 1, "Redis at "+s.Addr())
}

func TestMonitorSurvivesRestart(t *testing.T) {
	leakcheck.Check(t)
	s := redisserver.StartT(t, redisserver.Options{})
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"monitor", "--redis", s.Addr(), "--count", "1", "--duration", "30s"}, &out, &errOut)
	}()
	waitFor(t, "the monitor to subscribe", 5*time.Second, func() bool { return strings.Contains(out.String(), "subscribed to") })
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	// Publish until the resubscribed monitor has taken its one message.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := s.Do("PUBLISH", defaultChannel, "after-restart"); err != nil {
			t.Logf("publish: %v", err)
		}
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("monitor: exit %d, stderr %q", code, errOut.String())
			}
			got := out.String()
			for _, want := range []string{"LINK DOWN", `RAW key "after-restart"`} {
				if !strings.Contains(got, want) {
					t.Errorf("monitor output lacks %q:\n%s", want, got)
				}
			}
			if n := strings.Count(got, "subscribed to"); n < 2 {
				t.Errorf("subscribed %d times, want a resubscription:\n%s", n, got)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor did not resume after the restart:\n%s", out.String())
		}
	}
}

func TestDemoConfigFile(t *testing.T) {
	leakcheck.Check(t)
	cfg := writeFile(t, "demo.yaml", `
backend:
  inMemory:
    shardCount: 8
    capacity: 4096
invalidation:
  type: redis
  maxStaleness: 1500ms
`)
	out := checkDemo(t, "--config", cfg, "--duration", "2s")
	if !strings.Contains(out, "MaxStaleness 1.5s") {
		t.Errorf("the bound does not use the file's MaxStaleness:\n%s", out)
	}
}
