package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
)

// BenchmarkCommitToReplicaMiss measures, on loopback, the time from a
// single-row autocommit UPDATE (from the call to Exec, so the commit's own
// round trip is included) to a replica's Get missing the row's key,
// through one relay; and next to it, in the same run, the library's own
// Delete(WithDeleteInvalidation) → peer miss. Each
// of 3 interleaved rounds takes b.N samples of each; the reported figures
// are the medians of the rounds' p50 and p99 (b.Log prints every round).
//
//	go test -run '^$' -bench CommitToReplicaMiss -benchtime 1000x ./relay/postgres
func BenchmarkCommitToReplicaMiss(b *testing.B) {
	e := newEnv(b, `CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
		INSERT INTO items VALUES (1, 0);
		CREATE PUBLICATION relay_pub FOR TABLE items`)
	replica, writer := e.replica(), e.replica()
	start(b, e.config("items=item:{id}"))
	ctx := context.Background()
	sample := func(write func()) time.Duration {
		cacheAll(b, []invacache.Cache[string]{replica}, "item:1")
		t0 := time.Now()
		write()
		for !missing(replica, "item:1") {
			// Sleep, not spin: a spinning goroutine keeps the scheduler
			// from polling the network, which delays the subscriber.
			time.Sleep(20 * time.Microsecond)
		}
		return time.Since(t0)
	}
	const rounds = 3
	var relayP50, relayP99, libP50, libP99 []float64
	b.ResetTimer()
	for round := range rounds {
		rel := make([]time.Duration, 0, b.N)
		for range b.N {
			rel = append(rel, sample(func() {
				if _, err := e.db.Exec(ctx, "UPDATE items SET v = v + 1 WHERE id = 1"); err != nil {
					b.Fatal(err)
				}
			}))
		}
		lib := make([]time.Duration, 0, b.N)
		for range b.N {
			lib = append(lib, sample(func() {
				if err := writer.Delete("item:1", option.WithDeleteInvalidation()); err != nil {
					b.Fatal(err)
				}
			}))
		}
		r50, r99, l50, l99 := pct(rel, 50), pct(rel, 99), pct(lib, 50), pct(lib, 99)
		b.Logf("round %d: relay commit→miss p50 %.3fms p99 %.3fms; library Delete→peer miss p50 %.3fms p99 %.3fms", round+1, r50, r99, l50, l99)
		relayP50, relayP99, libP50, libP99 = append(relayP50, r50), append(relayP99, r99), append(libP50, l50), append(libP99, l99)
	}
	b.StopTimer()
	b.ReportMetric(median(relayP50), "relay-p50-ms")
	b.ReportMetric(median(relayP99), "relay-p99-ms")
	b.ReportMetric(median(libP50), "lib-p50-ms")
	b.ReportMetric(median(libP99), "lib-p99-ms")
}

// BenchmarkRelayThroughput measures row changes per second through one
// relay: 20,000 row changes are committed while the relay is stopped
// (as 20 transactions of 1,000 rows, or as 20,000 single-row
// transactions), then the relay is started and timed until it published
// every key. Each b.N iteration is one such catch-up.
//
//	go test -run '^$' -bench RelayThroughput -benchtime 3x ./relay/postgres
func BenchmarkRelayThroughput(b *testing.B) {
	const rows = 20000
	for _, shape := range []struct {
		name string
		sql  string
	}{
		{"1000-row-tx", `DO $$ BEGIN FOR i IN 0..19 LOOP UPDATE items SET v = v + 1 WHERE id > i*1000 AND id <= (i+1)*1000; COMMIT; END LOOP; END $$`},
		{"1-row-tx", `DO $$ BEGIN FOR i IN 1..20000 LOOP UPDATE items SET v = v + 1 WHERE id = i; COMMIT; END LOOP; END $$`},
	} {
		b.Run(shape.name, func(b *testing.B) {
			e := newEnv(b, fmt.Sprintf(`CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
				INSERT INTO items SELECT g, 0 FROM generate_series(1, %d) g;
				CREATE PUBLICATION relay_pub FOR TABLE items`, rows))
			cfg := e.config("items=item:{id}")
			cfg.MaxTransactionKeys = 2 * rows
			r := start(b, cfg) // creates the slot
			if err := r.stop(b); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			for range b.N {
				e.exec(shape.sql)
				r = start(b, cfg)
				t0 := time.Now()
				for r.Stats().KeysPublished < rows {
					time.Sleep(time.Millisecond)
				}
				total += time.Since(t0)
				if err := r.stop(b); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
		})
	}
}

func pct(ds []time.Duration, p int) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*p+99)/100-1)
	return float64(s[max(i, 0)]) / float64(time.Millisecond)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
