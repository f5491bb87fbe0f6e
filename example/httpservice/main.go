// Command httpservice is a small HTTP service with InvaCache in front of a
// database, meant to run as several replicas against one Redis:
//
//	GET    /items/{id}   read through the cache (GetOrLoadContext)
//	PUT    /items/{id}   write the database (body = value), invalidate everywhere
//	DELETE /items/{id}   delete from the database, invalidate everywhere
//	GET    /readyz       200 once the cache started (not tied to the Redis link)
//	GET    /linkz        200 while the cache's Redis link is up and proven alive
//	GET    /healthz      200 while the process runs
//	GET    /metrics      Prometheus metrics (invacache_*)
//
// The "database" is a Redis hash per item on the same Redis (with an added
// read latency, --db-latency), standing in for the SQL database of a real
// service so that replicas in separate processes share it. SIGINT or
// SIGTERM shut it down gracefully: in-flight requests finish, queued
// invalidations are flushed, then the cache closes.
//
// Two replicas against a throwaway Redis (README.md next to this file
// runs every step):
//
//	redis-server --port 6390 --save '' --daemonize yes
//	go build -o /tmp/httpservice ./example/httpservice
//	/tmp/httpservice --redis 127.0.0.1:6390 --listen 127.0.0.1:8081 --name a &
//	/tmp/httpservice --redis 127.0.0.1:6390 --listen 127.0.0.1:8082 --name b &
//	curl -s -X PUT -d v1 127.0.0.1:8081/items/42   # write on a
//	curl -s 127.0.0.1:8082/items/42                # b reads v1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	// The Redis invalidation driver (Type "redis").
	_ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// options are the command line.
type options struct {
	listen       string
	redisAddr    string
	channel      string
	name         string
	maxStaleness time.Duration
	dbLatency    time.Duration
	ttl          time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	flag.StringVar(&o.redisAddr, "redis", "127.0.0.1:6379", "Redis address (the bus and the simulated database)")
	flag.StringVar(&o.channel, "channel", "httpservice:inv", "Pub/Sub channel of the invalidations")
	flag.StringVar(&o.name, "name", "", "replica name in responses (default: the listen address)")
	flag.DurationVar(&o.maxStaleness, "max-staleness", 3*time.Second, "the cache's MaxStaleness")
	flag.DurationVar(&o.dbLatency, "db-latency", 20*time.Millisecond, "added latency of a database read")
	flag.DurationVar(&o.ttl, "ttl", 10*time.Minute, "TTL of cached items")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("httpservice: --listen", "err", err)
		os.Exit(1)
	}
	if err := run(ctx, ln, o, log); err != nil {
		log.Error("httpservice", "err", err)
		os.Exit(1)
	}
}

// run serves on ln until ctx ends, then shuts down gracefully.
func run(ctx context.Context, ln net.Listener, o options, log *slog.Logger) error {
	if o.name == "" {
		o.name = ln.Addr().String()
	}
	cache, err := invacache.NewCache[Item](config.InvaCacheConfig{
		Backend: &config.BackendConfig{InMemory: &config.InMemoryConfig{
			Capacity: 100_000,
			Ttl:      o.ttl.String(),
		}},
		Invalidation: &config.InvalidationConfig{
			Type:         "redis",
			DriverConfig: map[string]any{"Address": o.redisAddr, "Channel": o.channel},
			MaxStaleness: o.maxStaleness,
		},
		Logger: log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer cache.Close()
	rdb := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer rdb.Close()
	db := slowDB{DB: redisDB{rdb: rdb, prefix: "httpservice:"}, latency: o.dbLatency}

	metrics, err := newMetrics(cache.Stats)
	if err != nil {
		ln.Close()
		return err
	}
	svc := &service{name: o.name, cache: cache, db: db, log: log}
	return serve(ctx, ln, svc.routes(metrics), cache, log)
}

// newMetrics is the /metrics handler: the cache's Stats as invacache_*
// series (module metrics/prometheus) with name="items", and the Go runtime's.
func newMetrics(stats func() invacache.Stats) (http.Handler, error) {
	col, err := invaprom.NewCollector(invaprom.Cache{Name: "items", Stats: stats})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col, collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// serve runs srv on ln until ctx ends, then stops taking requests, lets
// those in flight finish, and flushes the invalidations they queued before
// the deferred Close (which flushes again, bounded by FlushTimeout).
func serve(ctx context.Context, ln net.Listener, h http.Handler, cache invacache.Cache[Item], log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := cache.WaitServing(wctx); err != nil {
		log.Warn("httpservice: cache not serving yet (reads go to the database); /linkz answers 503 until it does", "err", err)
	} else {
		log.Info("httpservice: serving", "addr", ln.Addr().String())
	}
	cancel()

	select {
	case err := <-errc:
		return fmt.Errorf("httpservice: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if ferr := cache.Flush(sctx); ferr != nil {
		err = errors.Join(err, fmt.Errorf("httpservice: flush: %w", ferr))
	}
	if <-errc; err != nil { // Serve returned ErrServerClosed
		return fmt.Errorf("httpservice: shutdown: %w", err)
	}
	log.Info("httpservice: stopped")
	return nil
}
