package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
)

// binding is a mapped table as the stream last described it (its
// RelationMessage): the templates with each placeholder's column position.
type binding struct {
	table     string
	templates []template
	idx       [][]int // idx[t][p]: column position of templates[t].cols[p], -1 for literal parts
	// problem is why keys cannot be computed after a schema change (a
	// template column dropped, or no longer in the replica identity): a
	// change to the table then clears the caches instead.
	problem string
}

// bind resolves the templates of a mapped table against the relation the
// stream sent. Replica identity 'f' (FULL) covers every column; otherwise
// a column is covered when flagged as part of the key.
func bind(table string, ts []template, rel *pglogrepl.RelationMessage) *binding {
	b := &binding{table: table, templates: ts, idx: make([][]int, len(ts))}
	pos := make(map[string]int, len(rel.Columns))
	for i, c := range rel.Columns {
		pos[c.Name] = i
	}
	for ti, t := range ts {
		b.idx[ti] = make([]int, len(t.cols))
		for pi, col := range t.cols {
			b.idx[ti][pi] = -1
			if col == "" {
				continue
			}
			i, ok := pos[col]
			switch {
			case !ok:
				b.problem = fmt.Sprintf("column %q of %s no longer exists", col, table)
			case rel.ReplicaIdentity != 'f' && rel.Columns[i].Flags&1 == 0:
				b.problem = fmt.Sprintf("column %q of %s is no longer in the replica identity", col, table)
			}
			b.idx[ti][pi] = i
		}
	}
	return b
}

// keys appends to dst the keys of row. A column that is an unchanged
// TOASTed value ('u') is taken from fallback (the old row) when it has it;
// ok is false when a value is still unknown (the caller then clears). A key
// with a NULL column is skipped: no row is cached under it.
func (b *binding) keys(dst []string, row, fallback *pglogrepl.TupleData) (_ []string, ok bool) {
	if row == nil {
		return dst, false
	}
	var sb strings.Builder
next:
	for ti, t := range b.templates {
		sb.Reset()
		for pi, part := range t.parts {
			i := b.idx[ti][pi]
			if i < 0 {
				sb.WriteString(part)
				continue
			}
			c := column(row, i)
			if c != nil && c.DataType == pglogrepl.TupleDataTypeToast {
				c = column(fallback, i)
			}
			switch {
			case c == nil || c.DataType == pglogrepl.TupleDataTypeToast:
				return dst, false
			case c.DataType == pglogrepl.TupleDataTypeNull:
				continue next
			}
			sb.Write(c.Data)
		}
		dst = append(dst, sb.String())
	}
	return dst, true
}

func column(row *pglogrepl.TupleData, i int) *pglogrepl.TupleDataColumn {
	if row == nil || i >= len(row.Columns) {
		return nil
	}
	return row.Columns[i]
}
