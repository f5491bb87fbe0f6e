package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

func TestPublishSubscribeRoundTrip(t *testing.T) {
	leakcheck.Check(t)
	srv, d, r := linked(t, redisserver.Options{}, Config{}, 50*time.Millisecond)

	publish(t, d, "a", "b", "c")
	publish(t, d, "d")
	waitFor(t, 5*time.Second, "4 messages", func() bool { return len(r.messages()) == 4 })
	if got, want := strings.Join(r.messages(), ","), "a,b,c,d"; got != want {
		t.Errorf("messages = %q, want %q (in order)", got, want)
	}

	// An operator's raw PUBLISH arrives as is.
	if _, err := srv.Do("PUBLISH", d.Channel(), "user:1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "raw message", func() bool { return r.has("user:1") })

	// Liveness: PONGs through the subscription.
	waitFor(t, 5*time.Second, "3 HandleAlive", func() bool { return r.alive.Load() >= 3 })
	if r.overlap.Load() {
		t.Error("handler methods ran concurrently")
	}
	if got := r.count("down"); got != 0 {
		t.Errorf("link downs = %d, want 0", got)
	}
}

func TestEmptyAndBinaryPayloads(t *testing.T) {
	leakcheck.Check(t)
	_, d, r := linked(t, redisserver.Options{}, Config{}, 0)
	bin := string([]byte{0, 1, 2, 0xff, '\r', '\n', 0})
	big := strings.Repeat("x", 1<<20)
	publish(t, d, "", bin, big)
	waitFor(t, 5*time.Second, "3 messages", func() bool { return len(r.messages()) == 3 })
	got := r.messages()
	if got[0] != "" || got[1] != bin || got[2] != big {
		t.Errorf("payloads changed in transit: lens %d,%d,%d want 0,%d,%d", len(got[0]), len(got[1]), len(got[2]), len(bin), len(big))
	}
}

// Drivers of equal settings share one subscription connection, whatever the
// channels and the number of subscribers.
func TestSharedConnection(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	ch1, ch2 := testChannel(t), testChannel(t)
	d1 := newTestDriver(t, Config{Address: srv.Addr(), Channel: ch1})
	d2 := newTestDriver(t, Config{Address: srv.Addr(), Channel: ch2})
	d3 := newTestDriver(t, Config{Address: srv.Addr(), Channel: ch1})
	if d1.Client() != d2.Client() || d1.Client() != d3.Client() {
		t.Fatal("drivers of equal settings do not share the client")
	}
	recs := make([]*recorder, 5)
	subs := make([]invalidation.Subscription, 5)
	for i := range recs {
		recs[i] = &recorder{}
		d := []*Driver{d1, d2, d3}[i%3]
		subs[i] = subscribe(t, d, recs[i], 50*time.Millisecond)
	}
	for _, r := range recs {
		waitUp(t, r, 1)
	}
	if got := pubsubClients(t, srv); got != 1 {
		t.Errorf("pubsub connections = %d, want 1", got)
	}
	publish(t, d2, "to-ch2")
	publish(t, d1, "to-ch1")
	for i, r := range recs {
		want := "to-ch1"
		if i%3 == 1 {
			want = "to-ch2"
		}
		waitFor(t, 5*time.Second, fmt.Sprintf("sub %d gets %s", i, want), func() bool { return r.has(want) })
	}
	for i, r := range recs {
		if got := len(r.messages()); got != 1 {
			t.Errorf("sub %d got %d messages %q, want 1 (no cross-talk)", i, got, r.messages())
		}
	}

	// A late subscriber on an already confirmed channel still gets LinkUp.
	late := &recorder{}
	subscribe(t, d3, late, 50*time.Millisecond)
	waitUp(t, late, 1)

	// Closing the subscribers one by one: the others keep working; the last
	// one releases the connection.
	for i := range subs {
		if err := subs[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip(t, d1, late, "after-close")
	for i, r := range recs {
		if r.has("after-close") {
			t.Errorf("closed sub %d still received a message", i)
		}
	}
	_ = d1.Close()
	_ = d2.Close()
	_ = d3.Close()
	waitFor(t, 5*time.Second, "no pubsub connection left", func() bool { return pubsubClients(t, srv) == 0 })
}

func TestKillAndRestart(t *testing.T) {
	leakcheck.Check(t)
	srv, d, r := linked(t, redisserver.Options{}, Config{}, 50*time.Millisecond)

	srv.Kill()
	waitFor(t, 5*time.Second, "link down after kill", func() bool { return r.lastEvent() == "down" })
	// While down, Publish fails promptly (the engine retries).
	publishFails(t, d)

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUp(t, r, 2)
	roundTrip(t, d, r, "after-restart")
	// One HandleLinkDown per outage, however many redials failed.
	if got := r.count("down"); got != 1 {
		t.Errorf("link downs = %d, want 1 (one per outage)", got)
	}
}

func TestClientKillPubsub(t *testing.T) {
	leakcheck.Check(t)
	srv, d, r := linked(t, redisserver.Options{}, Config{}, 50*time.Millisecond)
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "link down+up after CLIENT KILL", func() bool { return r.count("down") >= 1 && r.count("up") >= 2 })
	waitUp(t, r, 2)
	roundTrip(t, d, r, "after-kill")
}

// A blackholed link answers nothing and closes nothing: only the missing
// PONGs reveal it.
func TestBlackholeDeclaredDead(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	px := faultproxy.NewT(t, srv.Addr())
	d := newTestDriver(t, Config{Address: px.Addr(), Channel: testChannel(t), DialTimeout: time.Second})
	r := &recorder{}
	const ping = 100 * time.Millisecond
	subscribe(t, d, r, ping)
	waitUp(t, r, 1)

	px.Blackhole()
	start := time.Now()
	waitFor(t, deadTimeout(ping)+3*time.Second, "link declared dead", func() bool { return r.lastEvent() == "down" })
	if err := r.lastDownErr(); !errors.Is(err, ErrLinkDead) {
		t.Errorf("HandleLinkDown(%v), want ErrLinkDead", err)
	}
	t.Logf("declared dead after %v (dead-link timeout %v)", time.Since(start).Round(time.Millisecond), deadTimeout(ping))
	alive := r.alive.Load()

	px.Heal()
	waitUp(t, r, 2)
	if _, err := srv.Do("PUBLISH", d.Channel(), "after-heal"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "message after heal", func() bool { return r.has("after-heal") })
	waitFor(t, 5*time.Second, "alive again", func() bool { return r.alive.Load() > alive })
}

// A frozen server (SIGSTOP) keeps the connection open but answers nothing.
func TestPausedServerDeclaredDead(t *testing.T) {
	leakcheck.Check(t)
	const ping = 100 * time.Millisecond
	srv, d, r := linked(t, redisserver.Options{}, Config{DialTimeout: time.Second}, ping)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, deadTimeout(ping)+3*time.Second, "link declared dead", func() bool { return r.lastEvent() == "down" })
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitUp(t, r, 2)
	roundTrip(t, d, r, "after-resume")
}

// Redis drops a subscriber that cannot keep up (client-output-buffer-limit
// pubsub). The client may learn of it only after reading its backlog, so the
// missing PONGs are what declares the link down then. Either way the link is
// reported down, and it recovers.
func TestSlowSubscriberDropped(t *testing.T) {
	leakcheck.Check(t)
	const ping = 100 * time.Millisecond
	srv, d, r := linked(t, redisserver.Options{Args: []string{"--client-output-buffer-limit", "pubsub 64kb 32kb 1"}},
		Config{}, ping)

	r.slow.Store(int64(2 * time.Millisecond))
	flooder := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer flooder.Close()
	payload := strings.Repeat("f", 4<<10)
	ctx := context.Background()
	for i := 0; i < 8; i++ { // 8 × 256 × 4 KiB = 8 MiB
		if _, err := flooder.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for j := 0; j < 256; j++ {
				p.Publish(ctx, d.Channel(), payload)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "Redis dropped the subscriber", func() bool { return pubsubClients(t, srv) == 0 || r.count("down") >= 1 })
	waitFor(t, deadTimeout(ping)+5*time.Second, "link declared down", func() bool { return r.count("down") >= 1 })
	t.Logf("link down: %v (received %d of 2048 flood messages)", r.lastDownErr(), len(r.messages()))
	r.slow.Store(0)
	waitUp(t, r, 2)
	roundTrip(t, d, r, "after-drop")
}

func TestUnreachableServer(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	addr := srv.Addr()
	srv.Kill() // the port is now closed: connection refused
	d := newTestDriver(t, Config{Address: addr, Channel: testChannel(t), DialTimeout: 300 * time.Millisecond})
	if got := d.ConnectTimeout(); got != 300*time.Millisecond {
		t.Errorf("ConnectTimeout = %v, want 300ms", got)
	}
	r := &recorder{}
	subscribe(t, d, r, 50*time.Millisecond)
	waitFor(t, 5*time.Second, "link down reported", func() bool { return r.count("down") == 1 })
	if err := r.lastDownErr(); err == nil {
		t.Error("HandleLinkDown(nil), want the dial error")
	}
	publishFails(t, d)
	// Comes up later: the driver connects in the background.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUp(t, r, 1)
	if got := r.count("down"); got != 1 {
		t.Errorf("link downs = %d, want 1 (one per outage, not one per redial)", got)
	}
}

func TestPasswordAndACL(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{
		Password: "s3cret",
		Users:    []redisserver.User{{Name: "app", Password: "app-pass"}},
	})
	tests := []struct {
		name string
		cfg  Config
	}{
		{"password", Config{Password: "s3cret"}},
		{"acl user", Config{Username: "app", Password: "app-pass"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Address, cfg.Channel = srv.Addr(), testChannel(t)
			d := newTestDriver(t, cfg)
			r := &recorder{}
			subscribe(t, d, r, 50*time.Millisecond)
			waitUp(t, r, 1)
			roundTrip(t, d, r, "hello")
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		d := newTestDriver(t, Config{Address: srv.Addr(), Channel: testChannel(t), Username: "app", Password: "nope"})
		r := &recorder{}
		subscribe(t, d, r, 50*time.Millisecond)
		waitFor(t, 5*time.Second, "link down", func() bool { return r.count("down") >= 1 })
		if err := r.lastDownErr(); err == nil || !strings.Contains(strings.ToUpper(err.Error()), "WRONGPASS") {
			t.Errorf("HandleLinkDown(%v), want a WRONGPASS error", err)
		}
		publishFails(t, d)
	})
}

func TestTLS(t *testing.T) {
	leakcheck.Check(t)
	if !redisserver.TLSSupported() {
		t.Skip("the installed redis-server was built without TLS support")
	}
	srv := redisserver.StartT(t, redisserver.Options{TLS: true})
	certs := srv.ClientCerts()
	d, err := factory(invalidation.Spec{Type: "redis", Options: map[string]any{
		"address": srv.Addr(),
		"channel": testChannel(t),
		"tls": map[string]any{
			"enabled":    true,
			"caFile":     certs.CAFile,
			"certFile":   certs.CertFile,
			"keyFile":    certs.KeyFile,
			"serverName": "localhost",
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	r := &recorder{}
	subscribe(t, d.(*Driver), r, 50*time.Millisecond)
	waitUp(t, r, 1)
	roundTrip(t, d.(*Driver), r, "over-tls")
}

// SSUBSCRIBE/SPUBLISH also work on a standalone Redis 7.
func TestShardedPubSubStandalone(t *testing.T) {
	leakcheck.Check(t)
	_, d, r := linked(t, redisserver.Options{}, Config{ShardedPubSub: true}, 50*time.Millisecond)
	publish(t, d, "s1", "s2")
	waitFor(t, 5*time.Second, "sharded messages", func() bool { return len(r.messages()) == 2 })
	waitFor(t, 5*time.Second, "alive", func() bool { return r.alive.Load() >= 1 })
}

func TestCallersClientKeptOpen(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: 2})
	defer client.Close()
	d, err := New(Config{Client: client, Channel: testChannel(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	s, err := d.Subscribe(r, invalidation.SubscribeOptions{PingInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, r, 1)
	roundTrip(t, d, r, "m")
	_ = s.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Errorf("caller's client unusable after driver Close: %v", err)
	}
}

func TestClosed(t *testing.T) {
	leakcheck.Check(t)
	d, err := New(Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	s, err := d.Subscribe(r, invalidation.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Subscription.Close after driver Close: %v", err)
	}
	if err := d.Publish(context.Background(), [][]byte{[]byte("x")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := d.Subscribe(r, invalidation.SubscribeOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if _, err := d.Subscribe(nil, invalidation.SubscribeOptions{}); err == nil {
		t.Error("Subscribe(nil) = nil error")
	}
}

// Publish returns when its context is cancelled even though the link is
// stuck (the engine cancels on Close); go-redis alone would wait for its
// read timeout.
func TestPublishHonoursCancelOnStuckLink(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	px := faultproxy.NewT(t, srv.Addr())
	own := newTestDriver(t, Config{Address: px.Addr(), Channel: testChannel(t)})
	client := goredis.NewClient(&goredis.Options{Addr: px.Addr(), Protocol: 2, ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = client.Close() })
	theirs, err := New(Config{Channel: testChannel(t), Client: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = theirs.Close() })
	for _, d := range []*Driver{own, theirs} {
		publish(t, d, "warm-up") // a pooled connection exists
	}
	px.Blackhole()
	for name, d := range map[string]*Driver{"own client": own, "caller's client": theirs} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			dropped := px.Stats().Dropped
			go func() { done <- d.Publish(ctx, [][]byte{[]byte("stuck"), []byte("stuck")}) }()
			// Blocked on the link: the blackhole swallowed its command.
			waitFor(t, 5*time.Second, "the blackhole to swallow the publish", func() bool { return px.Stats().Dropped > dropped })
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Publish = %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Second): // read timeouts are 3s and 30s
				t.Fatal("Publish still blocked 2s after its context was cancelled")
			}
		})
	}
	px.Heal()
}

// An error reply to SUBSCRIBE (NOPERM here; MOVED after a cluster failover)
// leaves go-redis's connection open but unsubscribed: the driver must start
// over on a new connection, so the link comes up once Redis allows it.
func TestSubscribeRefusedThenAllowed(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{
		Users: []redisserver.User{{Name: "app", Password: "pw", Rules: []string{"~*", "resetchannels", "+@all"}}},
	})
	d := newTestDriver(t, Config{Address: srv.Addr(), Channel: testChannel(t), Username: "app", Password: "pw"})
	r := &recorder{}
	subscribe(t, d, r, 50*time.Millisecond)
	waitFor(t, 5*time.Second, "link down (NOPERM)", func() bool { return r.count("down") >= 1 })
	if err := r.lastDownErr(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("HandleLinkDown(%v), want NOPERM", err)
	}
	if _, err := srv.Do("ACL", "SETUSER", "app", "allchannels"); err != nil {
		t.Fatal(err)
	}
	waitUp(t, r, 1)
	roundTrip(t, d, r, "allowed")
}

// Drivers sharing connections log to the first logger that is enabled, so a
// silent first driver does not silence the others.
func TestSharedHubLogsToEnabledLogger(t *testing.T) {
	leakcheck.Check(t)
	srv := redisserver.StartT(t, redisserver.Options{})
	cfg := Config{Address: srv.Addr(), Channel: testChannel(t)}
	silent := newTestDriver(t, cfg)
	h := msgHandler{mu: &sync.Mutex{}, msgs: &[]string{}}
	loud, err := New(cfg, WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = loud.Close() })
	if silent.Client() != loud.Client() {
		t.Fatal("equal settings do not share connections")
	}
	r := &recorder{}
	subscribe(t, silent, r, 50*time.Millisecond)
	waitUp(t, r, 1)
	waitFor(t, 5*time.Second, "link-up logged", func() bool { return h.logged("redis: subscription link up") })
}

// msgHandler is a slog.Handler that keeps the messages logged.
type msgHandler struct {
	mu   *sync.Mutex
	msgs *[]string // guarded by mu
}

func (h msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h msgHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h msgHandler) WithGroup(string) slog.Handler            { return h }
func (h msgHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}

func (h msgHandler) logged(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range *h.msgs {
		if m == msg {
			return true
		}
	}
	return false
}
