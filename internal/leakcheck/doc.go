// Package leakcheck fails a test that leaves goroutines running. It is a
// small, dependency-free stand-in for go.uber.org/goleak, so that the root
// module keeps no requirements.
package leakcheck
