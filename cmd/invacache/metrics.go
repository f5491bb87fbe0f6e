package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves /metrics for the demo's nodes.
type metricsServer struct {
	url  string
	srv  *http.Server
	done chan struct{}
}

// listenMetrics opens the --metrics-addr listener, before the demo starts
// anything, so a busy or bad address fails at once.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	return ln, nil
}

// serveDemoMetrics serves on ln the nodes' metrics, named node0, node1,
// ..., plus the Go runtime's. It closes ln on error.
func serveDemoMetrics(ln net.Listener, nodes []*demoNode) (*metricsServer, error) {
	caches := make([]invaprom.Cache, len(nodes))
	for i, n := range nodes {
		caches[i] = invaprom.Cache{Name: "node" + strconv.Itoa(i), Stats: n.cache.Stats}
	}
	col, err := invaprom.NewCollector(caches...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col, collectors.NewGoCollector()) // distinct metric names: cannot fail
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{
		url:  "http://" + ln.Addr().String() + "/metrics",
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		m.srv.Serve(ln) // returns when close closes the server
	}()
	return m, nil
}

// close stops serving and waits for the server goroutine.
func (m *metricsServer) close() {
	m.srv.Close()
	<-m.done
}
