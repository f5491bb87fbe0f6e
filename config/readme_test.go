package config_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/config"
)

// TestREADMEConfigFiles: the README's complete example files are fullJSON
// and fullYAML (which TestParseGood parses), byte for byte, and they are
// complete: every key the configuration structs define appears in them, the
// map form of the driver settings aside. A new field fails this test until
// the README shows it.
func TestREADMEConfigFiles(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const section = "### Configuration files"
	readme := string(data)
	i := strings.Index(readme, section)
	if i < 0 {
		t.Fatalf("README has no %q section", section)
	}
	readme = readme[i:]
	for _, c := range []struct{ lang, want string }{{"json", fullJSON}, {"yaml", fullYAML}} {
		block, ok := codeBlock(readme, c.lang)
		if !ok {
			t.Errorf("README %q: no ```%s block", section, c.lang)
			continue
		}
		if strings.TrimSpace(block) != strings.TrimSpace(c.want) {
			t.Errorf("README's %s file differs from full%s in parse_test.go; keep them equal:\n%s", c.lang, strings.ToUpper(c.lang), block)
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
				t.Errorf("README's complete file lacks %q", path)
				break
			}
		}
	}
}

// codeBlock returns the body of the first ```lang block in s.
func codeBlock(s, lang string) (string, bool) {
	open := "```" + lang + "\n"
	i := strings.Index(s, open)
	if i < 0 {
		return "", false
	}
	s = s[i+len(open):]
	j := strings.Index(s, "```")
	if j < 0 {
		return "", false
	}
	return s[:j], true
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
