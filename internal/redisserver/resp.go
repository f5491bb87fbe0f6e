package redisserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrNil is returned by Do for a RESP nil reply.
var ErrNil = errors.New("redisserver: nil reply")

// ReplyError is a Redis error reply ("-ERR ...", "-NOAUTH ...").
type ReplyError struct{ Msg string }

func (e *ReplyError) Error() string { return "redisserver: redis error: " + e.Msg }

// dialer describes how to reach and authenticate to one process.
type dialer struct {
	addr     string
	tls      *tls.Config // nil = plain TCP
	user     string      // "" = default user
	password string      // "" = no AUTH
	timeout  time.Duration
}

// do opens a connection, authenticates, sends one command and returns its
// reply flattened to a string (see Server.Do). A connection per call keeps it
// simple and safe to use while the server is killed and restarted.
func (d dialer) do(args ...string) (string, error) { return flat(d.call(args...)) }

// flat turns a readTree result into Do's form: arrays joined by "\n", a nil
// reply as ErrNil.
func flat(v any, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ErrNil
	}
	return flatten(v), nil
}

// call is do without flattening: the reply as a tree (see readTree).
func (d dialer) call(args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("redisserver: Do: no command")
	}
	timeout := d.timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	nd := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if d.tls != nil {
		conn, err = tls.DialWithDialer(nd, "tcp", d.addr, d.tls)
	} else {
		conn, err = nd.Dial("tcp", d.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("redisserver: dial %s: %w", d.addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(conn)
	if d.password != "" {
		auth := []string{"AUTH", d.password}
		if d.user != "" {
			auth = []string{"AUTH", d.user, d.password}
		}
		if _, err := roundTrip(conn, r, auth); err != nil {
			return nil, fmt.Errorf("redisserver: AUTH on %s: %w", d.addr, err)
		}
	}
	return roundTrip(conn, r, args)
}

func roundTrip(w io.Writer, r *bufio.Reader, args []string) (any, error) {
	if _, err := w.Write(encodeCommand(args)); err != nil {
		return nil, fmt.Errorf("redisserver: write: %w", err)
	}
	return readTree(r)
}

func encodeCommand(args []string) []byte {
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

func flatten(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = flatten(e)
		}
		return strings.Join(parts, "\n")
	default:
		return ""
	}
}

// readTree reads one RESP2 reply as a tree: string, []any, or nil for a nil
// reply. An error reply at the top level is returned as *ReplyError; inside
// an array it becomes its message text.
func readTree(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("redisserver: read reply: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("redisserver: read reply: empty line")
	}
	body := line[1:]
	switch line[0] {
	case '+', ':':
		return body, nil
	case '-':
		return nil, &ReplyError{Msg: body}
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("redisserver: bad bulk length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		// Grow with the data actually received: a bogus length must not
		// allocate up front.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r, int64(n)+2); err != nil {
			return nil, fmt.Errorf("redisserver: read bulk: %w", err)
		}
		return string(buf.Bytes()[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, fmt.Errorf("redisserver: bad array length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, 0, min(n, 1024))
		for i := 0; i < n; i++ {
			v, err := readTree(r)
			var re *ReplyError
			if errors.As(err, &re) {
				v, err = re.Msg, nil
			}
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("redisserver: unexpected reply %q", line)
	}
}
