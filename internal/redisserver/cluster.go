package redisserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Masters is the number of masters; redis-cli requires at least 3.
	Masters int
	// ReplicasPerMaster is 0 or more replicas per master.
	ReplicasPerMaster int
	// Node applies to every node (Password, Users, TLS, Args, StartTimeout).
	// With TLS, all nodes share one CA and the cluster bus uses TLS too.
	Node Options
	// NodeTimeout is cluster-node-timeout; 0 = 1s (fast failover).
	NodeTimeout time.Duration
	// ReadyTimeout bounds the wait for cluster_state:ok after creation; 0 = 30s.
	ReadyTimeout time.Duration
}

// Cluster is a Redis Cluster of local nodes. Node order is start order;
// which nodes are masters is decided by redis-cli and changes on failover,
// so ask Masters or MasterForKey.
type Cluster struct {
	nodes   []*Server
	certDir string // shared TLS certificates; "" without TLS
}

// StartCluster starts Masters*(1+ReplicasPerMaster) nodes, creates the
// cluster with `redis-cli --cluster create` and waits until every node
// reports cluster_state:ok and every replica's link to its master is up.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	if opts.Masters < 3 {
		return nil, fmt.Errorf("%w: ClusterOptions.Masters must be >= 3, got %d", ErrInvalidOptions, opts.Masters)
	}
	if opts.ReplicasPerMaster < 0 {
		return nil, fmt.Errorf("%w: ClusterOptions.ReplicasPerMaster must be >= 0, got %d", ErrInvalidOptions, opts.ReplicasPerMaster)
	}
	if opts.NodeTimeout < 0 || opts.ReadyTimeout < 0 {
		return nil, fmt.Errorf("%w: ClusterOptions timeouts must be >= 0", ErrInvalidOptions)
	}
	if err := validate(opts.Node); err != nil {
		return nil, err
	}
	cli, err := CLIBinary()
	if err != nil {
		return nil, err
	}
	nodeTimeout := opts.NodeTimeout
	if nodeTimeout == 0 {
		nodeTimeout = time.Second
	}
	readyTimeout := opts.ReadyTimeout
	if readyTimeout == 0 {
		readyTimeout = 30 * time.Second
	}
	c := &Cluster{}
	spec := launchSpec{opts: opts.Node, prefix: "redisserver-cluster-*"}
	if opts.Node.TLS {
		// One CA for all nodes, so they trust each other on the bus.
		if c.certDir, spec.certs, err = sharedCerts("redisserver-cluster-certs-*"); err != nil {
			return nil, err
		}
	}
	spec.confLines = func(port int) ([]string, error) {
		bus, err := freePort()
		if err != nil {
			return nil, err
		}
		lines := []string{
			"cluster-enabled yes",
			"cluster-config-file nodes-" + strconv.Itoa(port) + ".conf",
			"cluster-node-timeout " + strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
			"cluster-port " + strconv.Itoa(bus),
		}
		if opts.Node.TLS {
			lines = append(lines, "tls-cluster yes")
		}
		return lines, nil
	}
	n := opts.Masters * (1 + opts.ReplicasPerMaster)
	for i := 0; i < n; i++ {
		s, err := launch(spec)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("redisserver: cluster node %d: %w", i, err)
		}
		c.nodes = append(c.nodes, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.ReplicasPerMaster), "--cluster-yes")
	args = append(args, cliTLSArgs(c.nodes[0])...)
	cmd := exec.Command(cli, args...)
	if opts.Node.Password != "" {
		// Via the environment: -a would print a warning and show in ps.
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+opts.Node.Password)
	}
	setProcAttr(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redisserver: redis-cli --cluster create: %w\n%s", err, lastLines(string(out), 20))
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.waitReady(ctx, n); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// cliTLSArgs are redis-cli flags to reach s over TLS (none without TLS).
func cliTLSArgs(s *Server) []string {
	if s.certs == nil {
		return nil
	}
	cc := s.certs.client
	return []string{"--tls", "--cacert", cc.CAFile, "--cert", cc.CertFile, "--key", cc.KeyFile}
}

// Addrs are the nodes' addresses in start order.
func (c *Cluster) Addrs() []string { return addrsOf(c.nodes) }

// Nodes are the nodes in start order.
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// Node returns node i (start order), or nil when out of range.
func (c *Cluster) Node(i int) *Server {
	if i < 0 || i >= len(c.nodes) {
		return nil
	}
	return c.nodes[i]
}

func (c *Cluster) byPort(port int) *Server {
	for _, s := range c.nodes {
		if s.Port() == port {
			return s
		}
	}
	return nil
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, masterID string
	port         int
	flags        map[string]bool
	slots        [][2]int
}

func parseClusterNodes(text string) []clusterNode {
	var out []clusterNode
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := clusterNode{id: f[0], masterID: f[3], flags: map[string]bool{}}
		addr, _, _ := strings.Cut(f[1], "@")
		if i := strings.LastIndexByte(addr, ':'); i >= 0 {
			n.port, _ = strconv.Atoi(addr[i+1:])
		}
		for _, fl := range strings.Split(f[2], ",") {
			n.flags[fl] = true
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // migrating/importing marker
				continue
			}
			lo, hi, found := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if found {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 == nil && err2 == nil {
				n.slots = append(n.slots, [2]int{a, b})
			}
		}
		out = append(out, n)
	}
	return out
}

