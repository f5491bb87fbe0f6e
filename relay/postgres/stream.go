package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// txn is the transaction being received (Begin → Commit).
type txn struct {
	open   bool
	commit time.Time
	keys   map[string]struct{}
	clear  string // clear reason; keys are dropped once set
}

func (t *txn) add(max int, keys ...string) {
	if t.clear != "" {
		return
	}
	for _, k := range keys {
		t.keys[k] = struct{}{}
	}
	if len(t.keys) > max {
		t.setClear(ClearLargeTransaction)
	}
}

// size is the number of keys held (nil-safe, for logs).
func (t *txn) size() int {
	if t == nil {
		return 0
	}
	return len(t.keys)
}

func (t *txn) setClear(reason string) {
	if t.clear == "" {
		t.clear, t.keys = reason, nil
	}
}

// batch is what committed transactions left to publish: their keys merged
// (or one clear), their commit times, and the end LSN of the last one.
type batch struct {
	keys    map[string]struct{}
	clear   string
	commits []time.Time
	end     pglogrepl.LSN
	has     bool // a committed transaction is in it (possibly without keys)
}

// pipeline hands committed transactions from the receiving loop to the
// publishing goroutine, which publishes everything that committed while
// the previous publish was in flight as one batch (group commit).
type pipeline struct {
	maxPending int
	wake       chan struct{} // 1-buffered: a batch is waiting
	space      chan struct{} // 1-buffered: a batch was taken
	published  atomic.Uint64 // end LSN of the last published batch

	mu  sync.Mutex // guards cur
	cur batch
}

func (p *pipeline) add(t *txn, end pglogrepl.LSN) {
	p.mu.Lock()
	b := &p.cur
	b.end, b.has = end, true
	switch {
	case t.clear != "":
		if b.clear == "" {
			b.clear = t.clear
		}
		b.keys = nil
		b.commits = append(b.commits, t.commit)
	case len(t.keys) > 0:
		if b.clear == "" {
			if b.keys == nil {
				b.keys = make(map[string]struct{}, len(t.keys))
			}
			for k := range t.keys {
				b.keys[k] = struct{}{}
			}
		}
		b.commits = append(b.commits, t.commit)
	}
	p.mu.Unlock()
	signal(p.wake)
}

// full reports whether the receiving loop should stop reading until the
// publisher takes the batch (Redis slow or down: PostgreSQL keeps the WAL).
func (p *pipeline) full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cur.keys) >= p.maxPending
}

func (p *pipeline) take() (batch, bool) {
	p.mu.Lock()
	b := p.cur
	p.cur = batch{}
	p.mu.Unlock()
	signal(p.space)
	return b, b.has
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// publishLoop publishes batches until ctx ends, or until publishing fails:
// then it calls stop with the error.
func (r *Relay) publishLoop(ctx context.Context, p *pipeline, pub *redisdriver.Publisher, stop func(error)) {
	h := r.cfg.hooks
	for {
		select {
		case <-p.wake:
		case <-ctx.Done():
			return
		}
		for {
			b, ok := p.take()
			if !ok {
				break
			}
			if h != nil && h.beforePublish != nil {
				h.beforePublish()
			}
			var err error
			switch {
			case b.clear != "":
				err = pub.Clear(ctx)
			case len(b.keys) > 0:
				keys := make([]string, 0, len(b.keys))
				for k := range b.keys {
					keys = append(keys, k)
				}
				err = pub.Invalidate(ctx, keys...)
			}
			if err != nil {
				// Invalidate retries until published; it fails only when
				// ctx ends or the publisher is closed.
				if ctx.Err() == nil {
					stop(fmt.Errorf("postgres: publishing: %w", err))
				}
				return
			}
			now := time.Now()
			if h != nil && h.afterPublish != nil {
				h.afterPublish()
			}
			if b.clear != "" {
				r.st.clear(b.clear)
			}
			r.st.keys.Add(uint64(len(b.keys)))
			r.st.txs.Add(uint64(len(b.commits)))
			r.st.observe(b.commits, now)
			p.published.Store(uint64(b.end))
		}
	}
}

// stream reads the replication stream, buffers each transaction from
// Begin to Commit, hands committed ones to the publisher, and acknowledges
// positions whose changes are all published (recorded in the marker
// first).
func (r *Relay) stream(ctx context.Context, conn *pgconn.PgConn, pub *redisdriver.Publisher, mk markerStore, start, skip pglogrepl.LSN) error {
	ctx, cancel := context.WithCancel(ctx)
	var stopErr atomic.Pointer[error] // why the publisher stopped the session
	p := &pipeline{maxPending: defaultMaxPendingKeysRatio * r.cfg.MaxTransactionKeys,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	p.published.Store(uint64(start))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.publishLoop(ctx, p, pub, func(err error) { stopErr.Store(&err); cancel() })
	}()
	defer wg.Wait()
	defer cancel()

	s := streamState{r: r, p: p, rels: map[uint32]*binding{}, streams: map[uint32]*txn{}, skip: skip, received: start, acked: start, marked: start}
	next := time.Now().Add(r.cfg.StatusInterval)
	dl := deadlines{parent: ctx}
	defer dl.stop()
	for {
		if ctx.Err() != nil {
			if err := stopErr.Load(); err != nil {
				return *err
			}
			return ctx.Err()
		}
		if !time.Now().Before(next) {
			if err := s.status(ctx, conn, mk); err != nil {
				return err
			}
			next = time.Now().Add(r.cfg.StatusInterval)
		}
		if p.full() {
			t := time.NewTimer(time.Until(next))
			select {
			case <-p.space:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			continue
		}
		raw, err := conn.ReceiveMessage(dl.until(next))
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				continue
			}
			if ctx.Err() != nil {
				continue // reported at the top of the loop
			}
			return fmt.Errorf("postgres: receiving: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres: stream: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: keepalive: %w", err)
				}
				s.walEnd = max(s.walEnd, k.ServerWALEnd)
				if k.ReplyRequested {
					next = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: XLogData: %w", err)
				}
				s.serverEnd = max(s.serverEnd, x.ServerWALEnd)
				if err := s.handle(x.WALData); err != nil {
					return err
				}
			}
		}
	}
}

