package redisserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors wrapped by Start, Restart and friends.
var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("redisserver: server closed")
	// ErrStartTimeout: the process ran but did not answer PING in time.
	ErrStartTimeout = errors.New("redisserver: server did not answer PING in time")
	// ErrExited: the process exited during startup (see the log excerpt in the message).
	ErrExited = errors.New("redisserver: redis-server exited during startup")
	// ErrInvalidOptions: bad Options/ClusterOptions/SentinelOptions field.
	ErrInvalidOptions = errors.New("redisserver: invalid options")
)

// errPortInUse marks a startup failure caused by a port taken between
// freePort and the server's bind; Start retries with another port.
var errPortInUse = errors.New("redisserver: port already in use")

// Options configures a standalone server. The zero value is a plain,
// passwordless server.
type Options struct {
	// Password is the default user's password (requirepass, and masterauth
	// so replicas of a password-protected master can sync).
	Password string
	// Users are extra ACL users, written as `user` lines of the config file.
	Users []User
	// TLS serves TLS only (port 0, tls-port P) with certificates generated at
	// start; see Server.ClientCerts. Start fails with ErrTLSUnsupported when
	// the redis-server build lacks TLS (check TLSSupported first).
	TLS bool
	// TLSAuthClients is tls-auth-clients: "yes" (default, as in Redis: a
	// client certificate is required), "optional" or "no".
	TLSAuthClients string
	// Args are extra redis-server command-line arguments appended as is,
	// e.g. "--client-output-buffer-limit", "pubsub 64kb 32kb 1".
	Args []string
	// StartTimeout bounds the wait for PING after (re)start; 0 = 10s.
	StartTimeout time.Duration
}

// User is one ACL user.
type User struct {
	Name     string
	Password string   // "" = nopass
	Rules    []string // ACL rules after "on >password"; nil = ~* &* +@all
}

// Server is one redis-server (or sentinel) process on a loopback port.
// Methods are safe for concurrent use.
type Server struct {
	bin          string
	dir          string
	ownDir       bool // remove dir on Close
	port         int
	argv         []string // arguments after the binary: config file, then extras
	logPath      string
	dial         dialer
	certs        *tlsFiles
	tlsConf      *tls.Config
	startTimeout time.Duration

	mu     sync.Mutex // guards proc and closed
	proc   *process   // nil while not running
	closed bool
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed after cmd.Wait returned
}

// launchSpec is what Start, StartCluster and StartSentinel share.
type launchSpec struct {
	opts      Options
	certs     *tlsFiles                        // shared certificates (cluster); nil = generate if TLS
	confLines func(port int) ([]string, error) // extra config lines (cluster, sentinel); nil = none
	sentinel  bool                             // run in sentinel mode (no save/appendonly lines)
	prefix    string                           // temp dir name prefix
	port      int                              // fixed port (no retry); 0 = pick a free one
}

// Start launches a standalone redis-server on a free loopback port and
// waits until it answers PING.
func Start(opts Options) (*Server, error) {
	return launch(launchSpec{opts: opts, prefix: "redisserver-*"})
}

func validate(opts Options) error {
	switch opts.TLSAuthClients {
	case "", "yes", "no", "optional":
	default:
		return fmt.Errorf("%w: TLSAuthClients must be yes, no or optional, got %q", ErrInvalidOptions, opts.TLSAuthClients)
	}
	for i, u := range opts.Users {
		if u.Name == "" || strings.ContainsAny(u.Name, " \t\r\n\"") {
			return fmt.Errorf("%w: Users[%d].Name %q is empty or has spaces/quotes", ErrInvalidOptions, i, u.Name)
		}
	}
	if opts.StartTimeout < 0 {
		return fmt.Errorf("%w: StartTimeout must be >= 0", ErrInvalidOptions)
	}
	return nil
}

