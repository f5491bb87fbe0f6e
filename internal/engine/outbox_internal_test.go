package engine

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestOutboxCoalesce(t *testing.T) {
	tests := []struct {
		name string
		add  []string
		want []string
	}{
		{"empty", nil, []string{}},
		{"one", []string{"a"}, []string{"a"}},
		{"duplicates keep the first position", []string{"a", "b", "a", "c", "b", "a"}, []string{"a", "b", "c"}},
		{"empty key", []string{"", "x", ""}, []string{"", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outbox
			for round := range 3 { // buffers reused across batches
				for _, k := range tt.add {
					o.add(k)
				}
				if got := o.len(); got != len(tt.add) {
					t.Errorf("round %d: len before coalesce = %d, want %d", round, got, len(tt.add))
				}
				o.coalesce()
				if got := append([]string{}, o.keys...); !slices.Equal(got, tt.want) || o.len() != len(tt.want) {
					t.Errorf("round %d: keys after coalesce = %q (len %d), want %q", round, got, o.len(), tt.want)
				}
				o.reset()
				if !o.empty() || o.set.len() != 0 {
					t.Errorf("round %d: after reset: empty() = %v, %d keys in the set; want empty", round, o.empty(), o.set.len())
				}
			}
		})
	}
}

// While nothing drains the outbox (the bus is down), its size stays bounded
// by the distinct keys plus maxUnchecked, and nothing is lost.
func TestOutboxBacklogBounded(t *testing.T) {
	const distinct = 100
	var o outbox
	most := 0
	for i := range 4 * maxUnchecked {
		o.add("k" + strconv.Itoa(i%distinct))
		most = max(most, o.len())
	}
	if most > distinct+maxUnchecked+1 {
		t.Errorf("outbox held up to %d keys, want at most %d (distinct + maxUnchecked + 1)", most, distinct+maxUnchecked+1)
	}
	if c := cap(o.tail); c > 3*maxUnchecked {
		t.Errorf("tail capacity = %d, want at most %d", c, 3*maxUnchecked)
	}
	o.coalesce()
	if len(o.keys) != distinct {
		t.Errorf("after coalesce %d keys, want %d", len(o.keys), distinct)
	}
	for i, k := range o.keys {
		if want := "k" + strconv.Itoa(i); k != want {
			t.Fatalf("keys[%d] = %q, want %q (arrival order)", i, k, want)
		}
	}
}

// A burst's buffers are reused while batches stay large, and released after
// shrinkAfter small batches in a row.
func TestOutboxShrinksAfterBurst(t *testing.T) {
	var o outbox
	batch := func(n int) {
		for i := range n {
			o.add(strconv.Itoa(i))
		}
		o.coalesce()
		o.reset()
	}
	batch(2*shrinkAbove + 1)
	big := o.peak
	batch(shrinkAbove) // half the peak: still reused
	if o.set.slots == nil || o.peak != big {
		t.Fatalf("after a half-size batch: set nil = %v, peak %d; want the set kept (peak %d)", o.set.slots == nil, o.peak, big)
	}
	for i := range shrinkAfter {
		if o.set.slots == nil {
			t.Fatalf("set released after %d small batches, want %d", i, shrinkAfter)
		}
		batch(1)
	}
	if o.set.slots != nil || o.keys != nil || o.tail != nil {
		t.Errorf("after %d small batches the buffers are kept (set nil = %v, keys cap %d, tail cap %d), want released",
			shrinkAfter, o.set.slots == nil, cap(o.keys), cap(o.tail))
	}
	batch(3) // works from scratch
	if !o.empty() {
		t.Errorf("outbox not empty after a batch")
	}
}

// keySet agrees with a map through growth and resets.
func TestKeySetModel(t *testing.T) {
	var s keySet
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 5 {
		want := map[string]bool{}
		n := r.IntN(3000)
		for range n {
			k := strconv.Itoa(r.IntN(1000 + round*500))
			if round == 2 {
				k = "" // the empty key is a key like any other
			}
			if got, absent := s.add(k), !want[k]; got != absent {
				t.Fatalf("round %d: add(%q) = %v, want %v", round, k, got, absent)
			}
			want[k] = true
		}
		if s.len() != len(want) {
			t.Fatalf("round %d: len = %d, want %d", round, s.len(), len(want))
		}
		if free := len(s.slots) - s.len(); len(s.slots) > 0 && free < len(s.slots)/2 {
			t.Fatalf("round %d: %d of %d slots used, want at most half", round, s.len(), len(s.slots))
		}
		s.reset()
		for i, sl := range s.slots {
			if sl != (keySlot{}) {
				t.Fatalf("round %d: slot %d = %+v after reset, want empty", round, i, sl)
			}
		}
	}
}

// BenchmarkCoalesce is the publisher's cost per key of coalescing a batch
// and emptying the outbox afterwards, side by side with a built-in map
// (kept across batches, emptied with clear) doing the same.
func BenchmarkCoalesce(b *testing.B) {
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	for _, n := range []int{500, 5000, 50000} {
		b.Run("outbox/"+strconv.Itoa(n), func(b *testing.B) {
			var o outbox
			j := 0
			for b.Loop() {
				for range n {
					o.tail = append(o.tail, keys[j&(len(keys)-1)])
					j++
				}
				o.coalesce()
				o.reset()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
		b.Run("map/"+strconv.Itoa(n), func(b *testing.B) {
			var in, out []string
			m := map[string]struct{}{}
			j := 0
			for b.Loop() {
				for range n {
					in = append(in, keys[j&(len(keys)-1)])
					j++
				}
				for _, k := range in {
					if _, dup := m[k]; !dup {
						m[k] = struct{}{}
						out = append(out, k)
					}
				}
				clear(m)
				clear(in)
				clear(out)
				in, out = in[:0], out[:0]
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}