// deadlines hands out one deadline context per status period, rather than
// one per message.
type deadlines struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
	at     time.Time
}

func (d *deadlines) until(t time.Time) context.Context {
	if d.ctx == nil || !d.at.Equal(t) {
		d.stop()
		d.ctx, d.cancel = context.WithDeadline(d.parent, t)
		d.at = t
	}
	return d.ctx
}

func (d *deadlines) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// streamState is the receiving loop's state (one goroutine).
type streamState struct {
	r         *Relay
	p         *pipeline
	rels      map[uint32]*binding // mapped relations by id; nil entry: not mapped
	tx        txn
	streams   map[uint32]*txn // protocol 2: streamed transactions in progress, by xid
	inStream  bool            // between StreamStart and StreamStop
	streamXid uint32          // the xid of the current stream block
	skip      pglogrepl.LSN   // transactions ending at or before it were published by a previous run
	received  pglogrepl.LSN   // end of the last commit received
	walEnd    pglogrepl.LSN   // the last keepalive's WAL end
	serverEnd pglogrepl.LSN   // the server's WAL end as last reported
	acked     pglogrepl.LSN   // last position acknowledged
	marked    pglogrepl.LSN   // position recorded in the marker
}

func (s *streamState) handle(data []byte) (err error) {
	if len(data) == 0 {
		return nil
	}
	defer func() { // a malformed message from the server is an error, never a panic
		if v := recover(); v != nil {
			err = fmt.Errorf("postgres: malformed pgoutput message %q: %v", data[0], v)
		}
	}()
	var msg pglogrepl.Message
	if s.r.cfg.Streaming {
		msg, err = pglogrepl.ParseV2(data, s.inStream)
	} else {
		msg, err = pglogrepl.Parse(data)
	}
	if err != nil {
		return fmt.Errorf("postgres: pgoutput: %w", err)
	}
	switch m := msg.(type) { // protocol 2 wraps the change messages
	case *pglogrepl.RelationMessageV2:
		msg = &m.RelationMessage
	case *pglogrepl.InsertMessageV2:
		msg = &m.InsertMessage
	case *pglogrepl.UpdateMessageV2:
		msg = &m.UpdateMessage
	case *pglogrepl.DeleteMessageV2:
		msg = &m.DeleteMessage
	case *pglogrepl.TruncateMessageV2:
		msg = &m.TruncateMessage
	}
	tx := &s.tx
	if s.inStream {
		tx = s.streams[s.streamXid]
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		name := m.Namespace + "." + m.RelationName
		if ts, ok := s.r.tables[name]; ok {
			b := bind(name, ts, m)
			if b.problem != "" {
				s.r.log.Error("relay: templates no longer resolve; changes to the table will clear the caches", "table", name, "problem", b.problem)
			}
			s.rels[m.RelationID] = b
		} else {
			delete(s.rels, m.RelationID)
		}
	case *pglogrepl.BeginMessage:
		s.tx = txn{open: true, commit: m.CommitTime, keys: map[string]struct{}{}}
	case *pglogrepl.InsertMessage:
		s.change(tx, m.RelationID, m.Tuple, nil, nil)
	case *pglogrepl.UpdateMessage:
		// The new row's keys (an unchanged TOASTed column taken from the
		// old row), and the old row's when the stream carries it; without
		// it the identity columns, so the template columns, did not change.
		s.change(tx, m.RelationID, m.NewTuple, m.OldTuple, m.OldTuple)
	case *pglogrepl.DeleteMessage:
		s.change(tx, m.RelationID, m.OldTuple, nil, nil)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if s.rels[id] != nil {
				tx.setClear(ClearTruncate)
			}
		}
	// Protocol 2, Streaming: a large transaction arrives in blocks before
	// it commits; its keys are kept per transaction id until StreamCommit.
	case *pglogrepl.StreamStartMessageV2:
		s.inStream, s.streamXid = true, m.Xid
		if s.streams[m.Xid] == nil {
			s.streams[m.Xid] = &txn{open: true, keys: map[string]struct{}{}}
		}
	case *pglogrepl.StreamStopMessageV2:
		s.inStream = false
	case *pglogrepl.StreamCommitMessageV2:
		s.r.log.Debug("relay: streamed transaction committed", "xid", m.Xid, "keys", s.streams[m.Xid].size())
		t := s.streams[m.Xid]
		delete(s.streams, m.Xid)
		if t == nil {
			t = &txn{}
		}
		t.commit = m.CommitTime
		s.commit(t, m.TransactionEndLSN)
	case *pglogrepl.StreamAbortMessageV2:
		s.r.log.Debug("relay: streamed transaction aborted", "xid", m.Xid, "subxid", m.SubXid, "keys", s.streams[m.Xid].size())
		// A subtransaction's abort keeps the keys: invalidating a key that
		// did not change costs one reload, and keys are not tracked per
		// subtransaction.
		if m.SubXid == m.Xid {
			delete(s.streams, m.Xid)
		}
	case *pglogrepl.CommitMessage:
		s.commit(&s.tx, m.TransactionEndLSN)
		s.tx = txn{}
	}
	return nil
}

