package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// libraryPath is the module path of the InvaCache-Go library.
const libraryPath = "github.com/halilbulentorhon/invacache-go"

// printVersion prints the versions the binary was built from: this
// module's (a release tag when installed with go install ...@vX.Y.Z,
// "(devel)" when built from a checkout), the library's, Go's and, for a
// checkout, the VCS revision.
func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(w, "invacache (unknown version: built without module support)")
		return
	}
	fmt.Fprintln(w, versionLine(bi))
}

func versionLine(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invacache %s", v)
	for _, d := range bi.Deps {
		if d.Path != libraryPath {
			continue
		}
		lib := d.Version
		if d.Replace != nil {
			lib += " => " + d.Replace.Path
			if d.Replace.Version != "" {
				lib += " " + d.Replace.Version
			}
		}
		fmt.Fprintf(&b, ", library %s", lib)
	}
	fmt.Fprintf(&b, ", %s", bi.GoVersion)
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		fmt.Fprintf(&b, ", revision %.12s", rev)
		if modified == "true" {
			b.WriteString(" (modified)")
		}
	}
	return b.String()
}
