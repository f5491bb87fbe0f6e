package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/workload"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

// Node processes (Config.Processes): the run re-executes its own binary
// once per node with the node's spec in the nodeEnv environment variable.
// A node process holds one cache and its readers and writers; it reads and
// writes the database through the run's database server (loopback TCP) and
// reports on its stdout, one line each:
//
//	r KEY VERSION START   a read that started at START (Unix ns) returned VERSION
//	a KEY VERSION AT      an acknowledged write
//	w NOW                 watermark: every event before NOW is above it
//	s JSON                its cache's Stats and workload counters
//
// Times are wall-clock Unix nanoseconds: every process on the host reads
// the same clock, and the run's checker compares only these times with
// each other. A read is judged once every node's watermark has passed its
// start minus the bound, so a write acknowledged by another node before
// that is always known to the checker first.
//
// Closing the process's stdin stops it: the workload ends, the cache
// closes and the process exits 0. Until it reads "start" on stdin, the
// process only builds its cache and reports its stats.

const nodeEnv = "INVACACHE_CHAOS_NODE"

// nodeSpec is what a node process needs, passed as JSON in nodeEnv.
type nodeSpec struct {
	ID           int
	Redis        config.RedisInvalidationConfig
	MaxStaleness time.Duration
	Capacity     int
	DBAddr       string
	Keys         int
	Readers      int
	Writers      int
	ReadRate     int
	WriteRate    int
	Seed         uint64
	NoBroadcast  bool
	Verbose      bool
}

// nodeStatus is a node process's "s" line.
type nodeStatus struct {
	Stats                                  invacache.Stats
	Reads, ReadErrors, Sets, Deletes, Acks uint64
	WriteErrors, Aborted                   uint64
}

// NodeProcess runs this process as a chaos node when the run started it as
// one (Config.Processes) and returns its exit code with ok true; otherwise
// it returns ok false at once. Call it first in main (and in TestMain of a
// test binary that runs chaos with Processes).
func NodeProcess() (code int, ok bool) {
	env, ok := os.LookupEnv(nodeEnv)
	if !ok {
		return 0, false
	}
	var spec nodeSpec
	if err := json.Unmarshal([]byte(env), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "chaos node: bad %s: %v\n", nodeEnv, err)
		return 2, true
	}
	if err := runNode(spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "chaos node %d: %v\n", spec.ID, err)
		return 1, true
	}
	return 0, true
}

// nodeCacheConfig is the cache of every node, in-process or not.
func nodeCacheConfig(rc config.RedisInvalidationConfig, maxStaleness, outageStaleness time.Duration, capacity int, logger *slog.Logger) config.InvaCacheConfig {
	return config.InvaCacheConfig{
		Backend: &config.BackendConfig{InMemory: &config.InMemoryConfig{Capacity: capacity}},
		Invalidation: &config.InvalidationConfig{
			Type:            "redis",
			Redis:           &rc,
			MaxStaleness:    maxStaleness,
			OutageStaleness: outageStaleness,
		},
		Logger: logger,
	}
}

// runNode is the body of a node process.
func runNode(spec nodeSpec, stdin io.Reader, stdout io.Writer) error {
	var logger *slog.Logger
	if spec.Verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	c, err := invacache.NewCache[uint64](nodeCacheConfig(spec.Redis, spec.MaxStaleness, 0, spec.Capacity, logger))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := dialDB(spec.DBAddr, spec.Keys, spec.Readers+spec.Writers, cancel)
	if err != nil {
		return err
	}
	defer db.close()
	rep := &reporter{out: bufio.NewWriterSize(stdout, 64<<10)}
	var cnt workload.Counters

	// stdin: "start" begins the workload; EOF ends the process.
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if sc.Text() == "start" {
				close(started)
			}
		}
		cancel()
	}()

	// The reporter flushes events, a watermark and the stats every 20ms.
	repDone := make(chan struct{})
	go func() {
		defer close(repDone)
		workload.Paced(ctx, 20*time.Millisecond, func() { rep.flush(c, &cnt) })
	}()

	var wg sync.WaitGroup
	select {
	case <-started:
		for i := 0; i < spec.Readers; i++ {
			rd := workload.Reader{Cache: c, DB: db, Check: rep, Counters: &cnt,
				Rate: spec.ReadRate, Zipf: zipf, Seed: spec.Seed + uint64(spec.ID*100+i)}
			wg.Add(1)
			go func() { defer wg.Done(); rd.Run(ctx) }()
		}
		for i := 0; i < spec.Writers; i++ {
			wr := workload.Writer{Cache: c, DB: db, Check: rep, Counters: &cnt,
				Rate: spec.WriteRate, Zipf: zipf, Seed: spec.Seed + uint64(10_000+spec.ID*100+i), DeleteShare: 0.5, NoBroadcast: spec.NoBroadcast}
			wg.Add(1)
			go func() { defer wg.Done(); wr.Run(ctx) }()
		}
	case <-ctx.Done():
	}
	<-ctx.Done()
	wg.Wait()
	<-repDone
	rep.flush(c, &cnt)
	return rep.err
}