// commit hands a committed transaction to the publisher.
func (s *streamState) commit(t *txn, end pglogrepl.LSN) {
	s.received = max2(s.received, end)
	if end <= s.skip {
		*t = txn{} // published by a previous run: only the position advances
	}
	s.p.add(t, end)
}

// change adds the keys of one row change to the open transaction.
func (s *streamState) change(tx *txn, rel uint32, row, fallback, old *pglogrepl.TupleData) {
	b := s.rels[rel]
	if b == nil || tx == nil {
		return
	}
	if b.problem != "" {
		tx.setClear(ClearSchema)
		return
	}
	keys, ok := b.keys(nil, row, fallback)
	if ok && old != nil {
		keys, ok = b.keys(keys, old, nil)
	}
	if !ok {
		tx.setClear(ClearUnknownValue)
		return
	}
	tx.add(s.r.cfg.MaxTransactionKeys, keys...)
}

// status acknowledges what is safe: everything published, or, when no
// transaction is open and every received one is published, the
// keepalive's WAL end (the watched tables are idle; the slot must still
// advance). The position goes into the marker before it goes to
// PostgreSQL; while Redis is unreachable the old position is repeated.
func (s *streamState) status(ctx context.Context, conn *pgconn.PgConn, mk markerStore) error {
	pos := pglogrepl.LSN(s.p.published.Load())
	if !s.tx.open && len(s.streams) == 0 && pos >= s.received && s.walEnd > pos {
		pos = s.walEnd
	}
	pos = max2(pos, s.acked)
	if pos > s.marked {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := mk.write(wctx, pos)
		cancel()
		if err != nil {
			s.r.log.Warn("relay: cannot record the position in Redis; not acknowledging it yet", "err", err)
			pos = s.marked
		} else {
			s.marked = pos
		}
	}
	s.acked = pos
	err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos})
	if err != nil {
		return fmt.Errorf("postgres: sending status: %w", err)
	}
	s.r.st.acked.Store(uint64(pos))
	end := max2(s.walEnd, s.serverEnd)
	if end > pos {
		s.r.st.lag.Store(uint64(end - pos))
	} else {
		s.r.st.lag.Store(0)
	}
	return nil
}

func max2(a, b pglogrepl.LSN) pglogrepl.LSN {
	if a > b {
		return a
	}
	return b
}
