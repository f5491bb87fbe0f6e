package redis

import (
	"os"
	"testing"
)

// TestWriteOperatorLibrary writes invacache.lua when INVACACHE_WRITE_LUA=1;
// TestOperatorLibraryFile checks that the file is up to date.
func TestWriteOperatorLibrary(t *testing.T) {
	if os.Getenv("INVACACHE_WRITE_LUA") != "1" {
		t.Skip("set INVACACHE_WRITE_LUA=1 to regenerate invacache.lua")
	}
	if err := os.WriteFile("invacache.lua", []byte(operatorLibrary()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOperatorLibraryFile(t *testing.T) {
	b, err := os.ReadFile("invacache.lua")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != operatorLibrary() {
		t.Error("invacache.lua is out of date: run INVACACHE_WRITE_LUA=1 go test -run TestWriteOperatorLibrary")
	}
}
