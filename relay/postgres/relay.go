package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	redisdriver "github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// Relay streams committed row changes from a PostgreSQL logical
// replication slot and invalidates the keys that cache those rows on every
// node of a Redis channel. Build it with New, run it with Run.
type Relay struct {
	cfg    Config
	tables map[string][]template // qualified table name → compiled templates
	log    *slog.Logger
	ran    atomic.Bool
	ready  atomic.Bool
	st     stats
}

// errSlotActive: another relay streams from the slot; wait and ask again.
var errSlotActive = errors.New("postgres: replication slot is in use by another relay")

// New checks cfg (templates included) and returns a relay. It does not
// connect: Run does.
func New(cfg Config) (*Relay, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: c, tables: map[string][]template{}, log: c.Logger}
	for _, m := range c.Mappings {
		ts, _ := compileMapping(m) // checked by withDefaults
		r.tables[m.qualified()] = ts
	}
	r.st.init()
	return r, nil
}

// Ready reports whether the relay holds its slot and streams changes.
func (r *Relay) Ready() bool { return r.ready.Load() }

// Run connects, checks the server, the mappings and the slot, and streams
// until ctx ends (then it returns nil). At start it fails with a clear
// error when PostgreSQL or Redis cannot be reached, the server or the user
// cannot replicate (ErrServerSettings), or the mappings do not fit the
// schema (ErrSchema); once it has streamed, a lost connection is retried
// with backoff (Stats().Reconnects). While another relay streams from the
// slot it waits (SlotActiveRetry) and takes over when that one ends. Run
// may be called once.
func (r *Relay) Run(ctx context.Context) error {
	if !r.ran.CompareAndSwap(false, true) {
		return ErrClosed
	}
	pub, err := redisdriver.NewPublisher(r.cfg.Redis, redisdriver.WithLogger(r.log))
	if err != nil {
		return fmt.Errorf("postgres: redis: %w", err)
	}
	defer pub.Close()
	pctx, cancel := context.WithTimeout(ctx, redisDialTimeout(r.cfg.Redis))
	err = pub.Client().Ping(pctx).Err()
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: redis %s: %v", ErrConnect, redisAddr(r.cfg.Redis), err)
	}
	started := false
	backoff := 100 * time.Millisecond
	waiting := false
	for {
		t0 := time.Now()
		err := r.session(ctx, pub, &started)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, ErrInvalidConfig), errors.Is(err, ErrSchema), errors.Is(err, ErrServerSettings):
			return err
		case errors.Is(err, errSlotActive):
			if !waiting {
				r.log.Info("relay: slot in use by another relay; waiting to take over", "slot", r.cfg.Slot)
				waiting = true
			}
			if !sleepCtx(ctx, r.cfg.SlotActiveRetry) {
				return nil
			}
			continue
		case !started:
			return err
		}
		waiting = false
		if time.Since(t0) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		r.st.reconnects.Add(1)
		r.log.Warn("relay: stream ended; reconnecting", "err", err, "backoff", backoff)
		if !sleepCtx(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session is one connection: checks, slot, continuity, then the stream.
func (r *Relay) session(ctx context.Context, pub *redisdriver.Publisher, started *bool) error {
	conn, err := pgx.Connect(ctx, r.cfg.Postgres)
	if err != nil {
		return fmt.Errorf("%w: postgres: %v", ErrConnect, err)
	}
	defer conn.Close(context.Background())
	if err := checkServer(ctx, conn, r.cfg.Streaming); err != nil {
		return err
	}
	if err := checkTables(ctx, conn, r.cfg.Publication, r.cfg.Mappings); err != nil {
		return err
	}
	rcfg, err := pgconn.ParseConfig(r.cfg.Postgres)
	if err != nil {
		return fmt.Errorf("%w: Postgres: %v", ErrInvalidConfig, err)
	}
	rcfg.RuntimeParams["replication"] = "database"
	rconn, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return fmt.Errorf("%w: postgres replication connection: %v", ErrConnect, err)
	}
	defer rconn.Close(context.Background())
	sys, err := pglogrepl.IdentifySystem(ctx, rconn)
	if err != nil {
		return fmt.Errorf("postgres: IDENTIFY_SYSTEM: %w", err)
	}
	created, lost, err := r.ensureSlot(ctx, conn, rconn, sys.DBName)
	if err != nil {
		return err
	}
	err = pglogrepl.StartReplication(ctx, rconn, r.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: r.pluginArgs(),
	})
	if err != nil {
		if pgCode(err) == "55006" { // object_in_use: another walsender holds the slot
			return errSlotActive
		}
		return fmt.Errorf("postgres: START_REPLICATION on slot %q: %w", r.cfg.Slot, err)
	}
	// The slot is ours now: its position no longer moves under us.
	s, err := readSlot(ctx, conn, r.cfg.Slot)
	if err != nil {
		return err
	}
	mk := markerStore{client: pub.Client(), key: markerKey(pub.Channel(), r.cfg.Slot),
		id: markerID{System: sys.SystemID, Database: sys.DBName, Slot: r.cfg.Slot}}
	skip, err := r.continuity(ctx, pub, mk, s.confirmed, created, lost)
	if err != nil {
		return err
	}
	conn.Close(context.Background())
	*started = true
	r.st.acked.Store(uint64(s.confirmed))
	r.ready.Store(true)
	defer r.ready.Store(false)
	r.log.Info("relay: streaming", "slot", r.cfg.Slot, "publication", r.cfg.Publication, "from", s.confirmed.String())
	return r.stream(ctx, rconn, pub, mk, s.confirmed, skip)
}

