package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEQuickStartBuilds: the root README's Quick start is a complete
// program; it must build as written against the modules of this tree (it
// dials Redis at localhost:6379, so it is built, not run).
func TestREADMEQuickStartBuilds(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i := strings.Index(readme, "## Quick start")
	if i < 0 {
		t.Fatal(`README has no "## Quick start" section`)
	}
	const open = "```go\n"
	j := strings.Index(readme[i:], open)
	if j < 0 {
		t.Fatal("README's Quick start has no go block")
	}
	src := readme[i+j+len(open):]
	src = src[:strings.Index(src, "```")]
	if !strings.HasPrefix(src, "package main") {
		t.Fatalf("README's Quick start block is not a program:\n%s", src)
	}

	// A directory inside this module (so its go.mod and replaces apply);
	// the leading underscore keeps it out of ./... patterns.
	dir, err := os.MkdirTemp(".", "_readme_quickstart")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./"+filepath.Base(dir))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README's Quick start does not build: %v\n%s\n%s", err, out, src)
	}
}