func launch(spec launchSpec) (*Server, error) {
	if err := validate(spec.opts); err != nil {
		return nil, err
	}
	bin, err := ServerBinary()
	if err != nil {
		return nil, err
	}
	if spec.opts.TLS && !TLSSupported() {
		return nil, ErrTLSUnsupported
	}
	dir, err := os.MkdirTemp("", spec.prefix)
	if err != nil {
		return nil, fmt.Errorf("redisserver: temp dir: %w", err)
	}
	dir = absDir(dir)
	s := &Server{
		bin:          bin,
		dir:          dir,
		ownDir:       true,
		logPath:      filepath.Join(dir, "redis.log"),
		certs:        spec.certs,
		startTimeout: spec.opts.StartTimeout,
	}
	if s.startTimeout == 0 {
		s.startTimeout = 10 * time.Second
	}
	if spec.opts.TLS {
		if s.certs == nil {
			f, err := writeCerts(dir)
			if err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			s.certs = &f
		}
		if s.tlsConf, err = s.certs.client.TLSConfig(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	// A free port can be taken again before redis binds it: retry a few times.
	for attempt := 0; ; attempt++ {
		if spec.port != 0 {
			s.port = spec.port
		} else if s.port, err = freePort(); err != nil {
			break
		}
		s.dial = dialer{addr: s.Addr(), tls: s.tlsConf, password: spec.opts.Password}
		if err = s.writeConfig(spec); err != nil {
			break
		}
		err = s.start()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || spec.port != 0 || attempt == 4 {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

func (s *Server) writeConfig(spec launchSpec) error {
	o := spec.opts
	var lines []string
	add := func(parts ...string) { lines = append(lines, strings.Join(parts, " ")) }
	if o.TLS {
		add("port", "0")
		add("tls-port", strconv.Itoa(s.port))
		add("tls-cert-file", quote(s.certs.serverCert))
		add("tls-key-file", quote(s.certs.serverKey))
		add("tls-ca-cert-file", quote(s.certs.ca))
		auth := o.TLSAuthClients
		if auth == "" {
			auth = "yes"
		}
		add("tls-auth-clients", auth)
		add("tls-replication", "yes")
	} else {
		add("port", strconv.Itoa(s.port))
	}
	add("bind", "127.0.0.1")
	add("dir", quote(s.dir))
	add("logfile", quote(s.logPath))
	add("daemonize", "no")
	if !spec.sentinel {
		add("save", `""`)
		add("appendonly", "no")
		// Replicas sync at once instead of after the default 5s wait for
		// more replicas to share one transfer.
		add("repl-diskless-sync-delay", "0")
	}
	if o.Password != "" {
		add("requirepass", quote(o.Password))
		if !spec.sentinel {
			add("masterauth", quote(o.Password))
		}
	}
	for _, u := range o.Users {
		pw := "nopass"
		if u.Password != "" {
			pw = quote(">" + u.Password)
		}
		rules := u.Rules
		if rules == nil {
			rules = []string{"~*", "&*", "+@all"}
		}
		add(append([]string{"user", u.Name, "on", pw}, rules...)...)
	}
	if spec.confLines != nil {
		extra, err := spec.confLines(s.port)
		if err != nil {
			return err
		}
		lines = append(lines, extra...)
	}
	conf := filepath.Join(s.dir, "redis.conf")
	if spec.sentinel {
		conf = filepath.Join(s.dir, "sentinel.conf")
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("redisserver: write config: %w", err)
	}
	s.argv = append([]string{conf}, o.Args...)
	if spec.sentinel {
		s.argv = append(s.argv, "--sentinel")
	}
	return nil
}

// quote renders s as a double-quoted redis config argument.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// start runs the process and waits for PING. Caller must not hold mu.
func (s *Server) start() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.proc != nil {
		s.mu.Unlock()
		return nil
	}
	logOffset := fileSize(s.logPath)
	cmd := exec.Command(s.bin, s.argv...)
	cmd.Dir = s.dir
	setProcAttr(cmd)
	// Config errors are printed before the logfile is opened: send stdout
	// and stderr to the same log (an *os.File needs no copying goroutine).
	out, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("redisserver: open log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	out.Close() // the child has its own descriptor
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("redisserver: start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.proc = p
	s.mu.Unlock()

	deadline := time.Now().Add(s.startTimeout)
	var lastErr error
	for {
		select {
		case <-p.done:
			s.clearProc(p)
			tail := readFrom(s.logPath, logOffset)
			if strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("%w: %d", errPortInUse, s.port)
			}
			return fmt.Errorf("%w (port %d, log %s):\n%s", ErrExited, s.port, s.logPath, lastLines(tail, 15))
		default:
		}
		d := s.dial
		d.timeout = 500 * time.Millisecond
		reply, err := d.do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			s.signalAndWait(p, syscall.SIGKILL, 0)
			return fmt.Errorf("%w (port %d, after %v, last error: %v); log:\n%s", ErrStartTimeout, s.port, s.startTimeout, lastErr, lastLines(readFrom(s.logPath, logOffset), 15))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) clearProc(p *process) {
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
	}
	s.mu.Unlock()
}

// signalAndWait signals p and waits for it to exit; after grace (>0) it
// escalates to SIGKILL.
func (s *Server) signalAndWait(p *process, sig syscall.Signal, grace time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	if grace > 0 {
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
			_ = p.cmd.Process.Kill()
		}
		t.Stop()
	}
	<-p.done
	s.clearProc(p)
}

func (s *Server) running() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Addr is "127.0.0.1:port" (the TLS port when Options.TLS).
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's port; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// Dir is the server's temp directory (config, log, certificates).
func (s *Server) Dir() string { return s.dir }

// LogPath is the server's log file, useful when a test fails.
func (s *Server) LogPath() string { return s.logPath }

// Password is Options.Password.
func (s *Server) Password() string { return s.dial.password }

// ClientCerts returns the client certificate files (zero value without TLS).
func (s *Server) ClientCerts() ClientCerts {
	if s.certs == nil {
		return ClientCerts{}
	}
	return s.certs.client
}

// TLSConfig returns a client TLS config trusting the server (with the client
// certificate), or nil without TLS. Each call returns a fresh clone.
func (s *Server) TLSConfig() *tls.Config {
	if s.tlsConf == nil {
		return nil
	}
	return s.tlsConf.Clone()
}

// Running reports whether the process is up (not killed, stopped or closed).
func (s *Server) Running() bool { return s.running() != nil }

// PID is the process id, or 0 when not running.
func (s *Server) PID() int {
	if p := s.running(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// Do sends one command as the default user (AUTH with Options.Password when
// set) on a fresh connection and returns the reply as a string: simple and
// bulk strings as is, integers in decimal, arrays flattened with "\n". A nil
// reply is ErrNil; an error reply is a *ReplyError.
func (s *Server) Do(args ...string) (string, error) { return s.dial.do(args...) }

// DoAs is Do authenticated as an ACL user.
func (s *Server) DoAs(user, password string, args ...string) (string, error) {
	d := s.dial
	d.user, d.password = user, password
	return d.do(args...)
}

// Kill sends SIGKILL and waits until the process is gone (its port is then
// free). A no-op when not running.
func (s *Server) Kill() {
	if p := s.running(); p != nil {
		s.signalAndWait(p, syscall.SIGKILL, 0)
	}
}

// Stop shuts the server down gracefully (SIGTERM; SIGKILL after 10s) and
// waits for it to exit. A no-op when not running.
func (s *Server) Stop() {
	if p := s.running(); p != nil {
		s.signalAndWait(p, syscall.SIGTERM, 10*time.Second)
	}
}

// Pause freezes the process (SIGSTOP): connections stay open but nothing
// answers, like a hung server. Resume undoes it.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	p := s.running()
	if p == nil {
		return fmt.Errorf("redisserver: %s is not running", s.Addr())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("redisserver: signal %v: %w", sig, err)
	}
	return nil
}

// Restart starts the server again on the same port with the same config
// (stopping it first if it runs) and waits for PING. Cluster nodes keep
// their identity (nodes.conf in Dir).
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Close kills the process (SIGKILL: the data is throwaway) and removes the
// temp directory. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		s.signalAndWait(p, syscall.SIGKILL, 0) // also ends a paused (SIGSTOP) process
	}
	return s.removeDir()
}

func (s *Server) removeDir() error {
	if !s.ownDir {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("redisserver: remove %s: %w", s.dir, err)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
