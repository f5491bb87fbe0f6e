// Package wire is the invalidation message codec: a versioned, length-prefixed
// envelope that stays readable in `redis-cli subscribe`, plus the raw forms
// operators type by hand.
//
// # Grammar (version 1)
//
// In ABNF (RFC 5234); SP is one space (0x20), numbers are ASCII decimal
// without leading zeros ("0" is the only number starting with 0):
//
//	payload  = envelope / raw
//	envelope = magic version SP origin SP seq *(SP op)
//	magic    = %x00 "ivc"                   ; 4 bytes: NUL, "ivc"
//	version  = number                       ; "1"; 1..9 digits
//	origin   = 16(DIGIT / %x61-66)          ; node id, lowercase hex, 16 digits
//	seq      = number                       ; per-origin sequence, uint64
//	op       = clear / delete
//	clear    = "C"                          ; drop every key
//	delete   = "D" *(SP key)                ; drop these keys
//	key      = number ":" *OCTET            ; exactly number octets follow ":"
//	raw      = *OCTET                       ; anything not starting with magic
//
// Example, as redis-cli shows it:
//
//	"\x00ivc1 9f3a61c07e2b4d18 42 D 6:user:1 9:order:7 a"
//
// is message 42 of node 0x9f3a61c07e2b4d18 deleting "user:1" and "order:7 a".
// Because each key carries its length, any byte string (spaces, NUL, binary)
// is a valid key.
//
// A payload that does not start with the magic is a raw key: publishing
// "user:1" deletes user:1 everywhere; an empty payload clears every cache
// (both as in the original InvaCache-Go). Raw payloads carry no origin or
// sequence, so they are never self-suppressed or gap-checked.
//
// # Versions and errors
//
// A version other than 1 that is a well-formed number decodes to
// ErrUnknownVersion (with Message.Version set): a newer writer may have sent
// invalidations this reader cannot see, and the engine treats it as a gap.
// New operation kinds come with a new version; a version-1 reader rejects an
// unknown operation letter as ErrMalformed. Anything else wrong with an
// envelope is ErrMalformed; an envelope longer than MaxPayloadBytes or with
// more than MaxOps operations is ErrTooLarge. Decode never panics, whatever
// the input (it is fuzzed).
//
// # Decoding is bounded
//
// Decode returns what a message means, not each operation it spells: a
// clear subsumes what came before it and a repeated key is deleted once, so
// a message decodes to at most a clear and one delete of distinct keys. It
// makes one pass over the payload and allocates in proportion to the
// distinct keys, so a payload of repeats (a flood of " C", one key a
// hundred thousand times) costs no more than reading it.
//
// # Batches
//
// AppendBatches encodes one logical batch (a clear flag, or a set of keys)
// as as many payloads as needed to keep each at most maxBytes long, with
// consecutive sequence numbers. A single key too long to fit still goes out,
// alone in its payload: nothing is dropped. Encoding appends into
// caller-owned buffers so a publisher can reuse them between batches.
//
// # Log frames
//
// A driver with a replay log sends each logged payload (an envelope or a
// raw key) in a frame naming its log position: "\x00ivl1 EPOCH MS-SEQ "
// then the payload (see FrameMagic). DecodeFrame splits one; a payload
// without the frame magic is not logged (an operator's raw key, or a
// node with replay turned off).
package wire
