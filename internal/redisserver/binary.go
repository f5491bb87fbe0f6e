package redisserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotInstalled is wrapped when redis-server or redis-cli is not on PATH.
var ErrNotInstalled = errors.New("redisserver: redis-server/redis-cli not found on PATH; install it with `apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)")

// ErrTLSUnsupported is returned by Start when Options.TLS is set but the
// installed redis-server was built without TLS.
var ErrTLSUnsupported = errors.New("redisserver: the installed redis-server was built without TLS support (BUILD_TLS=no)")

// ServerBinary returns the path of redis-server, or an error wrapping
// ErrNotInstalled that says how to install it.
func ServerBinary() (string, error) { return lookBinary("redis-server") }

// CLIBinary returns the path of redis-cli, or an error wrapping ErrNotInstalled.
func CLIBinary() (string, error) { return lookBinary("redis-cli") }

func lookBinary(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (looking for %s: %v)", ErrNotInstalled, name, err)
	}
	return p, nil
}

var tlsProbe struct {
	once sync.Once
	ok   bool
}

// TLSSupported reports whether the installed redis-server accepts the
// tls-port directive. It runs the binary once (cached): a TLS build fails with
// "No tls-cert-file configured", a non-TLS build rejects the directive.
func TLSSupported() bool {
	tlsProbe.once.Do(func() { tlsProbe.ok = probeTLS() })
	return tlsProbe.ok
}

func probeTLS() bool {
	bin, err := ServerBinary()
	if err != nil {
		return false
	}
	dir, err := os.MkdirTemp("", "redisserver-probe-*")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return false
	}
	// No cert configured: a TLS build refuses to start with a TLS-specific
	// message, so this never actually listens for long.
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Dir = dir
	setProcAttr(cmd)
	done := make(chan struct{})
	var out []byte
	go func() {
		out, _ = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
		<-done
	}
	s := string(out)
	return strings.Contains(s, "tls-cert-file") || strings.Contains(s, "Failed to configure TLS") || strings.Contains(s, "Ready to accept")
}

// freePort asks the kernel for a free loopback port. The port is released
// before use, so a caller must retry if the server then fails to bind.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisserver: pick free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free loopback ports (all are held open while
// choosing, then released).
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("redisserver: pick free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
