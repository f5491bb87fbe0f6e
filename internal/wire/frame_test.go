package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/invalidation"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pos     invalidation.LogPos
		payload string
	}{
		{invalidation.LogPos{Epoch: "0123456789abcdef", ID: invalidation.LogID{Ms: 1733000000000, Seq: 0}}, "\x00ivc1 x"},
		{invalidation.LogPos{Epoch: "e", ID: invalidation.LogID{Ms: 0, Seq: 1}}, ""},
		{invalidation.LogPos{Epoch: strings.Repeat("x", MaxFrameEpochLen), ID: invalidation.LogID{Ms: ^uint64(0), Seq: ^uint64(0)}}, "a b c"},
	} {
		b := AppendFrame(nil, tc.pos, []byte(tc.payload))
		pos, p, ok := DecodeFrame(b)
		if !ok || pos != tc.pos || string(p) != tc.payload {
			t.Errorf("DecodeFrame(AppendFrame(%v, %q)) = %v, %q, %v", tc.pos, tc.payload, pos, p, ok)
		}
	}
}

func TestFrameRejects(t *testing.T) {
	for _, b := range []string{
		"", "user:1", Magic + "1 0000000000000001 1 d k", FrameMagic, FrameMagic + " 1-1 x",
		FrameMagic + "e", FrameMagic + "e 1-1", FrameMagic + "e 1- x", FrameMagic + "e -1 x", FrameMagic + "e 1x1 x",
		FrameMagic + "e 1-18446744073709551616 x", FrameMagic + "e +1-1 x", FrameMagic + strings.Repeat("x", MaxFrameEpochLen+1) + " 1-1 x",
	} {
		if pos, p, ok := DecodeFrame([]byte(b)); ok {
			t.Errorf("DecodeFrame(%q) = %v, %q, true; want not ok", b, pos, p)
		}
	}
	// A frame is neither an envelope nor a key anyone types.
	if IsEnvelope([]byte(FrameMagic)) {
		t.Error("the frame magic reads as a wire envelope")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(FrameMagic + "0123456789abcdef 1733000000000-0 \x00ivc1 x"))
	f.Add([]byte(FrameMagic + "e 1-1 "))
	f.Add([]byte(FrameMagic + "e 99999999999999999999-1 x"))
	f.Add([]byte(FrameMagic))
	f.Add([]byte("user:1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pos, p, ok := DecodeFrame(b)
		if !ok {
			return
		}
		if got := AppendFrame(nil, pos, p); !bytes.Equal(got, b) {
			// Only leading zeros in the id may differ.
			if _, p2, ok2 := DecodeFrame(got); !ok2 || !bytes.Equal(p, p2) {
				t.Fatalf("re-encoding %q gave %q", b, got)
			}
		}
	})
}
