package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoTarget is returned by New for an empty target address.
var ErrNoTarget = errors.New("faultproxy: empty target address")

// dialTimeout bounds one upstream dial.
const dialTimeout = 5 * time.Second

// Stats are counters since New. Up is client→target, Down is target→client.
type Stats struct {
	Accepted  uint64 // connections accepted (including refused and blackholed)
	Refused   uint64 // connections closed at once because of Refuse
	Active    int    // connections open now
	BytesUp   uint64 // bytes forwarded (or being written) client→target
	BytesDown uint64 // bytes forwarded (or being written) target→client
	Dropped   uint64 // bytes read but discarded because of Blackhole
	DialFails uint64 // upstream dials that failed (client connection closed)
}

// Proxy is a TCP proxy on a loopback port that forwards to a target and can
// inject faults. Methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	ctx    context.Context // cancelled by Close: aborts upstream dials and latency waits
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and every link goroutine

	mu        sync.Mutex // guards the fields below
	target    string
	refuse    bool
	blackhole bool
	links     map[*link]struct{}
	closed    bool

	latencyUp, latencyDown atomic.Int64 // time.Duration per forwarded chunk

	accepted, refused, bytesUp, bytesDown, dropped, dialFails atomic.Uint64
}

// link is one proxied connection.
type link struct {
	client net.Conn
	server net.Conn    // set under Proxy.mu while the link is registered; nil while dialing, and for connections accepted during a blackhole
	held   atomic.Bool // blackholed: bytes are read and dropped, nothing is closed toward the client
}

// New listens on 127.0.0.1:0 and forwards every accepted connection to
// target (dialled per connection).
func New(target string) (*Proxy, error) {
	if target == "" {
		return nil, ErrNoTarget
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{ln: ln, ctx: ctx, cancel: cancel, target: target, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the proxy's listening address ("127.0.0.1:port"); clients connect here.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the current upstream address.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget changes the upstream for new connections (e.g. a server restarted
// on another port). Current connections keep their upstream.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// SetLatency delays every forwarded chunk by up (client→target) and down
// (target→client). It is a simple per-chunk sleep, so it also caps
// throughput; 0 disables.
func (p *Proxy) SetLatency(up, down time.Duration) {
	p.latencyUp.Store(int64(up))
	p.latencyDown.Store(int64(down))
}

// Cut abruptly closes every current connection on both sides (RST), so
// clients see "connection reset" errors. New connections are still accepted.
func (p *Proxy) Cut() {
	for _, l := range p.takeLinks(func(*link) bool { return true }) {
		l.reset()
	}
}

// Blackhole starts a partition: bytes stop flowing in both directions, but
// no connection is closed toward the client (no FIN, no RST), so clients see
// only silence and must rely on their timeouts. Bytes clients send are read
// and dropped; if the target closes a held connection, the client is not
// told. New connections are accepted but never reach the target.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = true
	for l := range p.links {
		l.held.Store(true)
	}
}

// Heal ends a blackhole. Connections held during it never resume (their
// streams lost bytes): they are reset, as a client would see when its next
// packet reaches a server that forgot the connection. New connections are
// forwarded normally.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.blackhole = false
	p.mu.Unlock()
	for _, l := range p.takeLinks(func(l *link) bool { return l.held.Load() }) {
		l.reset()
	}
}

// Refuse makes the proxy close new connections immediately (RST) after
// accepting them, like a server that is down. Current connections are kept.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
}

// Accept undoes Refuse.
func (p *Proxy) Accept() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := len(p.links)
	p.mu.Unlock()
	return Stats{
		Accepted:  p.accepted.Load(),
		Refused:   p.refused.Load(),
		Active:    active,
		BytesUp:   p.bytesUp.Load(),
		BytesDown: p.bytesDown.Load(),
		Dropped:   p.dropped.Load(),
		DialFails: p.dialFails.Load(),
	}
}

// Close stops listening, closes every connection and waits for all the
// proxy's goroutines. Idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, l := range p.takeLinks(func(*link) bool { return true }) {
		l.close()
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("faultproxy: close listener: %w", err)
	}
	return nil
}

// takeLinks removes and returns the links matching keep.
func (p *Proxy) takeLinks(match func(*link) bool) []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*link
	for l := range p.links {
		if match(l) {
			delete(p.links, l)
			out = append(out, l)
		}
	}
	return out
}

func (p *Proxy) removeLink(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. EMFILE): back off briefly unless closing.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		closed, refuse, blackhole, target := p.closed, p.refuse, p.blackhole, p.target
		var l *link
		if !closed && !refuse {
			l = &link{client: c}
			l.held.Store(blackhole)
			p.links[l] = struct{}{}
			p.wg.Add(1)
		}
		p.mu.Unlock()
		switch {
		case closed:
			c.Close()
		case refuse:
			p.refused.Add(1)
			resetConn(c)
		case blackhole:
			go p.serveHeld(l)
		default:
			go p.serve(l, target)
		}
	}
}

// serveHeld drains a connection accepted during a blackhole until Heal,
// Cut, Close or the client closes it.
func (p *Proxy) serveHeld(l *link) {
	defer p.wg.Done()
	p.pipe(l, l.client, nil, true)
}

func (p *Proxy) serve(l *link, target string) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: dialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", target)
	if err != nil {
		p.dialFails.Add(1)
		p.removeLink(l)
		l.client.Close()
		return
	}
	p.mu.Lock()
	_, live := p.links[l] // Cut/Close may have taken it while dialing
	if live {
		l.server = server
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if !live {
		server.Close()
		return
	}
	go func() {
		defer p.wg.Done()
		p.pipe(l, server, l.client, false)
	}()
	p.pipe(l, l.client, server, true)
}

// pipe copies src to dst (dst nil: drop everything) until src fails. fromClient
// says which direction this is, for counters and for blackhole semantics.
func (p *Proxy) pipe(l *link, src, dst net.Conn, fromClient bool) {
	latency, counter := &p.latencyDown, &p.bytesDown
	if fromClient {
		latency, counter = &p.latencyUp, &p.bytesUp
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if dst == nil || l.held.Load() {
				p.dropped.Add(uint64(n))
			} else {
				if d := time.Duration(latency.Load()); d > 0 && !p.sleep(d) {
					break
				}
				// Counted before writing so a client that has read the
				// bytes also sees them in Stats.
				counter.Add(uint64(n))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
		}
		if err != nil {
			break
		}
	}
	if l.held.Load() && !fromClient {
		// Partition: the target went away, but the client must not learn it.
		src.Close()
		return
	}
	p.removeLink(l)
	l.close()
}

// sleep waits d or until Close; false means closing.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// close closes both sides gracefully (FIN). Safe to repeat.
func (l *link) close() {
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
}

// reset closes both sides with RST.
func (l *link) reset() {
	resetConn(l.client)
	if l.server != nil {
		resetConn(l.server)
	}
}

// resetConn closes c with SO_LINGER 0, which sends RST instead of FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
