package redisserver

import "testing"

// StartT starts a server for a test, fails the test with Start's error (which
// says how to install redis-server when it is missing) and closes the server
// in t.Cleanup.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("redisserver.Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// StartClusterT is StartCluster for tests: it fails the test on error and
// closes the cluster in t.Cleanup.
func StartClusterT(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	c, err := StartCluster(opts)
	if err != nil {
		t.Fatalf("redisserver.StartCluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// StartSentinelT is StartSentinel for tests: it fails the test on error and
// closes everything in t.Cleanup.
func StartSentinelT(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	st, err := StartSentinel(opts)
	if err != nil {
		t.Fatalf("redisserver.StartSentinel: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
