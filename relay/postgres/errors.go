package postgres

import "errors"

// Errors returned (wrapped, with the detail) by New and Run. Match them with
// errors.Is.
var (
	// ErrInvalidConfig: a Config field or a mapping is wrong (a template
	// syntax error, a missing slot or publication name). Fix the settings.
	ErrInvalidConfig = errors.New("postgres: invalid config")
	// ErrSchema: the database does not fit the mappings: a table or column
	// is missing, a template column is not in the table's replica identity,
	// a table is not in the publication, or the publication or the slot is
	// of the wrong kind. The message names the table and column and the SQL
	// that fixes it.
	ErrSchema = errors.New("postgres: database does not fit the mappings")
	// ErrServerSettings: the server cannot stream changes (wal_level is not
	// logical) or the user may not (no REPLICATION attribute).
	ErrServerSettings = errors.New("postgres: server settings or privileges prevent logical replication")
	// ErrConnect: PostgreSQL or Redis could not be reached at start.
	ErrConnect = errors.New("postgres: cannot connect")
	// ErrClosed is returned by Run when called a second time.
	ErrClosed = errors.New("postgres: relay already ran")
)
