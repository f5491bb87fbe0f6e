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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/relay/postgres"
)

// mapFlags collects repeated --map flags.
type mapFlags []postgres.Mapping

func (m *mapFlags) String() string { return fmt.Sprint(*m) }

func (m *mapFlags) Set(s string) error {
	mp, err := postgres.ParseMapping(s)
	if err != nil {
		return err
	}
	*m = append(*m, mp)
	return nil
}

func relayCommand() command {
	return command{
		name:    "relay",
		summary: "invalidate from PostgreSQL: stream committed row changes (logical replication) and invalidate the keys that cache those rows on every node",
		usage:   "--postgres DSN --map 'schema.table=key:{col},...' [--map ...] [--redis ADDR] [--channel CH] [--slot NAME] [--publication NAME] [--listen ADDR]",
		setup: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			cf := addCommonFlags(fs, "Redis `address` to publish to (host:port; comma-separated for a cluster) (default \"localhost:6379\")")
			var maps mapFlags
			dsn := fs.String("postgres", "", "PostgreSQL connection `string` (URL or key=value) of a user with REPLICATION (default $INVACACHE_POSTGRES)")
			slot := fs.String("slot", postgres.DefaultSlot, "logical replication slot (created when missing, kept across restarts)")
			pub := fs.String("publication", postgres.DefaultPublication, "publication holding the mapped tables")
			fs.Var(&maps, "map", "`table=templates`: a table and its cache keys, e.g. 'public.users=user:{id},user_by_email:{email}' (repeatable)")
			maxKeys := fs.Int("max-tx-keys", postgres.DefaultMaxTransactionKeys, "a transaction touching more keys sends one clear instead")
			listen := fs.String("listen", "", "serve /readyz (200 while streaming) and /metrics (Prometheus) on this `address`")
			streaming := fs.Bool("streaming", false, "pgoutput protocol 2 with streaming (PostgreSQL 14+): large transactions arrive before they commit")
			debug := fs.Bool("debug", false, "log at debug level")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if *dsn == "" {
					*dsn = os.Getenv("INVACACHE_POSTGRES")
				}
				if *dsn == "" {
					return usagef("--postgres: no connection string (or set $INVACACHE_POSTGRES)")
				}
				if len(maps) == 0 {
					return usagef("--map: no table mapped")
				}
				s, err := cf.resolve()
				if err != nil {
					return err
				}
				s = s.withDefaultAddress()
				level := slog.LevelInfo
				if *debug {
					level = slog.LevelDebug
				}
				r, err := postgres.New(postgres.Config{
					Postgres: *dsn, Redis: s.redis, Slot: *slot, Publication: *pub, Mappings: maps,
					MaxTransactionKeys: *maxKeys, Streaming: *streaming,
					Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
				})
				if err != nil {
					if errors.Is(err, postgres.ErrInvalidConfig) || errors.Is(err, config.ErrInvalidConfig) {
						return usagef("%v", err)
					}
					return err
				}
				if *listen != "" {
					ln, err := net.Listen("tcp", *listen)
					if err != nil {
						return fmt.Errorf("--listen: %w", err)
					}
					defer serveRelay(ln, r)()
				}
				return r.Run(ctx)
			}
		},
	}
}

// serveRelay serves /readyz and /metrics on ln until stop.
func serveRelay(ln net.Listener, r *postgres.Relay) (stop func()) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(relayCollector{r}, collectors.NewGoCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.Ready() {
			http.Error(w, "not streaming", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() { _ = srv.Close(); <-done }
}

var (
	relayTxs     = prometheus.NewDesc("invacache_relay_transactions_total", "Committed transactions whose invalidations were published.", nil, nil)
	relayKeys    = prometheus.NewDesc("invacache_relay_keys_published_total", "Keys published.", nil, nil)
	relayClears  = prometheus.NewDesc("invacache_relay_clears_total", "Clears published, by reason.", []string{"reason"}, nil)
	relayReconn  = prometheus.NewDesc("invacache_relay_reconnects_total", "Stream sessions restarted after an error.", nil, nil)
	relayAcked   = prometheus.NewDesc("invacache_relay_last_acked_lsn", "The WAL position last acknowledged to PostgreSQL.", nil, nil)
	relayLag     = prometheus.NewDesc("invacache_relay_slot_lag_bytes", "The server's WAL end minus the acknowledged position.", nil, nil)
	relayLatency = prometheus.NewDesc("invacache_relay_commit_to_publish_seconds", "Commit (as stamped in the stream) to published in Redis.", nil, nil)
	relayReady   = prometheus.NewDesc("invacache_relay_ready", "1 while the relay holds its slot and streams.", nil, nil)
)

// relayCollector exports a relay's Stats.
type relayCollector struct{ r *postgres.Relay }

func (relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{relayTxs, relayKeys, relayClears, relayReconn, relayAcked, relayLag, relayLatency, relayReady} {
		ch <- d
	}
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(relayTxs, prometheus.CounterValue, float64(s.Transactions))
	ch <- prometheus.MustNewConstMetric(relayKeys, prometheus.CounterValue, float64(s.KeysPublished))
	for reason, n := range s.Clears {
		ch <- prometheus.MustNewConstMetric(relayClears, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(relayReconn, prometheus.CounterValue, float64(s.Reconnects))
	ch <- prometheus.MustNewConstMetric(relayAcked, prometheus.GaugeValue, float64(s.LastAckedLSN))
	ch <- prometheus.MustNewConstMetric(relayLag, prometheus.GaugeValue, float64(s.SlotLagBytes))
	ready := 0.0
	if s.Ready {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(relayReady, prometheus.GaugeValue, ready)
	buckets := make(map[float64]uint64, len(postgres.LatencyBuckets))
	var cum uint64
	for i, b := range postgres.LatencyBuckets {
		cum += s.PublishLatency.Counts[i]
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(relayLatency, s.PublishLatency.Count, s.PublishLatency.Sum, buckets)
}
