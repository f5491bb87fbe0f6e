package engine

import "slices"

// maxUnchecked bounds how many keys an outbox holds without coalescing. The
// caller's enqueue is an append; duplicates are removed by the publisher
// when it takes the batch. Only while the publisher cannot keep up (the bus
// is down, a publish is slow) does the unchecked tail grow this long; from
// then on each enqueue also checks two tail keys until the tail is drained,
// so memory stays bounded (distinct keys plus about 2*maxUnchecked entries)
// without any caller paying for the whole tail at once.
const maxUnchecked = 1 << 15

// shrinkAbove is the size past which outbox buffers are dropped rather than
// reused once shrinkAfter batches in a row used less than a quarter of them,
// so one burst does not pin memory while load that merely fluctuates keeps
// its buffers.
const (
	shrinkAbove = 2 * maxUnchecked
	shrinkAfter = 64
)

// outbox is a list of keys to broadcast that coalesces duplicates lazily:
// keys holds checked keys without duplicates (exactly the content of set),
// in arrival order; tail[next:] holds the keys queued after them, not
// checked yet. Not safe for concurrent use: the engine's pending outbox is
// guarded by Engine.mu, a batch taken from it is owned by the publisher.
type outbox struct {
	keys []string
	set  keySet
	tail []string
	next int // tail[:next] has been checked (and cleared)
	// bytes is the length of the queued keys, duplicates in the tail
	// counted each time (exact after coalesce), for the outbox's cap.
	bytes int
	peak  int // most keys in a batch since the buffers were made
	// small counts the batches in a row that used under a quarter of peak.
	small int
}

// empty reports whether nothing is queued.
func (o *outbox) empty() bool { return len(o.keys) == 0 && len(o.tail) == 0 }

// add queues k.
func (o *outbox) add(k string) {
	o.tail = append(o.tail, k)
	o.bytes += len(k)
	if o.next > 0 || len(o.tail) > maxUnchecked {
		o.check(2) // draining a backlog: one more than was added
	}
}

// coalesce checks the whole tail: keys then holds every queued key once.
func (o *outbox) coalesce() { o.check(len(o.tail) - o.next) }

// check moves up to n keys from the front of the tail to keys, dropping
// those already there.
func (o *outbox) check(n int) {
	end := min(o.next+n, len(o.tail))
	if len(o.keys) == 0 {
		o.keys = slices.Grow(o.keys, len(o.tail)-o.next) // one allocation, not a series
	}
	for _, k := range o.tail[o.next:end] {
		if o.set.add(k) {
			o.keys = append(o.keys, k)
		} else {
			o.bytes -= len(k)
		}
	}
	clear(o.tail[o.next:end]) // drop references to the callers' strings
	o.next = end
	if o.next == len(o.tail) {
		o.tail, o.next = o.tail[:0], 0
	}
	o.peak = max(o.peak, len(o.keys))
}

// len is the number of queued keys, duplicates in the tail counted each
// time: exact after coalesce.
func (o *outbox) len() int { return len(o.keys) + len(o.tail) - o.next }

// reset empties the outbox, keeping its buffers for the next batch unless
// a past burst left them much larger than the batches since.
func (o *outbox) reset() {
	if len(o.keys)*4 >= o.peak {
		o.small = 0
	} else {
		o.small++
	}
	clear(o.keys) // drop references to the callers' strings
	clear(o.tail)
	if o.small >= shrinkAfter && o.peak > shrinkAbove {
		*o = outbox{}
		return
	}
	o.set.reset()
	o.keys, o.tail, o.next, o.bytes = o.keys[:0], o.tail[:0], 0, 0
}
