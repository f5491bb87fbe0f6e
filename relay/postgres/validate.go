package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// checkServer verifies what streaming needs from the server and the user:
// PostgreSQL 13 or later (pg_replication_slots.wal_status), wal_level=logical
// and the REPLICATION attribute (or superuser).
func checkServer(ctx context.Context, conn *pgx.Conn, streaming bool) error {
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("postgres: reading server_version_num: %w", err)
	}
	if version < 130000 {
		return fmt.Errorf("%w: PostgreSQL %d.%d: the relay needs PostgreSQL 13 or later", ErrServerSettings, version/10000, version%10000)
	}
	if streaming && version < 140000 {
		return fmt.Errorf("%w: Streaming: PostgreSQL %d.%d streams with protocol 2 from version 14 on; turn Streaming off", ErrServerSettings, version/10000, version%10000)
	}
	var level string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return fmt.Errorf("postgres: reading wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("%w: wal_level is %q, not \"logical\": run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL",
			ErrServerSettings, level)
	}
	var user string
	var repl bool
	err := conn.QueryRow(ctx, "SELECT current_user, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&user, &repl)
	if err != nil {
		return fmt.Errorf("postgres: reading the user's privileges: %w", err)
	}
	if !repl {
		return fmt.Errorf("%w: user %q has no REPLICATION attribute: run ALTER ROLE %s WITH REPLICATION;",
			ErrServerSettings, user, quoteIdent(user))
	}
	return nil
}

// checkTables verifies every mapping against the catalog: the table and
// its template columns exist, each template column is in the replica
// identity (so a DELETE's old row carries it), and the publication exists,
// publishes every kind of change and holds the table. Errors name the
// table, the column and the SQL that fixes it.
func checkTables(ctx context.Context, conn *pgx.Conn, publication string, ms []Mapping) error {
	var ins, upd, del, trunc bool
	err := conn.QueryRow(ctx, "SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1",
		publication).Scan(&ins, &upd, &del, &trunc)
	if errors.Is(err, pgx.ErrNoRows) {
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = quoteQualified(m)
		}
		return fmt.Errorf("%w: publication %q does not exist: run CREATE PUBLICATION %s FOR TABLE %s;",
			ErrSchema, publication, quoteIdent(publication), strings.Join(names, ", "))
	}
	if err != nil {
		return fmt.Errorf("postgres: reading publication %q: %w", publication, err)
	}
	if !ins || !upd || !del || !trunc {
		return fmt.Errorf("%w: publication %q does not publish every change (insert %v, update %v, delete %v, truncate %v): run ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate');",
			ErrSchema, publication, ins, upd, del, trunc, quoteIdent(publication))
	}
	for _, m := range ms {
		if err := checkTable(ctx, conn, publication, m); err != nil {
			return err
		}
	}
	return nil
}

func checkTable(ctx context.Context, conn *pgx.Conn, publication string, m Mapping) error {
	qt := quoteQualified(m)
	var oid uint32
	var ident string
	err := conn.QueryRow(ctx, `SELECT c.oid, c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, m.schema(), m.Table).Scan(&oid, &ident)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: table %s does not exist (mapping %q)", ErrSchema, m.qualified(), m.String())
	}
	if err != nil {
		return fmt.Errorf("postgres: reading table %s: %w", m.qualified(), err)
	}
	// Columns, and whether each is in the replica identity.
	rows, err := conn.Query(ctx, `SELECT a.attname,
		CASE $2::text
		  WHEN 'f' THEN true
		  WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indisprimary AND a.attnum = ANY(i.indkey))
		  WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indisreplident AND a.attnum = ANY(i.indkey))
		  ELSE false END
		FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, oid, ident)
	if err != nil {
		return fmt.Errorf("postgres: reading columns of %s: %w", m.qualified(), err)
	}
	inIdentity := map[string]bool{}
	for rows.Next() {
		var name string
		var covered bool
		if err := rows.Scan(&name, &covered); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: reading columns of %s: %w", m.qualified(), err)
		}
		inIdentity[name] = covered
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: reading columns of %s: %w", m.qualified(), err)
	}
	ts, err := compileMapping(m)
	if err != nil {
		return err
	}
	for _, t := range ts {
		for _, col := range t.columns() {
			covered, ok := inIdentity[col]
			if !ok {
				return fmt.Errorf("%w: table %s has no column %q (template %q)", ErrSchema, m.qualified(), col, t.src)
			}
			if !covered {
				return fmt.Errorf("%w: column %q of table %s is not in its replica identity, so a DELETE or an UPDATE would not carry its old value (template %q): run ALTER TABLE %s REPLICA IDENTITY FULL;",
					ErrSchema, col, m.qualified(), t.src, qt)
			}
		}
	}
	var published bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)",
		publication, m.schema(), m.Table).Scan(&published)
	if err != nil {
		return fmt.Errorf("postgres: reading publication %q: %w", publication, err)
	}
	if !published {
		return fmt.Errorf("%w: table %s is not in publication %q: run ALTER PUBLICATION %s ADD TABLE %s;",
			ErrSchema, m.qualified(), publication, quoteIdent(publication), qt)
	}
	return nil
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func quoteQualified(m Mapping) string { return pgx.Identifier{m.schema(), m.Table}.Sanitize() }
