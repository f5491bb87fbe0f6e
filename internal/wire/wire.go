package wire

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
)

// Version is the envelope version this package writes and reads.
const Version = 1

// Magic starts every envelope. A NUL byte never starts a key an operator
// types, so anything else is a raw key.
const Magic = "\x00ivc"

// MaxPayloadBytes bounds the envelopes Decode accepts (ErrTooLarge past
// it); config.Resolve keeps InvalidationConfig.MaxMessageBytes within it.
// Raw keys are not limited: they decode to a single string.
const MaxPayloadBytes = 1 << 20

// MaxKeyBytes is the longest key an envelope carries: a key alone in a
// payload of MaxPayloadBytes, with room for the longest header (a 20-digit
// sequence number) and the key's length prefix. A sender must refuse a
// longer key: every receiver would reject its envelope as too large, and
// clear.
const MaxKeyBytes = MaxPayloadBytes - 64

// MaxOps bounds the operations of one envelope (ErrTooLarge past it). A
// sender writes one per payload, a clear or one delete with its keys; the
// bound keeps a payload of two-byte operations from being a long loop.
const MaxOps = 1024

// Errors returned by Decode, wrapped with the position and what was expected.
var (
	// ErrMalformed: the payload starts with Magic but breaks the grammar.
	ErrMalformed = errors.New("wire: malformed envelope")
	// ErrUnknownVersion: a well-formed version number other than Version,
	// written by a newer (or foreign) node.
	ErrUnknownVersion = errors.New("wire: unknown envelope version")
	// ErrTooLarge: an envelope longer than MaxPayloadBytes.
	ErrTooLarge = errors.New("wire: envelope too large")
)

// Op is one operation: a clear (Keys is ignored when encoding and nil when
// decoded) or the deletion of Keys.
type Op struct {
	Clear bool
	Keys  []string
}

// Message is a decoded payload.
type Message struct {
	// Version of the envelope; 0 for raw payloads.
	Version int
	// Origin is the sending node's id (envelopes only).
	Origin uint64
	// Seq is the sender's per-origin sequence number (envelopes only).
	Seq uint64
	// Ops in the order they apply.
	Ops []Op
	// Raw means the payload had no Magic: Ops holds one Op, a clear for an
	// empty payload, else the deletion of the payload as one key.
	Raw bool
}

// IsEnvelope reports whether payload starts with Magic.
func IsEnvelope(payload []byte) bool {
	return len(payload) >= len(Magic) && string(payload[:len(Magic)]) == Magic
}

// headerPrefix is what a version-1 envelope starts with, before its origin.
const headerPrefix = Magic + "1 "

// PeekOrigin returns the origin of a version-1 envelope from its header
// alone (magic, "1", space, 16 lowercase hex digits, space), without
// decoding the operations, so a node can drop its own messages cheaply.
// ok is false for anything else: raw payloads, other versions, a broken
// header. When ok, Decode returns the same origin or fails (ErrMalformed,
// ErrTooLarge).
func PeekOrigin(payload []byte) (origin uint64, ok bool) {
	const n = len(headerPrefix) + 16
	if len(payload) <= n || string(payload[:len(headerPrefix)]) != headerPrefix || payload[n] != ' ' {
		return 0, false
	}
	d := decoder{p: payload[:n], i: len(headerPrefix)}
	return d.hex16()
}

// Decode parses one payload. A payload without Magic is a raw key (empty:
// clear) and never fails. Decode never panics and never retains payload.
//
// The operations come back collapsed to what they mean: a clear subsumes
// everything before it and a key named twice is deleted once, so Ops is at
// most a clear followed by one delete of the distinct keys after the last
// clear, in first-seen order. Memory is proportional to those distinct keys
// (they share one allocation), not to the payload's size: a payload of
// repeated operations costs one pass over its bytes.
func Decode(payload []byte) (Message, error) {
	if !IsEnvelope(payload) {
		if len(payload) == 0 {
			return Message{Raw: true, Ops: []Op{{Clear: true}}}, nil
		}
		return Message{Raw: true, Ops: []Op{{Keys: []string{string(payload)}}}}, nil
	}
	if len(payload) > MaxPayloadBytes {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), MaxPayloadBytes)
	}
	d := decoder{p: payload, i: len(Magic)}
	v, ok := d.number(9)
	if !ok {
		return Message{}, d.fail("version number")
	}
	if v != Version {
		if v == 0 || (d.i < len(d.p) && d.p[d.i] != ' ') {
			return Message{}, d.fail("version number")
		}
		return Message{Version: int(v)}, fmt.Errorf("%w %d (this reader knows %d)", ErrUnknownVersion, v, Version)
	}
	m := Message{Version: Version}
	if !d.byte(' ') {
		return Message{}, d.fail("space after version")
	}
	if m.Origin, ok = d.hex16(); !ok {
		return Message{}, d.fail("16 lowercase hex digits of origin")
	}
	if !d.byte(' ') {
		return Message{}, d.fail("space after origin")
	}
	if m.Seq, ok = d.number(20); !ok {
		return Message{}, d.fail("sequence number")
	}
	var (
		clear bool
		keys  = keySet{p: payload}
	)
	for ops := 0; d.i < len(d.p); ops++ {
		if ops == MaxOps {
			return Message{}, fmt.Errorf("%w: more than %d operations", ErrTooLarge, MaxOps)
		}
		if !d.byte(' ') {
			return Message{}, d.fail("space before operation")
		}
		if d.i >= len(d.p) {
			return Message{}, d.fail("operation")
		}
		switch d.p[d.i] {
		case 'C':
			d.i++
			clear = true
			keys.reset() // deleting before a clear changes nothing
		case 'D':
			d.i++
			// A key starts with a digit, an operation with a letter.
			for d.i+1 < len(d.p) && d.p[d.i] == ' ' && isDigit(d.p[d.i+1]) {
				d.i++
				n, ok := d.number(20)
				if !ok || !d.byte(':') {
					return Message{}, d.fail("key length and ':'")
				}
				if n > uint64(len(d.p)-d.i) {
					return Message{}, d.fail(fmt.Sprintf("%d key bytes", n))
				}
				keys.add(d.i, d.i+int(n))
				d.i += int(n)
			}
		default:
			return Message{}, d.fail("operation C or D")
		}
	}
	switch ks := keys.strings(); {
	case clear && len(ks) > 0:
		m.Ops = []Op{{Clear: true}, {Keys: ks}}
	case clear:
		m.Ops = []Op{{Clear: true}}
	case len(ks) > 0:
		m.Ops = []Op{{Keys: ks}}
	}
	return m, nil
}

