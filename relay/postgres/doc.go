// Package postgres is InvaCache-Go's PostgreSQL change-stream relay: it
// tails a logical replication slot (pgoutput, protocol version 1, or 2
// with streaming when Config.Streaming is set) and, for
// every committed change to a mapped table, invalidates the keys that
// cache the row on every node of a Redis channel, through the Redis
// driver's Publisher (the same envelope, outbox and replay log as a
// cache's own broadcasts). Writers need no change: psql, migrations and
// services in other languages invalidate the caches by committing.
//
//	r, err := postgres.New(postgres.Config{
//		Postgres: "postgres://relay@db/app",
//		Redis:    redis.Config{Address: "redis:6379", Channel: "app:inv"},
//		Mappings: []postgres.Mapping{{Table: "users", Keys: []string{"user:{id}", "user_by_email:{email}"}}},
//	})
//	if err != nil { ... }
//	err = r.Run(ctx) // until ctx ends
//
// # Rows to keys
//
// A Mapping names a table and key templates over its columns; a
// placeholder takes the column's value in PostgreSQL's text output. An
// INSERT invalidates the new row's keys, a DELETE the old row's, an UPDATE
// both (a changed email invalidates the old and the new user_by_email
// key). A key with a NULL column is skipped. At start Run checks that each
// template column is in the table's replica identity (a primary key
// covering it, or REPLICA IDENTITY FULL), since a DELETE or an UPDATE
// carries only those columns of the old row, and refuses to start
// otherwise (ErrSchema, with the SQL that fixes it). An UPDATE that leaves
// a TOASTed column unchanged does not carry its value: the relay takes it
// from the old row (REPLICA IDENTITY FULL carries it); when neither has it
// the transaction clears the caches (reason "unknown_value"). A TRUNCATE of
// a mapped table, or a transaction touching more than MaxTransactionKeys
// keys, sends one Clear. A RelationMessage (a schema change) re-resolves
// the templates; a template column dropped or taken out of the identity
// makes the table's changes clear the caches, and the next start fail.
//
// # Transactions and acknowledgement
//
// Keys are buffered from Begin to Commit; PostgreSQL sends only committed
// transactions, so a rolled-back one publishes nothing. With Streaming, a
// large transaction arrives in blocks before it ends: its keys are kept
// until StreamCommit and dropped on StreamAbort (a subtransaction's abort
// keeps them: an extra invalidation costs a reload, never staleness). Transactions that
// commit while a publish is in flight are published together in the next
// one (group commit); each publish returns once its batch is in the Redis
// log. The relay acknowledges a position to PostgreSQL (StandbyStatusUpdate
// write/flush/apply) only after every transaction up to it is published,
// every StatusInterval (default 1s) and when the server asks. When no
// transaction is open and all received ones are published, it acknowledges
// the keepalive's WAL end, so the slot advances while the mapped tables are
// idle and other tables are busy. A Redis outage stops the acknowledgements
// (PostgreSQL keeps the WAL); the relay stops reading once 4 ×
// MaxTransactionKeys keys wait, and resumes without loss.
//
// # Restarts, lost slots, several relays
//
// Delivery is at least once. Next to the replay log the relay keeps a
// marker key ("{channel}:relay:<slot>") holding the PostgreSQL system
// identifier, the database, the slot and the position up to which
// everything is published; it is written before that position is
// acknowledged, so the slot's confirmed_flush_lsn never passes it.
// A restart on the intact slot re-reads from confirmed_flush_lsn, skips the
// transactions the marker says were published, and sends no Clear. When
// continuity cannot be proven it publishes one Clear first (Stats.Clears,
// by reason): the slot was dropped and is created again while a marker
// exists ("slot_recreated"), PostgreSQL invalidated it because
// max_slot_wal_keep_size removed its WAL (the relay drops and recreates it:
// "slot_lost"), its position is past the marker ("slot_skipped"), the
// marker is missing while the slot exists ("no_marker"), or it belongs to
// another system ("new_system"). The first start, which creates the slot
// with no marker, clears nothing.
//
// One relay streams from a slot at a time: PostgreSQL refuses a second
// walsender on an active slot, and a second relay asks again every
// SlotActiveRetry, taking over when the first one's connection ends.
//
// # Errors
//
// Run fails at start, naming the cause, when PostgreSQL or Redis cannot be
// reached (ErrConnect), wal_level is not logical or the user lacks
// REPLICATION (ErrServerSettings), or the mappings do not fit the schema or
// the publication (ErrSchema). After it has streamed once, lost connections
// are retried with backoff (Stats.Reconnects).
package postgres