// reporter is a node process's workload.Judge: it queues reads and
// acknowledgements for its stdout.
type reporter struct {
	mu  sync.Mutex
	buf []byte // guarded by mu; pending event lines
	out *bufio.Writer
	err error // first write error; only the flushing goroutine touches out and err
}

func (p *reporter) Read(key string, version uint64, start time.Time) bool {
	p.mu.Lock()
	p.buf = fmt.Appendf(p.buf, "r %s %d %d\n", key, version, start.UnixNano())
	p.mu.Unlock()
	return false
}

func (p *reporter) Ack(key string, version uint64) {
	p.mu.Lock()
	// The time is read under the lock, so a watermark taken later covers it.
	p.buf = fmt.Appendf(p.buf, "a %s %d %d\n", key, version, time.Now().UnixNano())
	p.mu.Unlock()
}

// flush writes the queued events, a watermark and the stats. It is called
// by one goroutine at a time.
func (p *reporter) flush(c invacache.Cache[uint64], cnt *workload.Counters) {
	p.mu.Lock()
	buf := p.buf
	p.buf = nil
	wm := time.Now().UnixNano()
	p.mu.Unlock()
	st := nodeStatus{Stats: c.Stats(),
		Reads: cnt.Reads.Load(), ReadErrors: cnt.ReadErrors.Load(), Sets: cnt.Sets.Load(), Deletes: cnt.Deletes.Load(),
		Acks: cnt.Acks.Load(), WriteErrors: cnt.WriteErrors.Load(), Aborted: cnt.Aborted.Load()}
	js, err := json.Marshal(st)
	if err != nil {
		p.err = err
		return
	}
	if p.err != nil {
		return
	}
	p.out.Write(buf)
	fmt.Fprintf(p.out, "w %d\ns %s\n", wm, js)
	p.err = p.out.Flush()
}

// dbClient is a node process's workload.DB: the run's database over
// loopback TCP, one connection per concurrent call.
type dbClient struct {
	pick  *simdb.DB // same key names as the run's database, for ZipfPicker
	conns chan *dbConn
	fail  func() // ends the process's workload when the run's database is gone
}

type dbConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialDB(addr string, keys, n int, fail func()) (*dbClient, error) {
	d := &dbClient{pick: simdb.New(keyPrefix, keys, 0), conns: make(chan *dbConn, n), fail: fail}
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("chaos node: dial database %s: %w", addr, err)
		}
		d.conns <- &dbConn{c: c, br: bufio.NewReader(c)}
	}
	return d, nil
}

func (d *dbClient) close() {
	for {
		select {
		case c := <-d.conns:
			c.c.Close()
		default:
			return
		}
	}
}

func (d *dbClient) ZipfPicker(seed uint64, s float64) func() string {
	return d.pick.ZipfPicker(seed, s)
}

// call sends line and reads the version in the reply.
func (c *dbConn) call(line string) (uint64, error) {
	if _, err := io.WriteString(c.c, line); err != nil {
		return 0, err
	}
	reply, err := c.br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(reply), 10, 64)
}

func (d *dbClient) Read(key string) uint64 {
	c := <-d.conns
	defer func() { d.conns <- c }()
	v, err := c.call("R " + key + "\n")
	if err != nil {
		d.fail()
	}
	return v
}

func (d *dbClient) Write(key string, then func(version uint64)) uint64 {
	c := <-d.conns
	defer func() { d.conns <- c }()
	v, err := c.call("W " + key + "\n")
	if err != nil {
		d.fail()
		return 0
	}
	then(v) // the server holds the key's lock until "U"
	if _, err := io.WriteString(c.c, "U\n"); err != nil {
		d.fail()
	}
	return v
}

// dbServer serves the run's database to node processes.
type dbServer struct {
	ln net.Listener
	db *simdb.DB
	wg sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
}

func serveDB(db *simdb.DB) (*dbServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos: database server: %w", err)
	}
	s := &dbServer{ln: ln, db: db, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	return s, nil
}

func (s *dbServer) addr() string { return s.ln.Addr().String() }

func (s *dbServer) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil || len(line) < 3 {
			return
		}
		key := strings.TrimSpace(line[2:])
		switch line[0] {
		case 'R':
			if _, err := fmt.Fprintf(c, "%d\n", s.db.Read(key)); err != nil {
				return
			}
		case 'W':
			ok := true
			s.db.Write(key, func(v uint64) {
				// Hold the key's lock until the node's cache write is done.
				if _, err := fmt.Fprintf(c, "%d\n", v); err != nil {
					ok = false
					return
				}
				if u, err := br.ReadString('\n'); err != nil || u != "U\n" {
					ok = false
				}
			})
			if !ok {
				return
			}
		default:
			return
		}
	}
}

