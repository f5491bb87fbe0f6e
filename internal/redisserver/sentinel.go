package redisserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// SentinelOptions configures StartSentinel.
type SentinelOptions struct {
	// MasterName is the monitored master's name; "" = "mymaster".
	MasterName string
	// Replicas is the number of replicas of the master (>= 0; failover needs 1).
	Replicas int
	// Sentinels is the number of sentinels (>= 1); quorum is a majority.
	Sentinels int
	// Node applies to the master and replicas (Password, Users, TLS, Args).
	// With TLS the sentinels serve TLS too and all processes share one CA.
	Node Options
	// SentinelPassword protects the sentinels themselves (requirepass and
	// sentinel-pass); "" = none.
	SentinelPassword string
	// DownAfter is down-after-milliseconds; 0 = 1s.
	DownAfter time.Duration
	// FailoverTimeout is failover-timeout; 0 = 3s.
	FailoverTimeout time.Duration
	// ReadyTimeout bounds the wait until sentinels see the replicas and
	// each other; 0 = 30s.
	ReadyTimeout time.Duration
}

// Sentinel is a master, its replicas and the sentinels monitoring it.
type Sentinel struct {
	name      string
	data      []*Server // data nodes: the initial master first, then replicas
	sentinels []*Server
	certDir   string // shared TLS certificates; "" without TLS
}

