package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The liveness bound with a loss the node knows of (HandleLinkDown), one it
// does not (proofs just stop: a half-open link), and an outage the driver
// reports (HandleUnreachable): the node serves until its last proof plus
// MaxStaleness in the first two cases, plus OutageStaleness in the third
// when set, and counts the reads it serves past MaxStaleness.
func TestServingBoundByLoss(t *testing.T) {
	const (
		maxStale    = time.Second
		outageStale = 10 * time.Second
	)
	errRefused := errors.New("dial tcp: connection refused")
	type step struct {
		do          func(h handler)
		advance     time.Duration // clock advance before the check, after do
		serving     bool          // Serving after the advance
		strict      bool          // ServingStrict (a load may be cached)
		outageReads uint64        // Stats.OutageReads after one ServingWithin
	}
	down := func(h handler) { h.HandleLinkDown(errRefused) }
	unreachable := func(h handler) { h.HandleUnreachable(errRefused) }
	reachable := func(h handler) { h.HandleReachable() }
	nothing := func(handler) {}
	tests := []struct {
		name   string
		outage time.Duration
		steps  []step
	}{
		{"known loss keeps the strict bound", 0, []step{
			{down, maxStale / 2, true, true, 0},
			{nothing, maxStale / 2, false, false, 0},
		}},
		{"unknown loss keeps the strict bound", 0, []step{
			{nothing, maxStale - time.Millisecond, true, true, 0},
			{nothing, time.Millisecond, false, false, 0},
		}},
		{"unreachable without OutageStaleness keeps the strict bound", 0, []step{
			{down, 0, true, true, 0},
			{unreachable, maxStale, false, false, 0},
		}},
		{"outage serves until OutageStaleness, counting reads past MaxStaleness", outageStale, []step{
			{down, maxStale / 2, true, true, 0},
			{unreachable, maxStale, true, false, 1},
			{nothing, outageStale - maxStale - maxStale/2 - time.Millisecond, true, false, 2},
			{nothing, time.Millisecond, false, false, 2},
		}},
		{"outage reported after the strict bound lapsed still serves", outageStale, []step{
			{down, 2 * maxStale, false, false, 0},
			{unreachable, 0, true, false, 1},
		}},
		{"bus reachable again: the strict bound is back", outageStale, []step{
			{down, 2 * maxStale, false, false, 0},
			{unreachable, 0, true, false, 1},
			{reachable, 0, false, false, 1},
		}},
		{"link up after an outage: caught up or cleared, strict again", outageStale, []step{
			{down, 0, true, true, 0},
			{unreachable, 2 * maxStale, true, false, 1},
			{func(h handler) { h.HandleLinkUp() }, 0, true, true, 1},
			{nothing, maxStale, false, false, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newSteppedClock()
			tg := &clearCounter{}
			e, err := New(Config{Driver: nopDriver{}, MaxStaleness: maxStale, OutageStaleness: tt.outage}, tg)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			e.clock = clk.clock()
			h := handler{e}
			h.HandleLinkUp()
			for i, s := range tt.steps {
				s.do(h)
				clk.advance(s.advance)
				if got := e.Serving(); got != s.serving {
					t.Errorf("step %d: Serving = %v, want %v", i, got, s.serving)
				}
				if got := e.ServingStrict(); got != s.strict {
					t.Errorf("step %d: ServingStrict = %v, want %v", i, got, s.strict)
				}
				dl, _ := e.MayServe()
				if got := e.ServingWithin(dl); got != s.serving {
					t.Errorf("step %d: ServingWithin = %v, want %v", i, got, s.serving)
				}
				if got := e.Stats().OutageReads; got != s.outageReads {
					t.Errorf("step %d: OutageReads = %d, want %d", i, got, s.outageReads)
				}
			}
		})
	}
}

// Config: OutageStaleness shorter than MaxStaleness, or with the bound
// disabled, is refused naming the field.
func TestOutageStalenessChecked(t *testing.T) {
	for _, c := range []Config{
		{Driver: nopDriver{}, MaxStaleness: 3 * time.Second, OutageStaleness: time.Second},
		{Driver: nopDriver{}, OutageStaleness: time.Second},
		{Driver: nopDriver{}, MaxStaleness: time.Second, OutageStaleness: -time.Second},
	} {
		if _, err := New(c, &clearCounter{}); err == nil || !strings.Contains(err.Error(), "OutageStaleness") {
			t.Errorf("New(MaxStaleness %s, OutageStaleness %s) error = %v, want one naming OutageStaleness", c.MaxStaleness, c.OutageStaleness, err)
		}
	}
}