// pluginArgs are pgoutput's options: protocol 1, or 2 with streaming.
func (r *Relay) pluginArgs() []string {
	args := []string{"proto_version '1'", "publication_names '" + quotePublication(r.cfg.Publication) + "'"}
	if r.cfg.Streaming {
		args[0] = "proto_version '2'"
		args = append(args, "streaming 'on'")
	}
	return args
}

// slotInfo is a row of pg_replication_slots.
type slotInfo struct {
	exists    bool
	plugin    string
	database  string
	walStatus string
	confirmed pglogrepl.LSN
}

func readSlot(ctx context.Context, conn *pgx.Conn, name string) (slotInfo, error) {
	s := slotInfo{exists: true}
	var plugin, db, ws, conf *string
	err := conn.QueryRow(ctx, `SELECT plugin::text, database::text, wal_status, confirmed_flush_lsn::text
		FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&plugin, &db, &ws, &conf)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotInfo{}, nil
	}
	if err != nil {
		return s, fmt.Errorf("postgres: reading slot %q: %w", name, err)
	}
	s.plugin, s.database, s.walStatus = deref(plugin), deref(db), deref(ws)
	if conf != nil {
		if s.confirmed, err = pglogrepl.ParseLSN(*conf); err != nil {
			return s, fmt.Errorf("postgres: slot %q: confirmed_flush_lsn %q: %w", name, *conf, err)
		}
	}
	return s, nil
}

// ensureSlot creates the slot when missing, and drops and recreates one
// that PostgreSQL invalidated (wal_status "lost": max_slot_wal_keep_size
// removed WAL it needed).
func (r *Relay) ensureSlot(ctx context.Context, conn *pgx.Conn, rconn *pgconn.PgConn, db string) (created, lost bool, err error) {
	s, err := readSlot(ctx, conn, r.cfg.Slot)
	if err != nil {
		return false, false, err
	}
	if s.exists && s.walStatus == "lost" {
		r.log.Warn("relay: slot lost its WAL (max_slot_wal_keep_size); recreating it, replicas will clear", "slot", r.cfg.Slot)
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", r.cfg.Slot); err != nil {
			if pgCode(err) == "55006" {
				return false, false, errSlotActive
			}
			return false, false, fmt.Errorf("postgres: dropping lost slot %q: %w", r.cfg.Slot, err)
		}
		s.exists, lost = false, true
	}
	if s.exists {
		if s.plugin != "pgoutput" || s.database != db {
			return false, false, fmt.Errorf("%w: slot %q exists with plugin %q on database %q; the relay needs a pgoutput slot on %q: use another --slot or run SELECT pg_drop_replication_slot('%s');",
				ErrSchema, r.cfg.Slot, s.plugin, s.database, db, r.cfg.Slot)
		}
		return false, lost, nil
	}
	_, err = pglogrepl.CreateReplicationSlot(ctx, rconn, r.cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	if err != nil {
		if pgCode(err) == "42710" { // duplicate_object: another relay created it first
			return false, false, errSlotActive
		}
		return false, false, fmt.Errorf("postgres: creating slot %q: %w", r.cfg.Slot, err)
	}
	r.log.Info("relay: created replication slot", "slot", r.cfg.Slot)
	return true, lost, nil
}

// continuity decides, once the relay holds the slot, whether the stream
// continues what the relay last published (then it returns the LSN up to
// which transactions were already published, to skip them) or may have
// lost changes (then it publishes one Clear first). It then records the
// slot's position in the marker.
func (r *Relay) continuity(ctx context.Context, pub *redisdriver.Publisher, mk markerStore, confirmed pglogrepl.LSN, created, lost bool) (pglogrepl.LSN, error) {
	m, found, err := mk.read(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: redis: reading the relay marker %q: %v", ErrConnect, mk.key, err)
	}
	var reason string
	var skip pglogrepl.LSN
	switch {
	case lost:
		reason = ClearSlotLost
	case !found && created:
		// First start: nothing was relayed before, nothing to clear.
	case !found:
		reason = ClearNoMarker
	case m.System != mk.id.System || m.Database != mk.id.Database:
		reason = ClearNewSystem
	case created:
		reason = ClearSlotRecreated
	case confirmed > m.lsn:
		reason = ClearSlotSkipped
	default:
		skip = m.lsn
	}
	if reason != "" {
		r.log.Warn("relay: cannot prove continuity with the last run; clearing every replica", "reason", reason, "slot", r.cfg.Slot)
		if err := pub.Clear(ctx); err != nil {
			return 0, fmt.Errorf("postgres: publishing the clear: %w", err)
		}
		r.st.clear(reason)
	}
	if err := mk.write(ctx, confirmed); err != nil {
		return 0, fmt.Errorf("%w: redis: writing the relay marker %q: %v", ErrConnect, mk.key, err)
	}
	return skip, nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func quotePublication(s string) string {
	return strings.ReplaceAll(`"`+strings.ReplaceAll(s, `"`, `""`)+`"`, `'`, `''`)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func redisDialTimeout(c redisdriver.Config) time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return redisdriver.DefaultDialTimeout
}

func redisAddr(c redisdriver.Config) string {
	if len(c.Addresses) > 0 {
		return strings.Join(c.Addresses, ",")
	}
	if c.Address == "" {
		return redisdriver.DefaultAddress
	}
	return c.Address
}
