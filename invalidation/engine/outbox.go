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
// its buffers (regrowing a map costs more than filling it).
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
	set  map[string]struct{}
	tail []string
	next int // tail[:next] has been checked (and cleared)
	peak int // largest len(set) since set was made: a proxy for its capacity
	// small counts the batches in a row that used under a quarter of peak.
	small int
}

// empty reports whether nothing is queued.
func (o *outbox) empty() bool { return len(o.keys) == 0 && len(o.tail) == 0 }

// add queues k.
func (o *outbox) add(k string) {
	o.tail = append(o.tail, k)
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
	if o.set == nil && end > o.next {
		o.set = make(map[string]struct{}, len(o.tail)-o.next) // all of it, eventually
	}
	if len(o.keys) == 0 {
		o.keys = slices.Grow(o.keys, len(o.tail)-o.next) // one allocation, not a series
	}
	for _, k := range o.tail[o.next:end] {
		if _, dup := o.set[k]; !dup {
			o.set[k] = struct{}{}
			o.keys = append(o.keys, k)
		}
	}
	clear(o.tail[o.next:end]) // drop references to the callers' strings
	o.next = end
	if o.next == len(o.tail) {
		o.tail, o.next = o.tail[:0], 0
	}
	o.peak = max(o.peak, len(o.set))
}

// len is the number of queued keys, duplicates in the tail counted each
// time: exact after coalesce.
func (o *outbox) len() int { return len(o.keys) + len(o.tail) - o.next }

// reset empties the outbox, keeping its buffers for the next batch unless
// they are much larger than this one (a past burst).
func (o *outbox) reset() {
	n := len(o.set)
	if n*4 >= o.peak {
		o.small = 0
	} else {
		o.small++
	}
	shrink := o.small >= shrinkAfter && o.peak > shrinkAbove
	switch {
	case shrink:
		o.set, o.peak, o.small = nil, 0, 0
	case n*4 >= o.peak:
		clear(o.set) // O(capacity), and the capacity is about peak <= 4n
	default:
		// A small batch in a map sized for a larger one: deleting its keys
		// costs O(n) where clear would cost O(capacity).
		for _, k := range o.keys {
			delete(o.set, k)
		}
	}
	clear(o.keys) // drop references to the callers' strings
	clear(o.tail)
	o.keys, o.tail, o.next = o.keys[:0], o.tail[:0], 0
	if shrink {
		o.keys, o.tail = nil, nil
	}
}
