package redis

import (
	"bytes"
	"strconv"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// A logged payload travels on the channel in a frame that carries its
// position in the replay log, built by the publish script:
//
//	frameMagic epoch ' ' ms '-' seq ' ' payload
//
// The magic starts with a NUL byte, like the wire envelope's, so no key an
// operator types is a frame, and differs from wire.Magic in its fourth
// byte, so no envelope is one either. The epoch is 1 to maxEpochLen bytes
// without a space; ms and seq are decimal uint64s (the stream entry id
// Redis assigned). Everything after the third space is the payload.
const frameMagic = "\x00ivl1 "

// maxEpochLen bounds the epoch a frame may carry (the driver writes 16 hex
// digits; a longer one is not ours).
const maxEpochLen = 64

// appendFrame appends the frame of payload at pos to dst: what the publish
// script builds, for tests and fuzzing.
func appendFrame(dst []byte, pos invalidation.LogPos, payload []byte) []byte {
	dst = append(dst, frameMagic...)
	dst = append(dst, pos.Epoch...)
	dst = append(dst, ' ')
	dst = append(dst, pos.ID.String()...)
	dst = append(dst, ' ')
	return append(dst, payload...)
}

// isFrame reports whether b starts with the frame magic.
func isFrame(b []byte) bool { return bytes.HasPrefix(b, []byte(frameMagic)) }

// decodeFrame splits a frame into its position and payload (a sub-slice of
// b). ok is false for anything that is not a well-formed frame; it never
// panics, whatever b holds.
func decodeFrame(b []byte) (pos invalidation.LogPos, payload []byte, ok bool) {
	if !isFrame(b) {
		return pos, nil, false
	}
	rest := b[len(frameMagic):]
	sp := bytes.IndexByte(rest[:min(len(rest), maxEpochLen+1)], ' ')
	if sp < 1 {
		return pos, nil, false
	}
	epoch := rest[:sp]
	rest = rest[sp+1:]
	// The id: at most "20 digits - 20 digits".
	sp = bytes.IndexByte(rest[:min(len(rest), 42)], ' ')
	if sp < 0 {
		return pos, nil, false
	}
	id, ok := parseID(rest[:sp])
	if !ok {
		return pos, nil, false
	}
	return invalidation.LogPos{Epoch: string(epoch), ID: id}, rest[sp+1:], true
}

// parseID parses a stream entry id "ms-seq" (both decimal uint64s).
func parseID[T string | []byte](s T) (invalidation.LogID, bool) {
	b := []byte(s)
	dash := bytes.IndexByte(b, '-')
	if dash < 1 || dash == len(b)-1 {
		return invalidation.LogID{}, false
	}
	ms, ok1 := parseUint(b[:dash])
	seq, ok2 := parseUint(b[dash+1:])
	if !ok1 || !ok2 {
		return invalidation.LogID{}, false
	}
	return invalidation.LogID{Ms: ms, Seq: seq}, true
}

// parseUint parses decimal digits only (no sign, no blank), within uint64.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

// malformedFrame is what a handler receives for a payload that starts with
// the frame magic but does not decode: a bare wire envelope magic, which
// the engine reads as a malformed envelope of ours (a gap that clears),
// since the broken frame may have carried invalidations.
var malformedFrame = []byte(wire.Magic)

// dispatch hands one received payload to h: a frame's payload with its log
// position through HandleLogMessage, anything else (raw keys an operator
// published, envelopes of a node with DisableReplay) through HandleMessage.
func dispatch(h invalidation.Handler, payload []byte) {
	if !isFrame(payload) {
		h.HandleMessage(payload)
		return
	}
	pos, p, ok := decodeFrame(payload)
	if !ok {
		h.HandleMessage(malformedFrame)
		return
	}
	h.HandleLogMessage(pos, p)
}
