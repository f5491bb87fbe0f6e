// Package testenv starts the servers the relay's tests and benchmarks run
// against: a PostgreSQL cluster (initdb as a non-root user, wal_level
// logical) and redis-server, each on a free loopback port in a temporary
// directory. Missing binaries fail with a message saying how to install
// them.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is one running PostgreSQL cluster.
type Postgres struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	cred *syscall.Credential
	bin  string
	// settings are extra -c name=value arguments.
	settings []string
}

// pgBin finds the directory of initdb: $PG_BIN, then PATH, then the newest
// /usr/lib/postgresql/*/bin.
func pgBin() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	ds, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(ds) == 0 {
		return "", errors.New("testenv: PostgreSQL not found (no initdb on PATH or in /usr/lib/postgresql/*/bin): install it (apt-get install postgresql) or set PG_BIN; scripts/test.sh installs it")
	}
	sort.Slice(ds, func(i, j int) bool { return version(ds[i]) < version(ds[j]) })
	return filepath.Dir(ds[len(ds)-1]), nil
}

func version(p string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return v
}

// StartPostgres runs initdb in a temporary directory and starts the server
// on a free 127.0.0.1 port with logical replication on; settings are extra
// "name=value" server settings (later ones win). Run as root, the server
// runs as the "postgres" user (PostgreSQL refuses root).
func StartPostgres(settings ...string) (*Postgres, error) {
	bin, err := pgBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "relaytest-pg-*")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin, done: make(chan struct{}), settings: settings}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testenv: running as root, PostgreSQL needs a non-root user and there is no \"postgres\" user (apt-get install postgresql creates it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := p.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: initdb: %v: %s", err, out)
	}
	for attempt := 0; ; attempt++ {
		p.port, err = freePort()
		if err != nil {
			return nil, err
		}
		err = p.start()
		if err == nil || attempt == 3 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(p.bin, name), args...)
	c.Dir = p.dir
	c.SysProcAttr = procAttr(p.cred, syscall.SIGQUIT)
	return c
}

func (p *Postgres) start() error {
	logf, err := os.Create(filepath.Join(p.dir, "postgres.log"))
	if err != nil {
		return err
	}
	if p.cred != nil {
		_ = logf.Chown(int(p.cred.Uid), int(p.cred.Gid))
	}
	args := []string{"-D", filepath.Join(p.dir, "data"), "-p", strconv.Itoa(p.port)}
	for _, kv := range append([]string{"listen_addresses=127.0.0.1", "unix_socket_directories=" + p.dir,
		"wal_level=logical", "max_wal_senders=8", "max_replication_slots=8",
		"fsync=off", "full_page_writes=off", // a throwaway cluster: no durability needed
		"wal_sender_timeout=10s", "max_connections=50", "shared_buffers=32MB"}, p.settings...) {
		args = append(args, "-c", kv)
	}
	c := p.command("postgres", args...)
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("testenv: postgres: %w", err)
	}
	p.cmd = c
	p.done = make(chan struct{})
	go func() { _ = c.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
			return fmt.Errorf("testenv: postgres exited during startup: %s", tail(string(log)))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgconn.Connect(ctx, p.DSN("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.kill()
	log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	return fmt.Errorf("testenv: postgres did not accept connections within 20s: %s", tail(string(log)))
}

// Addr is host:port.
func (p *Postgres) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// DSN returns a URL for database db as the superuser "postgres".
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", p.Addr(), db)
}

// DSNUser is DSN for another user.
func (p *Postgres) DSNUser(userName, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", userName, p.Addr(), db)
}

func (p *Postgres) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Close stops the server and removes its directory.
func (p *Postgres) Close() error {
	p.kill()
	return os.RemoveAll(p.dir)
}

// Redis is one running redis-server that keeps its data across Stop and
// Start (an append-only file, flushed at shutdown).
type Redis struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server on a free 127.0.0.1 port.
func StartRedis() (*Redis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("testenv: redis-server not found on PATH: install it (apt-get install redis-server); scripts/test.sh installs it")
	}
	dir, err := os.MkdirTemp("", "relaytest-redis-*")
	if err != nil {
		return nil, err
	}
	r := &Redis{dir: dir}
	for attempt := 0; ; attempt++ {
		if r.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = r.Start(); err == nil || attempt == 3 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Start (re)starts the server on its port, with the data it had.
func (r *Redis) Start() error {
	c := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	c.SysProcAttr = procAttr(nil, syscall.SIGKILL)
	if err := c.Start(); err != nil {
		return fmt.Errorf("testenv: redis-server: %w", err)
	}
	r.cmd, r.done = c, make(chan struct{})
	done := r.done
	go func() { _ = c.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("testenv: redis-server exited during startup: %s", tail(string(log)))
		default:
		}
		if conn, err := net.DialTimeout("tcp", r.Addr(), 100*time.Millisecond); err == nil {
			_, _ = conn.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := conn.Read(buf)
			conn.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Stop()
	return errors.New("testenv: redis-server did not answer PING within 10s")
}

// Stop shuts the server down (SIGTERM: it writes its data first).
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		r.cmd = nil
	}
}

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Close stops the server and removes its directory.
func (r *Redis) Close() error {
	r.Stop()
	return os.RemoveAll(r.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
