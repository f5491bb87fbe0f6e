package config_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/config"
)

// TestDocConfigFiles: the package doc's complete example files are fullJSON
// and fullYAML (which TestParseGood parses), line for line, and they are
// complete: every key the configuration structs define appears in them, the
// map form of the driver settings aside. A new field fails this test until
// the package doc shows it.
func TestDocConfigFiles(t *testing.T) {
	data, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(l, "//\t"); ok {
			lines = append(lines, s)
		}
	}
	godoc := strings.Join(lines, "\n")
	for name, want := range map[string]string{"fullJSON": fullJSON, "fullYAML": fullYAML} {
		if !strings.Contains(godoc, strings.TrimSpace(want)) {
			t.Errorf("the package doc's example file differs from %s in parse_test.go; keep them equal", name)
		}
	}

	var doc map[string]any
	if err := json.Unmarshal([]byte(fullJSON), &doc); err != nil {
		t.Fatal(err)
	}
	for _, path := range keyPaths(reflect.TypeOf(config.InvaCacheConfig{}), "") {
		if path == "invalidation.driverConfig" {
			continue // the seed's map form of the settings in "redis"
		}
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			m, _ := v.(map[string]any)
			var ok bool
			if v, ok = m[k]; !ok {
				t.Errorf("the package doc's complete file lacks %q", path)
				break
			}
		}
	}
}

// keyPaths lists the dotted json keys of t's fields, descending into
// structs (through pointers); fields tagged "-" are not file keys.
func keyPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var paths []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		path := prefix + name
		paths = append(paths, path)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			paths = append(paths, keyPaths(ft, path+".")...)
		}
	}
	return paths
}
