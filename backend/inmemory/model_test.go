package inmemory

import (
	"strconv"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
)

// FuzzStoreModel drives a store with a byte-coded sequence of operations and
// checks it against a map: with room for every key the store must agree
// exactly; with a tiny capacity it must stay within Capacity and never
// return a value other than the key's last Set.
func FuzzStoreModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb})
	f.Add([]byte("set get delete clear set set set get get delete"))
	seq := make([]byte, 0, 512)
	for i := range 512 {
		seq = append(seq, byte(i*37+i/7))
	}
	f.Add(seq)
	f.Fuzz(func(t *testing.T, ops []byte) {
		for _, capacity := range []int{64, 4} {
			s, err := New[int](Config{ShardCount: 2, Capacity: capacity, SweepInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			model := map[string]int{}
			exact := capacity >= 16 // 16 distinct keys fit without eviction
			for i, op := range ops {
				k := "k" + strconv.Itoa(int(op&15))
				switch op >> 4 % 8 {
				case 0, 1, 2:
					s.Set(k, i, -1)
					model[k] = i
				case 3, 4, 5:
					v, ok := s.Get(k)
					want, wantOK := model[k]
					if exact && (v != want || ok != wantOK) {
						t.Fatalf("op %d: Get(%s) = %d, %v; want %d, %v", i, k, v, ok, want, wantOK)
					}
					if ok && (!wantOK || v != want) {
						t.Fatalf("op %d: Get(%s) = %d; last Set stored %d (present %v)", i, k, v, want, wantOK)
					}
				case 6:
					got := s.Delete(k)
					_, had := model[k]
					if exact && got != had {
						t.Fatalf("op %d: Delete(%s) = %v; want %v", i, k, got, had)
					}
					delete(model, k)
				case 7:
					if op&1 == 0 {
						s.Clear()
						clear(model)
					}
				}
				if n := s.Len(); n > capacity || (exact && n != len(model)) {
					t.Fatalf("op %d: Len() = %d; want %d (capacity %d)", i, n, len(model), capacity)
				}
			}
			s.Close()
		}
	})
}

// TestTableChurn checks the open-addressing index against a map under heavy
// insert/delete churn in one shard, including backward-shift deletion.
func TestTableChurn(t *testing.T) {
	leakcheck.Check(t)
	s := newStore[int](t, cfg(1, 512))
	model := map[string]int{}
	for i := range 50000 {
		k := strconv.Itoa((i * 7919) % 700)
		switch i % 3 {
		case 0, 1:
			if len(model) < 512 || model[k] != 0 {
				s.Set(k, i+1, -1)
				model[k] = i + 1
			}
		case 2:
			s.Delete(k)
			delete(model, k)
		}
	}
	for k, want := range model {
		if got, ok := s.Get(k); !ok || got != want {
			t.Fatalf("Get(%s) = %d, %v; want %d, true", k, got, ok, want)
		}
	}
	if s.Len() != len(model) {
		t.Fatalf("Len() = %d; want %d", s.Len(), len(model))
	}
}