func (s *dbServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// procNode is the run's side of a node process.
type procNode struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{} // closed when its stdout ended
	stderr *tailBuffer

	mu     sync.Mutex
	status nodeStatus // guarded by mu; the last "s" line
	got    bool       // guarded by mu; a status arrived
}

// startProc starts node n as a process reporting to j.
func startProc(spec nodeSpec, n *node, j *remoteJudge) (*procNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("chaos: node processes: %w", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(js))
	setProcAttr(cmd)
	p := &procNode{cmd: cmd, done: make(chan struct{}), stderr: &tailBuffer{max: 4 << 10}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: start node process %d: %w", spec.ID, err)
	}
	go func() {
		defer close(p.done)
		p.readReports(out, n, j)
	}()
	return p, nil
}

// readReports consumes the node's stdout until it ends.
func (p *procNode) readReports(out io.Reader, n *node, j *remoteJudge) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) < 2 {
			continue
		}
		switch line[0] {
		case 'r', 'a':
			f := strings.Fields(line[2:])
			if len(f) != 3 {
				continue
			}
			v, err1 := strconv.ParseUint(f[1], 10, 64)
			t, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			if line[0] == 'r' {
				j.read(f[0], v, time.Unix(0, t))
			} else {
				j.chk.AckAt(f[0], v, time.Unix(0, t))
			}
		case 'w':
			if t, err := strconv.ParseInt(line[2:], 10, 64); err == nil {
				j.watermark(n.id, t)
			}
		case 's':
			var st nodeStatus
			if json.Unmarshal([]byte(line[2:]), &st) != nil {
				continue
			}
			p.mu.Lock()
			p.status, p.got = st, true
			p.mu.Unlock()
			n.cnt.Reads.Store(st.Reads)
			n.cnt.ReadErrors.Store(st.ReadErrors)
			n.cnt.Sets.Store(st.Sets)
			n.cnt.Deletes.Store(st.Deletes)
			n.cnt.Acks.Store(st.Acks)
			n.cnt.WriteErrors.Store(st.WriteErrors)
			n.cnt.Aborted.Store(st.Aborted)
		}
	}
	j.watermark(n.id, -1) // gone: no longer holds reads back
}

func (p *procNode) stats() (invacache.Stats, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status.Stats, p.got
}

func (p *procNode) start() error {
	_, err := io.WriteString(p.stdin, "start\n")
	return err
}

// stop closes the node's stdin and waits for it to exit (killing it after
// timeout).
func (p *procNode) stop(timeout time.Duration) error {
	p.stdin.Close()
	exited := make(chan error, 1)
	go func() {
		<-p.done
		exited <- p.cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("%w; stderr: %s", err, p.stderr.String())
		}
		return nil
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-exited
		return fmt.Errorf("did not exit within %v after its stdin closed; killed", timeout)
	}
}

// remoteJudge feeds the node processes' reads and acknowledgements to the
// checker. It holds a read back until every node's watermark has passed
// its start minus the bound (see the top of this file).
type remoteJudge struct {
	chk   *invacachetest.Checker
	bound time.Duration

	mu      sync.Mutex
	wm      []int64       // guarded by mu; per node, -1 = gone
	pending []pendingRead // guarded by mu
}

type pendingRead struct {
	key     string
	version uint64
	start   time.Time
}

func newRemoteJudge(chk *invacachetest.Checker, bound time.Duration, nodes int) *remoteJudge {
	return &remoteJudge{chk: chk, bound: bound, wm: make([]int64, nodes)}
}

// ready reports whether a read that started at start can be judged; mu held.
func (j *remoteJudge) ready(start time.Time) bool {
	limit := start.Add(-j.bound).UnixNano()
	for _, w := range j.wm {
		if w >= 0 && w < limit {
			return false
		}
	}
	return true
}

func (j *remoteJudge) read(key string, version uint64, start time.Time) {
	j.mu.Lock()
	if !j.ready(start) {
		j.pending = append(j.pending, pendingRead{key, version, start})
		j.mu.Unlock()
		return
	}
	j.mu.Unlock()
	j.chk.Read(key, version, start)
}

func (j *remoteJudge) watermark(id int, t int64) {
	j.mu.Lock()
	j.wm[id] = t
	var now []pendingRead
	keep := j.pending[:0]
	for _, p := range j.pending {
		if j.ready(p.start) {
			now = append(now, p)
		} else {
			keep = append(keep, p)
		}
	}
	j.pending = keep
	j.mu.Unlock()
	for _, p := range now {
		j.chk.Read(p.key, p.version, p.start)
	}
}

// drain judges the reads still held back (at the end of the run).
func (j *remoteJudge) drain() {
	j.mu.Lock()
	rest := j.pending
	j.pending = nil
	j.mu.Unlock()
	for _, p := range rest {
		j.chk.Read(p.key, p.version, p.start)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
