package engine

import (
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
)

// One message cannot stall a node: its clears collapse to one
// InvalidateAll, and past wire.MaxOps operations it is a gap counted as
// malformed (issue 10 item 5: each " C" ran a full clear).
func TestMessageOfRepeatedClearsClearsOnce(t *testing.T) {
	tg := &clearCounter{}
	e, err := New(Config{Driver: nopDriver{}}, tg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h := handler{e}
	header := string(wire.AppendMessage(nil, wire.Message{Origin: 42, Seq: 1}))

	h.HandleMessage([]byte(header + strings.Repeat(" C", wire.MaxOps)))
	if got := tg.clears.Load(); got != 1 {
		t.Errorf("InvalidateAll calls for one message of %d clears = %d, want 1", wire.MaxOps, got)
	}
	if st := e.Stats(); st.Gaps != 0 || st.Malformed != 0 {
		t.Errorf("Gaps, Malformed = %d, %d after a well-formed message, want 0, 0", st.Gaps, st.Malformed)
	}

	h.HandleMessage([]byte(strings.Replace(header, " 1", " 2", 1) + strings.Repeat(" C", wire.MaxOps+1)))
	if st := e.Stats(); st.Gaps != 1 || st.Malformed != 1 {
		t.Errorf("Gaps, Malformed = %d, %d after a message past wire.MaxOps operations, want 1, 1", st.Gaps, st.Malformed)
	}
}
