package redisserver

import "testing"

// StartT starts a server for a test, fails the test with Start's error (which
// says how to install redis-server when it is missing) and closes the server
// in t.Cleanup.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	return mustT(t, "Start", s, err)
}

// StartClusterT is StartCluster for tests: it fails the test on error and
// closes the cluster in t.Cleanup.
func StartClusterT(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	c, err := StartCluster(opts)
	return mustT(t, "StartCluster", c, err)
}

// StartSentinelT is StartSentinel for tests: it fails the test on error and
// closes everything in t.Cleanup.
func StartSentinelT(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	st, err := StartSentinel(opts)
	return mustT(t, "StartSentinel", st, err)
}

func mustT[T interface{ Close() error }](t testing.TB, what string, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatalf("redisserver.%s: %v", what, err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}
