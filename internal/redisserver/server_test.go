package redisserver

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

func TestStandaloneLifecycle(t *testing.T) {
	leakcheck.Check(t)
	s := StartT(t, Options{})
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
	if got, err := s.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK", got, err)
	}
	if got, err := s.Do("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}
	if _, err := s.Do("GET", "missing"); !errors.Is(err, ErrNil) {
		t.Fatalf("GET missing err = %v; want ErrNil", err)
	}
	var re *ReplyError
	if _, err := s.Do("NOSUCHCOMMAND"); !errors.As(err, &re) {
		t.Fatalf("unknown command err = %v; want *ReplyError", err)
	}

	port := s.Port()
	s.Kill()
	if s.Running() {
		t.Fatal("Running() = true after Kill")
	}
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	// The port is free again right after Kill.
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("port %d not free after Kill: %v", port, err)
	}
	l.Close()

	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Port() != port {
		t.Fatalf("port after Restart = %d, want %d", s.Port(), port)
	}
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Restart = %q, %v; want PONG", got, err)
	}
	// Data is not persisted (save "", appendonly no).
	if _, err := s.Do("GET", "k"); !errors.Is(err, ErrNil) {
		t.Fatalf("GET k after Restart err = %v; want ErrNil (no persistence)", err)
	}

	s.Stop()
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart after Stop: %v", err)
	}

	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s still exists after Close (stat err %v)", dir, err)
	}
	if err := s.Restart(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Restart after Close err = %v; want ErrClosed", err)
	}
}

func TestPauseResume(t *testing.T) {
	leakcheck.Check(t)
	s := StartT(t, Options{})
	if err := s.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	d := s.dial
	d.timeout = 200 * time.Millisecond
	if _, err := d.do("PING"); err == nil {
		t.Fatal("PING answered while paused")
	}
	if err := s.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Resume = %q, %v; want PONG", got, err)
	}
	// Close must also end a paused process.
	if err := s.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
}

func TestPasswordAndACL(t *testing.T) {
	leakcheck.Check(t)
	s := StartT(t, Options{
		Password: `s3cret "quoted"`,
		Users: []User{
			{Name: "alice", Password: "wonder land"},
			{Name: "reader", Password: "r", Rules: []string{"~*", "+get", "+ping"}},
		},
	})
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING with password = %q, %v; want PONG", got, err)
	}
	noAuth := dialer{addr: s.Addr()}
	if _, err := noAuth.do("GET", "x"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("GET without AUTH err = %v; want NOAUTH", err)
	}
	if got, err := s.DoAs("alice", "wonder land", "SET", "a", "1"); err != nil || got != "OK" {
		t.Fatalf("SET as alice = %q, %v; want OK", got, err)
	}
	if got, err := s.DoAs("reader", "r", "GET", "a"); err != nil || got != "1" {
		t.Fatalf("GET as reader = %q, %v; want 1", got, err)
	}
	if _, err := s.DoAs("reader", "r", "SET", "a", "2"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SET as reader err = %v; want NOPERM", err)
	}
	if _, err := s.DoAs("alice", "wrong", "PING"); err == nil {
		t.Fatal("AUTH with a wrong password succeeded")
	}
}

func TestExtraArgs(t *testing.T) {
	leakcheck.Check(t)
	s := StartT(t, Options{Args: []string{"--client-output-buffer-limit", "pubsub 64kb 32kb 1"}})
	got, err := s.Do("CONFIG", "GET", "client-output-buffer-limit")
	if err != nil {
		t.Fatalf("CONFIG GET: %v", err)
	}
	if !strings.Contains(got, "pubsub 65536 32768 1") {
		t.Fatalf("client-output-buffer-limit = %q; want it to contain pubsub 65536 32768 1", got)
	}
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"bad TLSAuthClients", Options{TLSAuthClients: "maybe"}},
		{"empty user name", Options{Users: []User{{Name: ""}}}},
		{"user name with space", Options{Users: []User{{Name: "a b"}}}},
		{"negative timeout", Options{StartTimeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(tt.opts)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Start err = %v; want ErrInvalidOptions", err)
			}
		})
	}
}

func TestBadArgExits(t *testing.T) {
	_, err := Start(Options{Args: []string{"--no-such-directive", "1"}})
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "no-such-directive") {
		t.Fatalf("Start err = %v; want ErrExited with the log excerpt naming the directive", err)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(Options{})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Fatalf("Start err = %v; want ErrNotInstalled with install hint", err)
	}
}