// view returns CLUSTER NODES as seen by node s.
func (c *Cluster) view(s *Server) ([]clusterNode, error) {
	text, err := s.Do("CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	return parseClusterNodes(text), nil
}

// anyRunning returns the first running node.
func (c *Cluster) anyRunning() (*Server, error) {
	for _, s := range c.nodes {
		if s.Running() {
			return s, nil
		}
	}
	return nil, errors.New("redisserver: no cluster node is running")
}

// Masters returns the running nodes that are masters with slots, as seen by
// the first running node.
func (c *Cluster) Masters() ([]*Server, error) {
	s, err := c.anyRunning()
	if err != nil {
		return nil, err
	}
	nodes, err := c.view(s)
	if err != nil {
		return nil, err
	}
	var out []*Server
	for _, n := range nodes {
		if n.flags["master"] && !n.flags["fail"] && len(n.slots) > 0 {
			if srv := c.byPort(n.port); srv != nil && srv.Running() {
				out = append(out, srv)
			}
		}
	}
	return out, nil
}

// KeySlot returns the hash slot of key (CLUSTER KEYSLOT on a running node).
func (c *Cluster) KeySlot(key string) (int, error) {
	s, err := c.anyRunning()
	if err != nil {
		return 0, err
	}
	reply, err := s.Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		return 0, err
	}
	slot, err := strconv.Atoi(reply)
	if err != nil {
		return 0, fmt.Errorf("redisserver: CLUSTER KEYSLOT reply %q: %w", reply, err)
	}
	return slot, nil
}

// MasterForSlot returns the node serving slot, as seen by the first running
// node. The result may be a killed node until failover completes.
func (c *Cluster) MasterForSlot(slot int) (*Server, error) {
	s, err := c.anyRunning()
	if err != nil {
		return nil, err
	}
	return c.masterForSlotIn(s, slot)
}

func (c *Cluster) masterForSlotIn(s *Server, slot int) (*Server, error) {
	nodes, err := c.view(s)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if !n.flags["master"] {
			continue
		}
		for _, r := range n.slots {
			if slot >= r[0] && slot <= r[1] {
				if srv := c.byPort(n.port); srv != nil {
					return srv, nil
				}
				return nil, fmt.Errorf("redisserver: slot %d served by unknown port %d", slot, n.port)
			}
		}
	}
	return nil, fmt.Errorf("redisserver: slot %d is not served (per %s)", slot, s.Addr())
}