// decoder walks an envelope; i is the next unread byte.
type decoder struct {
	p []byte
	i int
}

// keySet collects the distinct keys of an envelope as spans of the
// payload, found again by an open-addressing hash table once there are more
// than a few. Its memory, and that of the strings it returns, follows the
// distinct keys whatever the payload repeats.
type keySet struct {
	p     []byte  // the payload the spans point into
	spans []span  // the distinct keys, in first-seen order
	table []int32 // span index + 1 per slot, 0 = free; a power of two, at least twice the keys; nil below linearKeys keys
	seed  maphash.Seed
}

// span is p[from:to] (payloads are < 2 GiB).
type span struct{ from, to int32 }

// linearKeys is how many keys are compared one by one before the table is
// built: most messages name a few.
const linearKeys = 8

// presizeKeys caps the keys the lists are sized for up front (from the
// spaces left in the payload, which bound the keys), so that a payload of
// repeats does not reserve room for keys it never names.
const presizeKeys = 128

func (s *keySet) key(i int) []byte { return s.p[s.spans[i].from:s.spans[i].to] }

// add appends p[from:to] unless that key is already in the set.
func (s *keySet) add(from, to int) {
	k := s.p[from:to]
	n := len(s.spans)
	if n < linearKeys {
		for i := range n {
			if bytes.Equal(s.key(i), k) {
				return
			}
		}
		if s.spans == nil {
			s.spans = make([]span, 0, min(bytes.Count(s.p[from:], []byte{' '})+1, presizeKeys))
		}
	} else {
		if 2*(n+1) > len(s.table) {
			s.grow(n)
		}
		slot, found := s.find(k)
		if found {
			return
		}
		s.table[slot] = int32(n + 1)
	}
	s.spans = append(s.spans, span{int32(from), int32(to)})
}

// find returns k's slot, or the free slot where it belongs.
func (s *keySet) find(k []byte) (slot int, found bool) {
	mask := len(s.table) - 1
	for i := int(maphash.Bytes(s.seed, k)) & mask; ; i = (i + 1) & mask {
		j := s.table[i]
		if j == 0 {
			return i, false
		}
		if bytes.Equal(s.key(int(j-1)), k) {
			return i, true
		}
	}
}

// grow makes a table for more than n keys (at least the capacity of the
// key list) and indexes the n in the set.
func (s *keySet) grow(n int) {
	size := max(4*linearKeys, 2*len(s.table))
	for size < 2*max(n+1, cap(s.spans)) {
		size *= 2
	}
	if s.table == nil {
		s.seed = maphash.MakeSeed()
	}
	s.table = make([]int32, size)
	for i := range n {
		slot, _ := s.find(s.key(i))
		s.table[slot] = int32(i + 1)
	}
}

// reset empties the set. Clearing the table costs its size, so a table much
// larger than the keys it holds is dropped instead: a payload alternating
// clears and a key cannot make each clear pay for an earlier, larger set.
func (s *keySet) reset() {
	if s.table != nil {
		if 8*len(s.spans) >= len(s.table) {
			clear(s.table)
		} else {
			s.table = nil
		}
	}
	s.spans = s.spans[:0]
}

// strings returns the keys as substrings of one string: a copy of the
// payload when the keys make up at least half of it, else of the keys'
// bytes alone.
func (s *keySet) strings() []string {
	if len(s.spans) == 0 {
		return nil
	}
	total := 0
	for _, sp := range s.spans {
		total += int(sp.to - sp.from)
	}
	out := make([]string, len(s.spans))
	if 2*total >= len(s.p) {
		all := string(s.p)
		for i, sp := range s.spans {
			out[i] = all[sp.from:sp.to]
		}
		return out
	}
	var b strings.Builder
	b.Grow(total)
	for _, sp := range s.spans {
		b.Write(s.p[sp.from:sp.to])
	}
	all, from := b.String(), 0
	for i, sp := range s.spans {
		to := from + int(sp.to-sp.from)
		out[i] = all[from:to]
		from = to
	}
	return out
}

