package postgres

import (
	"fmt"
	"strings"
)

// Mapping is one table and the cache keys its rows are cached under.
type Mapping struct {
	// Schema of the table. Default "public".
	Schema string
	// Table name, as PostgreSQL stores it (unquoted names are lower case).
	Table string
	// Keys are key templates: literal text with {column} placeholders,
	// e.g. "user:{id}". A placeholder is replaced by the column's value in
	// PostgreSQL's text output ("42", "a@b.c", a uuid's canonical form).
	Keys []string
}

// ParseMapping parses the command-line form of a Mapping:
//
//	[schema.]table=template[,template...]
//
// e.g. "public.users=user:{id},user_by_email:{email}". Templates are
// separated by commas, so a template holds no comma; "{{" and "}}" are a
// literal brace.
func ParseMapping(s string) (Mapping, error) {
	name, keys, ok := strings.Cut(s, "=")
	if !ok {
		return Mapping{}, fmt.Errorf("%w: mapping %q: want [schema.]table=template[,template...]", ErrInvalidConfig, s)
	}
	m := Mapping{Table: strings.TrimSpace(name)}
	if sch, tbl, ok := strings.Cut(m.Table, "."); ok {
		m.Schema, m.Table = sch, tbl
	}
	for _, k := range strings.Split(keys, ",") {
		m.Keys = append(m.Keys, strings.TrimSpace(k))
	}
	if _, err := compileMapping(m); err != nil {
		return Mapping{}, err
	}
	return m, nil
}

// String returns the mapping in the form ParseMapping reads.
func (m Mapping) String() string {
	return m.qualified() + "=" + strings.Join(m.Keys, ",")
}

func (m Mapping) schema() string {
	if m.Schema == "" {
		return "public"
	}
	return m.Schema
}

func (m Mapping) qualified() string { return m.schema() + "." + m.Table }

// template is a compiled key template: parts[i] is literal text when
// cols[i] is "", else the value of column cols[i].
type template struct {
	src   string
	parts []string
	cols  []string
}

func compileMapping(m Mapping) ([]template, error) {
	if m.Table == "" || strings.ContainsAny(m.Table, ".\"") || strings.ContainsAny(m.Schema, ".\"") ||
		(m.Schema == "" && strings.Contains(m.qualified(), "..")) {
		return nil, fmt.Errorf("%w: mapping %q: bad table name (want [schema.]table)", ErrInvalidConfig, m.String())
	}
	if len(m.Keys) == 0 {
		return nil, fmt.Errorf("%w: mapping for %s: no key templates", ErrInvalidConfig, m.qualified())
	}
	ts := make([]template, 0, len(m.Keys))
	for _, k := range m.Keys {
		t, err := compileTemplate(k)
		if err != nil {
			return nil, fmt.Errorf("%w: mapping for %s: %v", ErrInvalidConfig, m.qualified(), err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func compileTemplate(s string) (template, error) {
	t := template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts, t.cols = append(t.parts, lit.String()), append(t.cols, "")
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return t, fmt.Errorf("template %q: '{' at offset %d is not closed", s, i)
			}
			col := s[i+1 : i+1+end]
			if col == "" || strings.ContainsAny(col, "{") {
				return t, fmt.Errorf("template %q: empty or nested placeholder at offset %d", s, i)
			}
			flush()
			t.parts, t.cols = append(t.parts, ""), append(t.cols, col)
			i += end + 1
		case c == '}':
			return t, fmt.Errorf("template %q: '}' at offset %d without '{' (write '}}' for a literal brace)", s, i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if len(t.parts) == 0 {
		return t, fmt.Errorf("empty template")
	}
	hasCol := false
	for _, c := range t.cols {
		hasCol = hasCol || c != ""
	}
	if !hasCol {
		return t, fmt.Errorf("template %q has no {column}: every row would map to the same key", s)
	}
	return t, nil
}

// columns returns the distinct columns t refers to.
func (t template) columns() []string {
	var out []string
	for _, c := range t.cols {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
