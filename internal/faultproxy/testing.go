package faultproxy

import "testing"

// NewT is New for tests: it fails the test if the proxy cannot listen and
// closes the proxy when the test ends.
func NewT(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