func (d *decoder) fail(expected string) error {
	return fmt.Errorf("%w: at byte %d: expected %s", ErrMalformed, d.i, expected)
}

func (d *decoder) byte(c byte) bool {
	if d.i < len(d.p) && d.p[d.i] == c {
		d.i++
		return true
	}
	return false
}

// number reads a canonical decimal uint64 of at most maxDigits digits.
func (d *decoder) number(maxDigits int) (uint64, bool) {
	start := d.i
	var v uint64
	for d.i < len(d.p) && isDigit(d.p[d.i]) {
		if d.i-start == maxDigits {
			return 0, false
		}
		c := uint64(d.p[d.i] - '0')
		if v > (1<<64-1-c)/10 {
			return 0, false // overflow
		}
		v = v*10 + c
		d.i++
	}
	n := d.i - start
	if n == 0 || (n > 1 && d.p[start] == '0') {
		return 0, false
	}
	return v, true
}

func (d *decoder) hex16() (uint64, bool) {
	if len(d.p)-d.i < 16 {
		return 0, false
	}
	var v uint64
	for _, c := range d.p[d.i : d.i+16] {
		switch {
		case isDigit(c):
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	d.i += 16
	return v, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// AppendMessage appends the envelope of m to dst and returns the extended
// buffer. It always writes Version and ignores m.Version and m.Raw; a Clear
// op's Keys are not written.
func AppendMessage(dst []byte, m Message) []byte {
	dst = appendHeader(dst, m.Origin, m.Seq)
	for _, op := range m.Ops {
		if op.Clear {
			dst = append(dst, " C"...)
			continue
		}
		dst = append(dst, " D"...)
		for _, k := range op.Keys {
			dst = appendKey(dst, k)
		}
	}
	return dst
}

func appendHeader(dst []byte, origin, seq uint64) []byte {
	dst = append(dst, Magic...)
	dst = strconv.AppendUint(dst, Version, 10)
	dst = append(dst, ' ')
	const hexDigits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[origin>>uint(shift)&0xf])
	}
	dst = append(dst, ' ')
	return strconv.AppendUint(dst, seq, 10)
}

func appendKey(dst []byte, k string) []byte {
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(len(k)), 10)
	dst = append(dst, ':')
	return append(dst, k...)
}

// keyLen is len(appendKey(nil, k)).
func keyLen(k string) int {
	n := 3 + len(k) // space, at least one digit, colon
	for l := len(k); l >= 10; l /= 10 {
		n++
	}
	return n
}

// AppendBatches encodes one logical batch, a clear or a set of keys, as
// payloads of at most maxBytes each (a key too long for that goes out alone
// in a larger payload), numbered firstSeq, firstSeq+1, ... from origin.
// When clear is true the keys are subsumed and not written. An empty batch
// writes nothing.
//
// The payload bytes are appended to buf and the payloads (sub-slices of the
// returned buffer) to dst; both are returned with the next free sequence
// number. Reusing dst[:0] and buf[:0] across batches makes steady-state
// encoding allocation-free.
func AppendBatches(dst [][]byte, buf []byte, origin, firstSeq uint64, clear bool, keys []string, maxBytes int) ([][]byte, []byte, uint64) {
	start, n0, seq := len(buf), len(dst), firstSeq
	switch {
	case clear:
		from := len(buf)
		buf = appendHeader(buf, origin, seq)
		buf = append(buf, " C"...)
		dst = append(dst, buf[from:])
		seq++
	default:
		for i := 0; i < len(keys); {
			from := len(buf)
			buf = appendHeader(buf, origin, seq)
			buf = append(buf, " D"...)
			for first := true; i < len(keys); first = false {
				if !first && len(buf)-from+keyLen(keys[i]) > maxBytes {
					break
				}
				buf = appendKey(buf, keys[i])
				i++
			}
			dst = append(dst, buf[from:])
			seq++
		}
	}
	// buf may have moved while growing: re-point every payload into the
	// final array (they are contiguous from start).
	off := start
	for j := n0; j < len(dst); j++ {
		l := len(dst[j])
		dst[j] = buf[off : off+l : off+l]
		off += l
	}
	return dst, buf, seq
}

// Equal reports whether a and b are the same message (nil and empty key
// lists are equal).
func Equal(a, b Message) bool {
	if a.Version != b.Version || a.Origin != b.Origin || a.Seq != b.Seq || a.Raw != b.Raw || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := a.Ops[i], b.Ops[i]
		if x.Clear != y.Clear || len(x.Keys) != len(y.Keys) {
			return false
		}
		for j := range x.Keys {
			if x.Keys[j] != y.Keys[j] {
				return false
			}
		}
	}
	return true
}
