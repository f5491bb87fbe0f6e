package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// proxiedEcho starts the leak check, an echo server and a proxy to it, and
// returns the proxy and one working connection through it.
func proxiedEcho(t *testing.T) (*Proxy, net.Conn) {
	t.Helper()
	leakcheck.Check(t)
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	mustEcho(t, c, "before")
	return p, c
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within a generous deadline.
func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

func mustEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got, err := roundTrip(c, msg)
	if err != nil || got != msg {
		t.Fatalf("echo %q = %q, %v; want %q", msg, got, err, msg)
	}
}

// expectConnError reads c and wants a connection error (EOF/reset), not a
// timeout.
func expectConnError(t *testing.T, c net.Conn, when string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read %s err = %v; want a connection error (not a timeout)", when, err)
	}
}

// expectSilence reads c and wants the read deadline to pass: no data, no EOF.
func expectSilence(t *testing.T, c net.Conn, when string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %s err = %v; want a deadline timeout (no data, no EOF)", when, err)
	}
}

// waitActive polls until Stats().Active == want.
func waitActive(t *testing.T, p *Proxy, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Active != want {
		if time.Now().After(deadline) {
			t.Fatalf("Active = %d; want %d", p.Stats().Active, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForward(t *testing.T) {
	leakcheck.Check(t)
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	mustEcho(t, c, "hello")
	mustEcho(t, c, "again")
	st := p.Stats()
	if st.Accepted != 1 || st.Active != 1 || st.BytesUp != 12 || st.BytesDown != 12 {
		t.Fatalf("Stats = %+v; want Accepted 1, Active 1, BytesUp 12, BytesDown 12", st)
	}
	c.Close()
	waitActive(t, p, 0)
}

func TestCut(t *testing.T) {
	p, c := proxiedEcho(t)
	p.Cut()
	expectConnError(t, c, "after Cut")
	// New connections still work.
	mustEcho(t, dial(t, p.Addr()), "after")
}

func TestBlackholeAndHeal(t *testing.T) {
	p, c := proxiedEcho(t)
	p.Blackhole()

	// Existing connection: writes succeed, nothing comes back, no EOF.
	if _, err := c.Write([]byte("lost\n")); err != nil {
		t.Fatalf("write during blackhole: %v", err)
	}
	expectSilence(t, c, "during blackhole")

	// New connection: accepted, goes nowhere.
	c2 := dial(t, p.Addr())
	if _, err := c2.Write([]byte("nowhere\n")); err != nil {
		t.Fatalf("write on new conn during blackhole: %v", err)
	}
	expectSilence(t, c2, "on a new conn during blackhole")
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Dropped < uint64(len("lost\nnowhere\n")) {
		if time.Now().After(deadline) {
			t.Fatalf("Dropped = %d; want >= %d", p.Stats().Dropped, len("lost\nnowhere\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}

	p.Heal()
	// Held connections are dead: reset, never resumed.
	expectConnError(t, c, "on a held conn after Heal")
	expectConnError(t, c2, "on a conn accepted during blackhole after Heal")
	mustEcho(t, dial(t, p.Addr()), "healed")
}

func TestRefuseAccept(t *testing.T) {
	p, kept := proxiedEcho(t)
	p.Refuse()
	// The reset may already fail the dial; either way no round trip.
	if c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second); err == nil {
		_, err = roundTrip(c, "refused")
		c.Close()
		if err == nil {
			t.Fatal("round trip on a refused connection succeeded")
		}
	}
	if got := p.Stats().Refused; got != 1 {
		t.Fatalf("Refused = %d; want 1", got)
	}
	mustEcho(t, kept, "still kept")
	p.Accept()
	mustEcho(t, dial(t, p.Addr()), "accepted")
}

func TestSetTarget(t *testing.T) {
	leakcheck.Check(t)
	// A target that refuses: the client connection is closed.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	p := newProxy(t, deadAddr)
	if _, err := roundTrip(dial(t, p.Addr()), "x"); err == nil {
		t.Fatal("round trip to a dead target succeeded")
	}
	if got := p.Stats().DialFails; got != 1 {
		t.Fatalf("DialFails = %d; want 1", got)
	}
	live := echoServer(t)
	p.SetTarget(live)
	if got := p.Target(); got != live {
		t.Fatalf("Target = %q; want %q", got, live)
	}
	mustEcho(t, dial(t, p.Addr()), "moved")
}

func TestLatency(t *testing.T) {
	leakcheck.Check(t)
	p := newProxy(t, echoServer(t))
	p.SetLatency(time.Millisecond, time.Millisecond)
	mustEcho(t, dial(t, p.Addr()), "slow")
	p.SetLatency(0, 0)
	mustEcho(t, dial(t, p.Addr()), "fast")
}

func TestCloseStopsEverything(t *testing.T) {
	leakcheck.Check(t)
	target := echoServer(t)
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	mustEcho(t, c, "x")
	// A goroutine waiting on latency must end too.
	p.SetLatency(time.Hour, time.Hour)
	if _, err := c.Write([]byte("delayed\n")); err != nil {
		t.Fatal(err)
	}
	// And one draining a connection accepted during a blackhole.
	p.Blackhole()
	held := dial(t, p.Addr())
	if _, err := held.Write([]byte("dropped\n")); err != nil {
		t.Fatal(err)
	}
	waitActive(t, p, 2)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(""); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("New(\"\") err = %v; want ErrNoTarget", err)
	}
}
