package main

import (
	"encoding/json"
	"io"
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
