package invalidation

import (
	"context"
	"log/slog"
	"time"
)

// Driver moves opaque payloads to and from one broadcast channel and reports
// the state of its subscription. It knows nothing of keys, caches or the wire
// format: the engine (package internal/engine) owns encoding, sequencing,
// the outbox, gap detection and liveness, so every driver gets the same
// guarantees.
//
// A Driver may be shared by several caches: each calls Subscribe once and
// Publish concurrently. Implementations must be safe for concurrent use.
type Driver interface {
	// Publish sends the payloads to the channel, in order, and returns once
	// the bus has accepted all of them or with the first error. It must
	// return promptly when ctx is done. A nil error means every payload left
	// the process.
	Publish(ctx context.Context, payloads [][]byte) error

	// Subscribe attaches h to the channel. The driver calls h's methods from
	// one goroutine per subscription, never concurrently, in the order the
	// events happen. Subscribe does not wait for the link: the first
	// HandleLinkUp reports it. Subscribe fails only when the driver is closed
	// or the options are invalid.
	Subscribe(h Handler, opts SubscribeOptions) (Subscription, error)

	// Close releases the driver's connections and stops its goroutines. It
	// is idempotent. Subscriptions still open are closed.
	Close() error
}

// SubscribeOptions tunes one subscription.
type SubscribeOptions struct {
	// PingInterval is how often the driver proves the subscription path
	// alive with a round trip through it (HandleAliveAt; HandleAlive for a
	// proof with no earlier start). Zero means the driver's default.
	PingInterval time.Duration
}

// Handler receives what a subscription observes. Calls are serialized per
// subscription and must return quickly: a slow handler stalls the reader.
type Handler interface {
	// HandleMessage receives one payload from the channel that is not an
	// entry of the driver's replay log (a driver without a log, or a raw
	// key an operator published with redis-cli). The payload is only valid
	// during the call.
	HandleMessage(payload []byte)
	// HandleLogMessage receives one payload from the channel that is the
	// entry at pos of the driver's replay log (see Replayer): the handler
	// uses pos as its cursor, so that after a gap it replays the log from
	// there instead of clearing its cache. Drivers call it, instead of
	// HandleMessage, for every payload they logged, in log order. The
	// payload is only valid during the call.
	HandleLogMessage(pos LogPos, payload []byte)
	// HandleLinkUp reports that the subscription is established, the first
	// time or again after a reconnect. Messages published while it was down
	// may be lost. It also proves the link alive at this moment.
	HandleLinkUp()
	// HandleLinkDown reports that the subscription was lost. An err that
	// wraps config.ErrInvalidConfig says only a configuration change can
	// fix it (the Redis driver: the ACL user may not use the channel); if
	// the subscription never came up, NewCache fails with it.
	HandleLinkDown(err error)
	// HandleAlive reports that the subscription path is proven alive now,
	// for drivers whose proof has no earlier start (the in-process bus).
	HandleAlive()
	// HandleAliveAt reports a proof of life that started at sent. A round
	// trip through the subscription (a PING answered on the subscribed
	// connection) proves that everything published before the server
	// answered the PING has been delivered, not everything published before
	// the answer arrived: on a lagging link (a slow subscriber reading a
	// backlog) the two differ by the lag. A driver whose proof is such a
	// round trip calls HandleAliveAt with the PING's send time, so the
	// handler ages the proof correctly. sent must be a time.Now() reading
	// taken at the send, which carries the monotonic clock: only that
	// reading counts, so a step of the wall clock between send and answer
	// changes nothing (a time without one, parsed or stripped by Round(0),
	// is aged by the wall clock). A proof never counts later than its
	// arrival. It is part of Handler, not an optional extension, so that a
	// wrapping handler cannot silently turn it into HandleAlive.
	HandleAliveAt(sent time.Time)
}

// ReachHandler is implemented by Handlers that tell an outage of the bus
// from a link that is merely unproven. A driver that can tell calls
// HandleUnreachable after an attempt to connect failed outright (refused,
// timed out, unresolvable) while its link is down, and HandleReachable once
// an attempt connects again (before the subscription is up, which
// HandleLinkUp then reports). A connection that is made but does not answer
// (a half-open link, a slow subscriber) is not an outage. Calls are
// serialized with the Handler's other methods; repeated calls are allowed.
// The engine serves under InvalidationConfig.OutageStaleness in between.
type ReachHandler interface {
	HandleUnreachable(err error)
	HandleReachable()
}

// Subscription is one attached Handler.
type Subscription interface {
	// Close detaches the handler and stops the goroutines this subscription
	// started. It is idempotent. No Handler method runs after it returns.
	Close() error
}

// ConnectTimeouter is implemented by drivers that know how long their first
// connection may take (the Redis driver returns its DialTimeout). NewCache
// waits at most that long for the first HandleLinkUp before it returns a
// cache whose link is still down.
type ConnectTimeouter interface {
	ConnectTimeout() time.Duration
}

// Spec is what a driver factory receives to build a driver.
type Spec struct {
	// Type is the registered name the factory was found under.
	Type string
	// Options is InvalidationConfig.DriverConfig: settings by key (the typed
	// Redis settings arrive here too, keyed by field name). The factory must
	// reject unknown keys and wrong types, naming the key.
	Options map[string]any
	// Logger receives the driver's warnings; never nil (a discarding logger
	// when the user gave none).
	Logger *slog.Logger
}

// Factory builds a driver from a Spec. Errors should wrap
// config.ErrInvalidConfig for bad settings.
type Factory func(spec Spec) (Driver, error)