// MasterForKey returns the node serving key's slot (for a Pub/Sub channel
// under SSUBSCRIBE, the channel name is the key).
func (c *Cluster) MasterForKey(key string) (*Server, error) {
	slot, err := c.KeySlot(key)
	if err != nil {
		return nil, err
	}
	return c.MasterForSlot(slot)
}

// WaitState polls until every running node reports cluster_state:ok.
func (c *Cluster) WaitState(ctx context.Context) error {
	return poll(ctx, "cluster_state:ok on every running node", func() (bool, error) {
		for _, s := range c.nodes {
			if !s.Running() {
				continue
			}
			info, err := s.Do("CLUSTER", "INFO")
			if err != nil {
				return false, err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return false, fmt.Errorf("%s: %s", s.Addr(), firstLine(info))
			}
		}
		return true, nil
	})
}

// WaitFailover polls until every running node agrees that slot is served by
// the same running master and reports cluster_state:ok, and returns that
// master. Use it after killing the slot's master.
func (c *Cluster) WaitFailover(ctx context.Context, slot int) (*Server, error) {
	var master *Server
	err := poll(ctx, fmt.Sprintf("slot %d served by a running master", slot), func() (bool, error) {
		master = nil
		for _, s := range c.nodes {
			if !s.Running() {
				continue
			}
			m, err := c.masterForSlotIn(s, slot)
			if err != nil {
				return false, err
			}
			if !m.Running() {
				return false, fmt.Errorf("%s still routes slot %d to stopped %s", s.Addr(), slot, m.Addr())
			}
			if master != nil && m != master {
				return false, fmt.Errorf("nodes disagree: %s vs %s", master.Addr(), m.Addr())
			}
			master = m
		}
		if master == nil {
			return false, errors.New("no running node")
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.WaitState(ctx); err != nil {
		return nil, err
	}
	return master, nil
}

// waitReady waits for cluster_state:ok, all nodes known to each other and
// every replica's master link up.
func (c *Cluster) waitReady(ctx context.Context, n int) error {
	if err := c.WaitState(ctx); err != nil {
		return err
	}
	want := "cluster_known_nodes:" + strconv.Itoa(n)
	return poll(ctx, "all cluster nodes known and replicas in sync", func() (bool, error) {
		for _, s := range c.nodes {
			info, err := s.Do("CLUSTER", "INFO")
			if err != nil {
				return false, err
			}
			if !strings.Contains(info, want) {
				return false, fmt.Errorf("%s: not %s", s.Addr(), want)
			}
			repl, err := s.Do("INFO", "replication")
			if err != nil {
				return false, err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return false, fmt.Errorf("%s: replica link not up", s.Addr())
			}
		}
		return true, nil
	})
}

// Close kills every node and removes their directories. Idempotent.
func (c *Cluster) Close() error { return closeAll(c.nodes, c.certDir) }

// sharedCerts writes one set of certificates into a new temp dir, for
// processes that must trust each other (the caller removes dir).
func sharedCerts(prefix string) (string, *tlsFiles, error) {
	if !TLSSupported() {
		return "", nil, ErrTLSUnsupported
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("redisserver: temp dir: %w", err)
	}
	certs, err := writeCerts(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, &certs, nil
}

// addrsOf returns the servers' addresses.
func addrsOf(servers []*Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.Addr()
	}
	return out
}

// closeAll closes the servers and removes certDir ("" = none).
func closeAll(servers []*Server, certDir string) error {
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Close())
	}
	if certDir != "" {
		if err := os.RemoveAll(certDir); err != nil {
			errs = append(errs, fmt.Errorf("redisserver: remove %s: %w", certDir, err))
		}
	}
	return errors.Join(errs...)
}

// poll calls check every 20ms until it reports done or ctx ends; the last
// check error is included in the timeout error.
func poll(ctx context.Context, what string, check func() (bool, error)) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := check()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisserver: waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
