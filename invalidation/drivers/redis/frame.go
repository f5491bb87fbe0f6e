package redis

import (
	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// A logged payload travels on the channel in a frame that carries its
// position in the replay log (wire.FrameMagic, epoch, stream id, payload),
// built by the publish script (replay.go); wire.DecodeFrame reads it.

// malformedFrame is what a handler receives for a payload that starts with
// the frame magic but does not decode: a bare wire envelope magic, which
// the engine reads as a malformed envelope of ours (a gap that clears),
// since the broken frame may have carried invalidations.
var malformedFrame = []byte(wire.Magic)

// dispatch hands one received payload to h: a frame's payload with its log
// position through HandleLogMessage, anything else (raw keys an operator
// published, envelopes of a node with DisableReplay) through HandleMessage.
func dispatch(h invalidation.Handler, payload []byte) {
	if !wire.IsFrame(payload) {
		h.HandleMessage(payload)
		return
	}
	pos, p, ok := wire.DecodeFrame(payload)
	if !ok {
		h.HandleMessage(malformedFrame)
		return
	}
	h.HandleLogMessage(pos, p)
}
