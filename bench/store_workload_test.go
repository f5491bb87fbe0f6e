package bench

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// zipfTable samples ranks 0..n-1 with P(r) proportional to (r+1)^-s by
// inverse CDF over a precomputed table. Unlike math/rand/v2.Zipf it accepts
// s <= 1.
type zipfTable struct {
	cdf []float64
	r   *rand.Rand
}

func newZipfTable(n int, s float64, seed uint64) *zipfTable {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range cdf {
		sum += math.Pow(float64(i+1), -s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &zipfTable{cdf: cdf, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (z *zipfTable) next() int {
	return min(sort.SearchFloat64s(z.cdf, z.r.Float64()), len(z.cdf)-1)
}

// keyName is the key of rank r; precomputed into streams so benchmarks do
// not format keys in the measured loop.
func keyName(r int) string { return "key:" + strconv.Itoa(r) }

func keysOf(ranks []int) []string {
	ks := make([]string, len(ranks))
	names := map[int]string{}
	for i, r := range ranks {
		k, ok := names[r]
		if !ok {
			k = keyName(r)
			names[r] = k
		}
		ks[i] = k
	}
	return ks
}

// zipfStream is the throughput workload: n draws from math/rand/v2's Zipf
// (s must be > 1) over keySpace ranks.
func zipfStream(n, keySpace int, s float64, seed uint64) []string {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 1)), s, 1, uint64(keySpace-1))
	ranks := make([]int, n)
	for i := range ranks {
		ranks[i] = int(z.Uint64())
	}
	return keysOf(ranks)
}

// zipfTrace is a hit-ratio trace of n draws from zipfTable.
func zipfTrace(n, keySpace int, s float64, seed uint64) []string {
	z := newZipfTable(keySpace, s, seed)
	ranks := make([]int, n)
	for i := range ranks {
		ranks[i] = z.next()
	}
	return keysOf(ranks)
}

// scanZipfTrace alternates runs of zipfRun Zipf(s) draws with scans of
// scanRun never-repeated keys, as a batch job sweeping a table would.
func scanZipfTrace(n, keySpace int, s float64, zipfRun, scanRun int, seed uint64) []string {
	z := newZipfTable(keySpace, s, seed)
	ranks := make([]int, 0, n)
	cold := keySpace
	for len(ranks) < n {
		for i := 0; i < zipfRun && len(ranks) < n; i++ {
			ranks = append(ranks, z.next())
		}
		for i := 0; i < scanRun && len(ranks) < n; i++ {
			ranks = append(ranks, cold)
			cold++
		}
	}
	return keysOf(ranks)
}

// loopTrace cycles over keys 0..loop-1 in order.
func loopTrace(n, loop int) []string {
	ranks := make([]int, n)
	for i := range ranks {
		ranks[i] = i % loop
	}
	return keysOf(ranks)
}

// hitRatio replays trace as a read-through cache: Get, and Set on a miss.
// The first warm accesses fill the cache and are not counted.
func hitRatio(c storeImpl, trace []string, warm int) float64 {
	hits, total := 0, 0
	for i, k := range trace {
		_, ok := c.Get(k)
		if !ok {
			c.Set(k, i)
		}
		if i >= warm {
			total++
			if ok {
				hits++
			}
		}
	}
	return float64(hits) / float64(total)
}

// traceDir is where the real traces are read from: $INVACACHE_TRACES, or
// shared/traces beside the repository (../shared/traces from its root), as
// on the project's machines and in CI. Users' clones do not have it; the
// trace rows are then skipped.
func traceDir() string {
	if d := os.Getenv("INVACACHE_TRACES"); d != "" {
		return d
	}
	// From a git worktree one level deeper (wt/<branch>/bench), too.
	for _, d := range []string{filepath.Join("..", "..", "shared", "traces"), filepath.Join("..", "..", "..", "shared", "traces")} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return filepath.Join("..", "..", "shared", "traces")
}

// traceFile describes one trace of shared/traces (formats in its README).
type traceFile struct {
	name       string // in the report
	file       string
	arc        bool  // ARC format ("start count 0 0" runs); else LIRS (one id a line)
	capacities []int // from the traces' README
}

var traceFiles = []traceFile{
	{"ARC OLTP", "arc-oltp.lis.gz", true, []int{1000, 2500, 5000, 10_000}},
	{"LIRS glimpse", "lirs-gli.trace.gz", false, []int{250, 500, 1000, 2000}},
	{"LIRS loop", "lirs-loop.trace.gz", false, []int{250, 500, 750, 1000}},
}

// readTrace returns the trace's keys, or an error (os.ErrNotExist when the
// traces are absent).
func readTrace(tf traceFile) ([]string, error) {
	f, err := os.Open(filepath.Join(traceDir(), tf.file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tf.file, err)
	}
	var ranks []int
	sc := bufio.NewScanner(zr)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] == "*" {
			continue
		}
		start, err := strconv.Atoi(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", tf.file, line, err)
		}
		count := 1
		if tf.arc {
			if len(fields) < 2 {
				return nil, fmt.Errorf("%s:%d: want \"start count ...\"", tf.file, line)
			}
			if count, err = strconv.Atoi(fields[1]); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", tf.file, line, err)
			}
		}
		for i := range count {
			ranks = append(ranks, start+i)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", tf.file, err)
	}
	return keysOf(ranks), nil
}
