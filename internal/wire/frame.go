package wire

import (
	"bytes"
	"strconv"

	"github.com/halilbulentorhon/invacache-go/invalidation"
)

// A payload that a driver logged (the Redis driver's replay stream) travels
// on the channel in a frame that carries its position in the log:
//
//	FrameMagic epoch ' ' ms '-' seq ' ' payload
//
// The magic starts with a NUL byte, like the envelope's, so no key an
// operator types is a frame, and differs from Magic in its fourth byte, so
// no envelope is one either. The epoch is 1 to MaxFrameEpochLen bytes
// without a space; ms and seq are decimal uint64s (the stream entry id Redis
// assigned). Everything after the third space is the payload. The Redis
// driver's publish script builds frames; the driver and `invacache monitor`
// read them with DecodeFrame.
const FrameMagic = "\x00ivl1 "

// MaxFrameEpochLen bounds the epoch a frame may carry (the Redis driver
// writes 16 hex digits; a longer one is not ours).
const MaxFrameEpochLen = 64

// AppendFrame appends the frame of payload at pos to dst: what the publish
// script builds, for tests and fuzzing.
func AppendFrame(dst []byte, pos invalidation.LogPos, payload []byte) []byte {
	dst = append(dst, FrameMagic...)
	dst = append(dst, pos.Epoch...)
	dst = append(dst, ' ')
	dst = append(dst, pos.ID.String()...)
	dst = append(dst, ' ')
	return append(dst, payload...)
}

// IsFrame reports whether b starts with the frame magic.
func IsFrame(b []byte) bool { return bytes.HasPrefix(b, []byte(FrameMagic)) }

// DecodeFrame splits a frame into its position and payload (a sub-slice of
// b). ok is false for anything that is not a well-formed frame; it never
// panics, whatever b holds.
func DecodeFrame(b []byte) (pos invalidation.LogPos, payload []byte, ok bool) {
	if !IsFrame(b) {
		return pos, nil, false
	}
	rest := b[len(FrameMagic):]
	sp := bytes.IndexByte(rest[:min(len(rest), MaxFrameEpochLen+1)], ' ')
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
	id, ok := ParseLogID(rest[:sp])
	if !ok {
		return pos, nil, false
	}
	return invalidation.LogPos{Epoch: string(epoch), ID: id}, rest[sp+1:], true
}

// ParseLogID parses a stream entry id "ms-seq" (both decimal uint64s).
func ParseLogID[T string | []byte](s T) (invalidation.LogID, bool) {
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
