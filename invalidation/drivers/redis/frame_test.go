package redis

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pos     invalidation.LogPos
		payload string
	}{
		{invalidation.LogPos{Epoch: "0123456789abcdef", ID: invalidation.LogID{Ms: 1733000000000, Seq: 0}}, "\x00ivc1 x"},
		{invalidation.LogPos{Epoch: "e", ID: invalidation.LogID{Ms: 0, Seq: 1}}, ""},
		{invalidation.LogPos{Epoch: strings.Repeat("x", maxEpochLen), ID: invalidation.LogID{Ms: ^uint64(0), Seq: ^uint64(0)}}, "a b c"},
	} {
		b := appendFrame(nil, tc.pos, []byte(tc.payload))
		pos, p, ok := decodeFrame(b)
		if !ok || pos != tc.pos || string(p) != tc.payload {
			t.Errorf("decodeFrame(appendFrame(%v, %q)) = %v, %q, %v", tc.pos, tc.payload, pos, p, ok)
		}
	}
}

func TestFrameRejects(t *testing.T) {
	for _, b := range []string{
		"", "user:1", wire.Magic + "1 0000000000000001 1 d k", frameMagic, frameMagic + " 1-1 x",
		frameMagic + "e", frameMagic + "e 1-1", frameMagic + "e 1- x", frameMagic + "e -1 x", frameMagic + "e 1x1 x",
		frameMagic + "e 1-18446744073709551616 x", frameMagic + "e +1-1 x", frameMagic + strings.Repeat("x", maxEpochLen+1) + " 1-1 x",
	} {
		if pos, p, ok := decodeFrame([]byte(b)); ok {
			t.Errorf("decodeFrame(%q) = %v, %q, true; want not ok", b, pos, p)
		}
	}
	// A frame is neither an envelope nor a key anyone types.
	if wire.IsEnvelope([]byte(frameMagic)) {
		t.Error("the frame magic reads as a wire envelope")
	}
}

// dispatch: frames go to HandleLogMessage, other payloads to HandleMessage,
// a broken frame to HandleMessage as a malformed envelope (a gap).
func TestDispatch(t *testing.T) {
	pos := invalidation.LogPos{Epoch: "ep", ID: invalidation.LogID{Ms: 5, Seq: 2}}
	for _, tc := range []struct {
		in      []byte
		wantLog bool
		want    string
	}{
		{appendFrame(nil, pos, []byte("k")), true, "k"},
		{[]byte("user:1"), false, "user:1"},
		{[]byte(frameMagic + "broken"), false, wire.Magic},
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

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(frameMagic + "0123456789abcdef 1733000000000-0 \x00ivc1 x"))
	f.Add([]byte(frameMagic + "e 1-1 "))
	f.Add([]byte(frameMagic + "e 99999999999999999999-1 x"))
	f.Add([]byte(frameMagic))
	f.Add([]byte("user:1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pos, p, ok := decodeFrame(b)
		if !ok {
			return
		}
		if got := appendFrame(nil, pos, p); !bytes.Equal(got, b) {
			// Only leading zeros in the id may differ.
			if _, p2, ok2 := decodeFrame(got); !ok2 || !bytes.Equal(p, p2) {
				t.Fatalf("re-encoding %q gave %q", b, got)
			}
		}
	})
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
