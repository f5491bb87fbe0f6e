package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"unicode"
)

// writeJSONLine writes v as one JSON object on its own line (the --json
// output of monitor, bench and chaos). Encoding errors cannot happen for
// the CLI's own structs; a write error shows in the exit status of the
// process that reads the output.
func writeJSONLine(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// snakeJSON returns v's JSON form with every object key in snake_case
// ("HeapInUse" → "heap_in_use") and "event" first set to event: the --json
// form of a report struct that has no JSON tags of its own. It returns
// {"event": event, "error": ...} if v cannot be encoded.
func snakeJSON(event string, v any) map[string]any {
	b, err := json.Marshal(v)
	var m map[string]any
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // uint64 seeds and counters stay exact
		err = dec.Decode(&m)
	}
	if err != nil {
		return map[string]any{"event": event, "error": err.Error()}
	}
	out := snakeKeys(m).(map[string]any)
	out["event"] = event
	return out
}

func snakeKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[snake(k)] = snakeKeys(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = snakeKeys(e)
		}
		return x
	default:
		return v
	}
}

// snake turns a Go field name into snake_case, keeping acronyms together
// ("MaxStalenessObserved" → "max_staleness_observed", "HeapInUse" →
// "heap_in_use", "P99" → "p99", "AOF" → "aof"). Keys already lower case
// (map keys such as fault kinds) are unchanged.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		upper := unicode.IsUpper(c)
		if upper && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			// A lower-case letter after an upper-case run starts a new
			// word, except a plural "s" ending it ("IDs").
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1]) &&
				!(r[i+1] == 's' && (i+2 == len(r) || unicode.IsUpper(r[i+2])))
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
