package redis

import (
	"errors"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// dispatch: frames go to HandleLogMessage, other payloads to HandleMessage,
// a broken frame to HandleMessage as a malformed envelope (a gap).
func TestDispatch(t *testing.T) {
	pos := invalidation.LogPos{Epoch: "ep", ID: invalidation.LogID{Ms: 5, Seq: 2}}
	for _, tc := range []struct {
		in      []byte
		wantLog bool
		want    string
	}{
		{wire.AppendFrame(nil, pos, []byte("k")), true, "k"},
		{[]byte("user:1"), false, "user:1"},
		{[]byte(wire.FrameMagic + "broken"), false, wire.Magic},
	} {
		h := &posRecorder{}
		dispatch(h, tc.in)
		if h.logged != tc.wantLog || h.payload != tc.want || (tc.wantLog && h.pos != pos) {
			t.Errorf("dispatch(%q): logged=%v payload=%q pos=%v; want logged=%v payload=%q", tc.in, h.logged, h.payload, h.pos, tc.wantLog, tc.want)
		}
	}
	if _, err := wire.Decode(malformedFrame); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("wire.Decode(malformedFrame) = %v, want ErrMalformed", err)
	}
}

// posRecorder records the last payload handed to it.
type posRecorder struct {
	recorder
	logged  bool
	pos     invalidation.LogPos
	payload string
}

func (r *posRecorder) HandleMessage(p []byte) { r.payload = string(p) }
func (r *posRecorder) HandleLogMessage(pos invalidation.LogPos, p []byte) {
	r.logged, r.pos, r.payload = true, pos, string(p)
}