// StartSentinel starts the master, the replicas (replicaof the master) and
// the sentinels, and waits until every replica is in sync and every sentinel
// knows all replicas and the other sentinels (so a failover can start).
func StartSentinel(opts SentinelOptions) (*Sentinel, error) {
	if opts.MasterName == "" {
		opts.MasterName = "mymaster"
	}
	switch {
	case opts.Replicas < 0:
		return nil, fmt.Errorf("%w: SentinelOptions.Replicas must be >= 0, got %d", ErrInvalidOptions, opts.Replicas)
	case opts.Sentinels < 1:
		return nil, fmt.Errorf("%w: SentinelOptions.Sentinels must be >= 1, got %d", ErrInvalidOptions, opts.Sentinels)
	case strings.ContainsAny(opts.MasterName, " \t\r\n\""):
		return nil, fmt.Errorf("%w: SentinelOptions.MasterName %q has spaces or quotes", ErrInvalidOptions, opts.MasterName)
	case opts.DownAfter < 0 || opts.FailoverTimeout < 0 || opts.ReadyTimeout < 0:
		return nil, fmt.Errorf("%w: SentinelOptions durations must be >= 0", ErrInvalidOptions)
	}
	if err := validate(opts.Node); err != nil {
		return nil, err
	}
	downAfter, failoverTimeout, readyTimeout := opts.DownAfter, opts.FailoverTimeout, opts.ReadyTimeout
	if downAfter == 0 {
		downAfter = time.Second
	}
	if failoverTimeout == 0 {
		failoverTimeout = 3 * time.Second
	}
	if readyTimeout == 0 {
		readyTimeout = 30 * time.Second
	}
	st := &Sentinel{name: opts.MasterName}
	fail := func(err error) (*Sentinel, error) {
		st.Close()
		return nil, err
	}
	dataSpec := launchSpec{opts: opts.Node, prefix: "redisserver-sentinel-data-*"}
	if opts.Node.TLS {
		var err error
		if st.certDir, dataSpec.certs, err = sharedCerts("redisserver-sentinel-certs-*"); err != nil {
			return nil, err
		}
	}
	master, err := launch(dataSpec)
	if err != nil {
		return fail(fmt.Errorf("redisserver: sentinel master: %w", err))
	}
	st.data = append(st.data, master)
	replicaSpec := dataSpec
	replicaSpec.confLines = func(int) ([]string, error) {
		return []string{"replicaof 127.0.0.1 " + strconv.Itoa(master.Port())}, nil
	}
	for i := 0; i < opts.Replicas; i++ {
		r, err := launch(replicaSpec)
		if err != nil {
			return fail(fmt.Errorf("redisserver: sentinel replica %d: %w", i, err))
		}
		st.data = append(st.data, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := st.waitReplicasInSync(ctx, master); err != nil {
		return fail(err)
	}

	quorum := opts.Sentinels/2 + 1
	// Sentinels find each other through hello messages every 2s, which
	// took ~6s for three; seeding ids, ports and replicas makes them ready
	// at once. The ports are fixed up front, so a port stolen in between
	// fails the start instead of retrying.
	ports, err := freePorts(opts.Sentinels)
	if err != nil {
		return fail(err)
	}
	ids := make([]string, opts.Sentinels)
	for i := range ids {
		if ids[i], err = randomID(); err != nil {
			return fail(err)
		}
	}
	sentinelSpec := launchSpec{
		opts: Options{
			Password:       opts.SentinelPassword,
			TLS:            opts.Node.TLS,
			TLSAuthClients: opts.Node.TLSAuthClients,
			StartTimeout:   opts.Node.StartTimeout,
		},
		certs:    dataSpec.certs,
		sentinel: true,
		prefix:   "redisserver-sentinel-*",
		confLines: func(int) ([]string, error) {
			n := opts.MasterName
			lines := []string{
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", n, master.Port(), quorum),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", n, downAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", n, failoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 1", n),
			}
			if opts.Node.Password != "" {
				lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", n, quote(opts.Node.Password)))
			}
			if opts.SentinelPassword != "" {
				lines = append(lines, "sentinel sentinel-pass "+quote(opts.SentinelPassword))
			}
			return lines, nil
		},
	}
	for i := 0; i < opts.Sentinels; i++ {
		spec := sentinelSpec
		spec.port = ports[i]
		seed := []string{"sentinel myid " + ids[i]}
		for j, p := range ports {
			if j != i {
				seed = append(seed, fmt.Sprintf("sentinel known-sentinel %s 127.0.0.1 %d %s", opts.MasterName, p, ids[j]))
			}
		}
		for _, r := range st.data[1:] {
			seed = append(seed, fmt.Sprintf("sentinel known-replica %s 127.0.0.1 %d", opts.MasterName, r.Port()))
		}
		spec.confLines = func(port int) ([]string, error) {
			lines, err := sentinelSpec.confLines(port)
			return append(lines, seed...), err
		}
		s, err := launch(spec)
		if err != nil {
			return fail(fmt.Errorf("redisserver: sentinel %d: %w", i, err))
		}
		st.sentinels = append(st.sentinels, s)
	}
	if err := st.waitSentinelsReady(ctx, opts.Replicas); err != nil {
		return fail(err)
	}
	return st, nil
}

func (st *Sentinel) waitReplicasInSync(ctx context.Context, master *Server) error {
	return poll(ctx, "replicas in sync with the master", func() (bool, error) {
		for _, s := range st.data {
			if s == master {
				continue
			}
			info, err := s.Do("INFO", "replication")
			if err != nil {
				return false, err
			}
			if !strings.Contains(info, "master_link_status:up") {
				return false, fmt.Errorf("%s: master link not up", s.Addr())
			}
		}
		return true, nil
	})
}

func (st *Sentinel) waitSentinelsReady(ctx context.Context, replicas int) error {
	return poll(ctx, "sentinels to see the replicas and each other", func() (bool, error) {
		for _, s := range st.sentinels {
			reply, err := s.Do("SENTINEL", "MASTER", st.name)
			if err != nil {
				return false, err
			}
			m := pairs(reply)
			if m["num-slaves"] != strconv.Itoa(replicas) || m["num-other-sentinels"] != strconv.Itoa(len(st.sentinels)-1) {
				return false, fmt.Errorf("%s: num-slaves=%s num-other-sentinels=%s", s.Addr(), m["num-slaves"], m["num-other-sentinels"])
			}
		}
		return true, nil
	})
}

// randomID returns a 40-hex-digit sentinel run id.
func randomID() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("redisserver: random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// pairs turns a flattened field/value array into a map.
func pairs(flat string) map[string]string {
	f := strings.Split(flat, "\n")
	m := make(map[string]string, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m
}

// MasterName is the monitored master's name.
func (st *Sentinel) MasterName() string { return st.name }

// SentinelAddrs are the sentinels' addresses.
func (st *Sentinel) SentinelAddrs() []string { return addrsOf(st.sentinels) }

// Sentinels are the sentinel processes (Kill/Restart work on them too).
func (st *Sentinel) Sentinels() []*Server { return append([]*Server(nil), st.sentinels...) }

// Servers are the data nodes: the initial master first, then the replicas.
func (st *Sentinel) Servers() []*Server { return append([]*Server(nil), st.data...) }

// Master asks the sentinels (first that answers) for the current master
// address (SENTINEL get-master-addr-by-name).
func (st *Sentinel) Master() (string, error) {
	var errs []error
	for _, s := range st.sentinels {
		if !s.Running() {
			continue
		}
		addr, err := st.masterFrom(s)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return "", errors.New("redisserver: no sentinel is running")
	}
	return "", errors.Join(errs...)
}

func (st *Sentinel) masterFrom(s *Server) (string, error) {
	reply, err := s.Do("SENTINEL", "get-master-addr-by-name", st.name)
	if err != nil {
		return "", err
	}
	host, port, ok := strings.Cut(reply, "\n")
	if !ok {
		return "", fmt.Errorf("redisserver: unexpected get-master-addr-by-name reply %q", reply)
	}
	return net.JoinHostPort(host, port), nil
}

// MasterServer returns the data node that the sentinels call master.
func (st *Sentinel) MasterServer() (*Server, error) {
	addr, err := st.Master()
	if err != nil {
		return nil, err
	}
	for _, s := range st.data {
		if s.Addr() == addr {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redisserver: sentinel master %s is not one of ours", addr)
}

// KillMaster kills the current master (SIGKILL) and returns it (Restart
// brings it back; the sentinels then turn it into a replica).
func (st *Sentinel) KillMaster() (*Server, error) {
	m, err := st.MasterServer()
	if err != nil {
		return nil, err
	}
	m.Kill()
	return m, nil
}

// WaitFailover polls until every running sentinel names a master other than
// old, and that node runs and reports role:master; it returns the new
// master's address.
func (st *Sentinel) WaitFailover(ctx context.Context, old string) (string, error) {
	var addr string
	err := poll(ctx, "sentinel failover away from "+old, func() (bool, error) {
		addr = ""
		for _, s := range st.sentinels {
			if !s.Running() {
				continue
			}
			a, err := st.masterFrom(s)
			if err != nil {
				return false, err
			}
			if a == old {
				return false, fmt.Errorf("%s still names %s", s.Addr(), old)
			}
			if addr != "" && a != addr {
				return false, fmt.Errorf("sentinels disagree: %s vs %s", addr, a)
			}
			addr = a
		}
		if addr == "" {
			return false, errors.New("no sentinel is running")
		}
		for _, s := range st.data {
			if s.Addr() != addr {
				continue
			}
			info, err := s.Do("INFO", "replication")
			if err != nil {
				return false, err
			}
			return strings.Contains(info, "role:master"), fmt.Errorf("%s not yet role:master", addr)
		}
		return false, fmt.Errorf("new master %s is not one of ours", addr)
	})
	if err != nil {
		return "", err
	}
	return addr, nil
}

// Close kills every process and removes their directories. Idempotent.
func (st *Sentinel) Close() error {
	return closeAll(append(st.Sentinels(), st.data...), st.certDir)
}
