package simdb

import (
	"sync"
	"testing"
)

func TestWriteOrder(t *testing.T) {
	db := New("k", 2, 0)
	if got, want := db.Key(1), "k1"; got != want {
		t.Fatalf("Key(1) = %q, want %q", got, want)
	}
	var mu sync.Mutex
	var seen []uint64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.Write("k0", func(v uint64) {
				mu.Lock()
				seen = append(seen, v)
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	for i, v := range seen {
		if v != uint64(i+1) {
			t.Fatalf("then saw versions %v, want 1..8 in order", seen)
		}
	}
	if got := db.Read("k0"); got != 8 {
		t.Errorf("Read(k0) = %d, want 8", got)
	}
	if got := db.Read("nope"); got != 0 {
		t.Errorf("Read(nope) = %d, want 0", got)
	}
	if got := db.Write("nope", nil); got != 0 {
		t.Errorf("Write(nope) = %d, want 0", got)
	}
	if got, want := db.Writes(), uint64(8); got != want {
		t.Errorf("Writes() = %d, want %d", got, want)
	}
}

func TestZipfPicker(t *testing.T) {
	db := New("k", 100, 0)
	pick := db.ZipfPicker(1, 1.2)
	counts := map[string]int{}
	for i := 0; i < 10000; i++ {
		counts[pick()]++
	}
	if counts["k0"] <= counts["k50"] {
		t.Errorf("k0 picked %d times, k50 %d: want the first key hottest", counts["k0"], counts["k50"])
	}
	for k := range counts {
		if _, ok := db.index[k]; !ok {
			t.Fatalf("picked unknown key %q", k)
		}
	}
}
