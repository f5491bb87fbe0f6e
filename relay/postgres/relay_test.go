package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	invacache "github.com/halilbulentorhon/invacache-go"
)

const usersSetup = `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text);
ALTER TABLE users REPLICA IDENTITY FULL;
CREATE PUBLICATION relay_pub FOR TABLE users`

const usersMap = "public.users=user:{id},user_by_email:{email}"

func TestParseMapping(t *testing.T) {
	tests := []struct {
		in      string
		want    string // Mapping.String(); "" when an error is expected
		wantErr string
	}{
		{in: "public.users=user:{id},user_by_email:{email}", want: "public.users=user:{id},user_by_email:{email}"},
		{in: "users=u:{id}", want: "public.users=u:{id}"},
		{in: "s.t=a:{x}:{y}, b{{lit}}:{x}", want: "s.t=a:{x}:{y},b{{lit}}:{x}"},
		{in: "users", wantErr: "want [schema.]table=template"},
		{in: "users=user:{id", wantErr: "is not closed"},
		{in: "users=user:{}", wantErr: "empty or nested placeholder"},
		{in: "users=user:id}", wantErr: "without '{'"},
		{in: "users=user", wantErr: "has no {column}"},
		{in: "users=", wantErr: "empty template"},
		{in: "=user:{id}", wantErr: "bad table name"},
		{in: "a.b.c=x:{id}", wantErr: "bad table name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMapping(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMapping(%q) error = %v, want ErrInvalidConfig containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMapping(%q): %v", tt.in, err)
			}
			if got := m.String(); got != tt.want {
				t.Errorf("ParseMapping(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTemplateKeys(t *testing.T) {
	ts, err := compileMapping(Mapping{Table: "t", Keys: []string{"a:{x}:{y}", "{{b}}:{x}"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := renderForTest(ts, map[string]string{"x": "1", "y": "two"}), "a:1:two {b}:1"; got != want {
		t.Errorf("keys = %q, want %q", got, want)
	}
}

// TestPlainWritesInvalidateReplicas: INSERT, UPDATE (a changed email: the
// old and the new key) and DELETE from plain pgx reach two replicas.
func TestPlainWritesInvalidateReplicas(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B')")
	a, b := e.replica(), e.replica()
	cs := []invacache.Cache[string]{a, b}
	r := start(t, e.config(usersMap))

	steps := []struct {
		name string
		sql  string
		gone []string
	}{
		{"insert", "INSERT INTO users VALUES (3, 'c@x', 'C')", []string{"user:3", "user_by_email:c@x"}},
		{"update name", "UPDATE users SET name = 'AA' WHERE id = 1", []string{"user:1", "user_by_email:a@x"}},
		{"update email", "UPDATE users SET email = 'new@x' WHERE id = 2", []string{"user:2", "user_by_email:b@x", "user_by_email:new@x"}},
		{"delete", "DELETE FROM users WHERE id = 1", []string{"user:1", "user_by_email:a@x"}},
	}
	for _, s := range steps {
		cacheAll(t, cs, append([]string{"control"}, s.gone...)...)
		e.exec(s.sql)
		waitMissing(t, cs, s.gone...)
		for i, c := range cs {
			if !holds(c, "control") {
				t.Fatalf("%s: replica %d lost the control key: a clear, not an invalidation", s.name, i)
			}
		}
	}
	st := r.Stats()
	if st.Transactions < uint64(len(steps)) || st.KeysPublished == 0 || len(st.Clears) != 0 || st.PublishLatency.Count == 0 {
		t.Errorf("Stats = %+v, want ≥%d transactions, keys, latency observations and no clears", st, len(steps))
	}
}

// TestRollbackPublishesNothing: an aborted transaction's keys stay cached.
func TestRollbackPublishesNothing(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B')")
	c := e.replica()
	r := start(t, e.config(usersMap))
	cs := []invacache.Cache[string]{c}
	cacheAll(t, cs, "user:1", "user:2")
	ctx := context.Background()
	tx, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE users SET name = 'rolled back' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// A later committed change is published after the rolled-back one
	// would have been: once it arrives, the other would have too.
	e.exec("UPDATE users SET name = 'committed' WHERE id = 2")
	waitMissing(t, cs, "user:2")
	if !holds(c, "user:1") {
		t.Error("user:1 was invalidated by a rolled-back transaction")
	}
	if got := r.Stats().Transactions; got != 1 {
		t.Errorf("Stats().Transactions = %d, want 1", got)
	}
}

// TestTruncateClears: a TRUNCATE of a mapped table clears every replica.
func TestTruncateClears(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')")
	c := e.replica()
	r := start(t, e.config(usersMap))
	cs := []invacache.Cache[string]{c}
	cacheAll(t, cs, "unrelated")
	e.exec("TRUNCATE users")
	waitMissing(t, cs, "unrelated")
	eventually(t, 5*time.Second, "clear counted", func() bool { return r.Stats().Clears[ClearTruncate] == 1 })
}

// TestLargeTransactionClears: more keys than MaxTransactionKeys send one
// Clear instead.
func TestLargeTransactionClears(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup)
	c := e.replica()
	cfg := e.config(usersMap)
	cfg.MaxTransactionKeys = 5
	r := start(t, cfg)
	cs := []invacache.Cache[string]{c}
	cacheAll(t, cs, "unrelated")
	e.exec("INSERT INTO users SELECT g, 'e' || g, 'n' FROM generate_series(1, 10) g")
	waitMissing(t, cs, "unrelated")
	eventually(t, 5*time.Second, "clear counted", func() bool { return r.Stats().Clears[ClearLargeTransaction] == 1 })
}

// TestToastUpdate: an UPDATE that leaves a TOASTed template column
// unchanged (pgoutput sends it as 'u') still invalidates its key, from the
// old row, without a clear.
func TestToastUpdate(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, `CREATE TABLE pages (id int PRIMARY KEY, slug text NOT NULL, views int NOT NULL DEFAULT 0);
		ALTER TABLE pages ALTER COLUMN slug SET STORAGE EXTERNAL;
		ALTER TABLE pages REPLICA IDENTITY FULL;
		CREATE PUBLICATION relay_pub FOR TABLE pages`)
	slug := strings.Repeat("abcdefgh", 1000) // 8 kB stored out of line, uncompressed
	e.exec("INSERT INTO pages VALUES (1, $1, 0)", slug)
	c := e.replica()
	r := start(t, e.config("pages=page:{id},page_by_slug:{slug}"))
	cs := []invacache.Cache[string]{c}
	cacheAll(t, cs, "control", "page:1", "page_by_slug:"+slug)
	e.exec("UPDATE pages SET views = views + 1 WHERE id = 1")
	waitMissing(t, cs, "page:1", "page_by_slug:"+slug)
	if !holds(c, "control") {
		t.Fatalf("the replica cleared (Clears %v); want the slug's key from the old row", r.Stats().Clears)
	}
}

// TestRelationChangeRebinds: a column added before a template column moves
// its position; the relay follows the RelationMessage.
func TestRelationChangeRebinds(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users VALUES (1, 'a@x', 'A')")
	c := e.replica()
	start(t, e.config(usersMap))
	cs := []invacache.Cache[string]{c}
	cacheAll(t, cs, "user:1", "user_by_email:a@x")
	e.exec("UPDATE users SET name = 'x' WHERE id = 1")
	waitMissing(t, cs, "user:1", "user_by_email:a@x")
	e.exec("ALTER TABLE users DROP COLUMN name")
	e.exec("ALTER TABLE users ADD COLUMN extra int")
	cacheAll(t, cs, "control", "user:1", "user_by_email:a@x")
	e.exec("UPDATE users SET extra = 1 WHERE id = 1")
	waitMissing(t, cs, "user:1", "user_by_email:a@x")
	if !holds(c, "control") {
		t.Fatal("the replica cleared")
	}
}

// renderForTest renders templates against named values (unit tests of
// the template machinery without a stream).
func renderForTest(ts []template, vals map[string]string) string {
	var out []string
	for _, t := range ts {
		var sb strings.Builder
		for i, p := range t.parts {
			if t.cols[i] == "" {
				sb.WriteString(p)
			} else {
				sb.WriteString(vals[t.cols[i]])
			}
		}
		out = append(out, sb.String())
	}
	return strings.Join(out, " ")
}

var _ = fmt.Sprint
var _ atomic.Int64

// TestStreamingLargeTransactions: with Streaming (protocol 2), a
// transaction larger than logical_decoding_work_mem arrives in blocks
// before its commit; a committed one invalidates its keys, an aborted one
// nothing.
func TestStreamingLargeTransactions(t *testing.T) {
	leakCheck(t)
	e := newEnv(t, usersSetup, "INSERT INTO users SELECT g, 'e' || g, repeat('n', 100) FROM generate_series(1, 1000) g")
	c := e.replica()
	cs := []invacache.Cache[string]{c}
	cfg := e.config(usersMap)
	cfg.Streaming = true
	cfg.Postgres += "&options=-c%20logical_decoding_work_mem%3D64kB" // the smallest: stream early
	r := start(t, cfg)
	sample := []string{"user:1", "user:500", "user:1000", "user_by_email:e999"}
	cacheAll(t, cs, append(sample, "control", "user:1", "marker")...)

	ctx := context.Background()
	tx, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE users SET name = repeat('r', 100)"); err != nil {
		t.Fatal(err)
	}
	// Abort only once the walsender has decoded (so streamed) the changes;
	// an abort it sees first makes it drop them unsent.
	want := e.insertLSN()
	e.exec("CREATE TABLE flush_wal (x int)") // a commit flushes the WAL before it, which the walsender reads
	e.waitSent(want, 60*time.Second)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	e.exec("INSERT INTO users VALUES (5000, 'marker@x', 'm')") // after the aborted one in the stream
	cacheAll(t, cs, "user:5000")
	e.exec("UPDATE users SET name = 'after' WHERE id = 5000")
	waitMissing(t, cs, "user:5000")
	for _, k := range append(sample, "control") {
		if !holds(c, k) {
			t.Fatalf("%s invalidated by an aborted streamed transaction", k)
		}
	}

	e.exec("UPDATE users SET name = repeat('c', 100)")
	waitMissing(t, cs, sample...)
	if !holds(c, "control") || len(r.Stats().Clears) != 0 {
		t.Fatalf("cleared (Clears %v)", r.Stats().Clears)
	}
	eventually(t, 10*time.Second, "the server streamed transactions", func() bool {
		var n int64
		err := e.db.QueryRow(ctx, "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1", e.slot).Scan(&n)
		return err == nil && n >= 2
	})
}
