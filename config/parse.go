package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/halilbulentorhon/invacache-go/internal/suggest"
)

// Parse reads an InvaCacheConfig from a JSON or YAML document (JSON when
// the first non-blank character is '{', YAML otherwise; an empty document
// is the zero config). The keys are the json/yaml tags of the structs
// ("backend", "inMemory", "maxStaleness", ...), matched exactly, and the
// decoding is strict at every depth:
//
//   - an unknown key is an error naming its path, with the closest known
//     key: `invalidation.redis.adress: unknown key (did you mean "address"?)`;
//   - a duration is a string for time.ParseDuration ("5s", "1m30s"); a bare
//     number is an error, since its unit would be a guess;
//   - a value of the wrong type, or a key given twice, is an error naming
//     the key.
//
// A document may hold at most 100,000 values (after YAML aliases are
// expanded) nested at most 100 levels deep, in either format.
//
// The values under invalidation.driverConfig are handed to the driver as
// they are (strings, bools, int or float64 numbers, lists, maps), which
// decodes them as strictly (durations as strings such as "5s").
//
// Parse then checks the values the way NewCache does (see Resolve), and has
// the driver (which must be imported, e.g. blank-imported, as for NewCache)
// check its settings, typed or under driverConfig, without connecting: a
// configuration Parse accepts is one NewCache accepts. Every error wraps
// ErrInvalidConfig.
func Parse(data []byte) (InvaCacheConfig, error) {
	var cfg InvaCacheConfig
	root, err := parseTree(data)
	if err != nil {
		return InvaCacheConfig{}, err
	}
	if root.kind != kindNull {
		if err := decodeValue(root, reflect.ValueOf(&cfg).Elem(), ""); err != nil {
			return InvaCacheConfig{}, err
		}
	}
	r, err := Resolve(cfg)
	if err != nil {
		return InvaCacheConfig{}, err
	}
	section := "invalidation.driverConfig"
	if cfg.Invalidation != nil && cfg.Invalidation.Redis != nil {
		section = "invalidation.redis"
	}
	if err := checkDriver(r.Invalidation, section); err != nil {
		return InvaCacheConfig{}, err
	}
	return cfg, nil
}

// maxNodes bounds the values a document may hold (after YAML aliases are
// expanded), so a small file cannot expand into a huge tree.
const maxNodes = 100_000

// maxDepth bounds how deeply values nest, the same for JSON and YAML (the
// root map is level 1). A configuration needs 4 levels; without a bound a
// 60 KB JSON document of 30,000 '[' cost 2 GB (each level's path is a
// longer string) and 3.5 s.
const maxDepth = 100

// tooDeep is the error for a value nested past maxDepth.
func tooDeep(path string) error {
	return invalid(path, "nested more than %d levels deep", maxDepth)
}

type kind uint8

const (
	kindNull kind = iota
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
)

func (k kind) String() string {
	return [...]string{"null", "a string", "a number", "a bool", "a map", "a list"}[k]
}

// node is a parsed document value, the same for JSON and YAML.
type node struct {
	kind  kind
	text  string   // kindString: the string; kindNumber: the number in decimal
	b     bool     // kindBool
	keys  []string // kindObject, in document order
	vals  []*node  // kindObject: vals[i] belongs to keys[i]; kindArray: the items
	float bool     // kindNumber: not an integer
}

func invalid(path, format string, args ...any) error {
	if path == "" {
		path = "(document)"
	}
	return fmt.Errorf("config: %s: %s: %w", path, fmt.Sprintf(format, args...), ErrInvalidConfig)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func parseTree(data []byte) (*node, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return parseJSON(trimmed)
	}
	return parseYAML(data)
}

// parseJSON reads one JSON value token by token, so that duplicate keys are
// seen (encoding/json keeps the last one silently).
func parseJSON(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	budget := maxNodes
	n, err := jsonValue(dec, "", &budget, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("", "JSON: data after the configuration object")
	}
	return n, nil
}

func jsonSyntax(path string, err error) error {
	return invalid(path, "JSON: %v", err)
}

func jsonValue(dec *json.Decoder, path string, budget *int, depth int) (*node, error) {
	if *budget--; *budget < 0 {
		return nil, invalid(path, "document holds more than %d values", maxNodes)
	}
	if depth > maxDepth {
		return nil, tooDeep(path)
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, jsonSyntax(path, err)
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case string:
		return &node{kind: kindString, text: t}, nil
	case bool:
		return &node{kind: kindBool, b: t}, nil
	case json.Number:
		return numberNode(path, string(t))
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: kindObject}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, jsonSyntax(path, err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, jsonSyntax(path, fmt.Errorf("object key %v is not a string", kt))
				}
				if seen[k] {
					return nil, invalid(join(path, k), "key given twice")
				}
				seen[k] = true
				v, err := jsonValue(dec, join(path, k), budget, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonSyntax(path, err)
			}
			return n, nil
		case '[':
			n := &node{kind: kindArray}
			for i := 0; dec.More(); i++ {
				v, err := jsonValue(dec, fmt.Sprintf("%s[%d]", path, i), budget, depth+1)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonSyntax(path, err)
			}
			return n, nil
		}
	}
	return nil, jsonSyntax(path, fmt.Errorf("unexpected %v", tok))
}

// numberNode keeps an integer as its decimal text and marks anything else
// (fraction, exponent) as a float.
func numberNode(path, text string) (*node, error) {
	if _, err := strconv.ParseInt(text, 10, 64); err == nil {
		return &node{kind: kindNumber, text: text}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, invalid(path, "number %s is out of range", text)
	}
	return &node{kind: kindNumber, text: strconv.FormatFloat(f, 'g', -1, 64), float: true}, nil
}

func parseYAML(data []byte) (*node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return &node{kind: kindNull}, nil // an empty document
		}
		return nil, invalid("", "YAML: %v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, invalid("", "YAML: more than one document")
	}
	budget := maxNodes
	return yamlValue(&doc, "", &budget, 0)
}

func yamlValue(y *yaml.Node, path string, budget *int, depth int) (*node, error) {
	if *budget--; *budget < 0 {
		return nil, invalid(path, "document holds more than %d values (after expanding aliases)", maxNodes)
	}
	if depth > maxDepth {
		return nil, tooDeep(path)
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: kindNull}, nil
		}
		return yamlValue(y.Content[0], path, budget, depth+1)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, invalid(path, "YAML: unresolved alias")
		}
		return yamlValue(y.Alias, path, budget, depth+1)
	case yaml.MappingNode:
		n := &node{kind: kindObject}
		seen := map[string]bool{}
		for i := 0; i+1 < len(y.Content); i += 2 {
			kn := y.Content[i]
			if kn.Kind != yaml.ScalarNode || kn.ShortTag() == "!!merge" {
				return nil, invalid(path, "YAML line %d: keys must be plain strings", kn.Line)
			}
			k := kn.Value
			if seen[k] {
				return nil, invalid(join(path, k), "key given twice")
			}
			seen[k] = true
			v, err := yamlValue(y.Content[i+1], join(path, k), budget, depth+1)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, v)
		}
		return n, nil
	case yaml.SequenceNode:
		n := &node{kind: kindArray}
		for i, c := range y.Content {
			v, err := yamlValue(c, fmt.Sprintf("%s[%d]", path, i), budget, depth+1)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		return n, nil
	case yaml.ScalarNode:
		switch y.ShortTag() {
		case "!!null":
			return &node{kind: kindNull}, nil
		case "!!bool":
			var b bool
			if err := y.Decode(&b); err != nil {
				return nil, invalid(path, "YAML line %d: %v", y.Line, err)
			}
			return &node{kind: kindBool, b: b}, nil
		case "!!int":
			var i int64
			if err := y.Decode(&i); err != nil {
				return nil, invalid(path, "YAML line %d: integer %s is out of range", y.Line, y.Value)
			}
			return &node{kind: kindNumber, text: strconv.FormatInt(i, 10)}, nil
		case "!!float":
			var f float64
			if err := y.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, invalid(path, "YAML line %d: %s is not a finite number", y.Line, y.Value)
			}
			return &node{kind: kindNumber, text: strconv.FormatFloat(f, 'g', -1, 64), float: true}, nil
		case "!!str":
			return &node{kind: kindString, text: y.Value}, nil
		default:
			return nil, invalid(path, "YAML line %d: values of type %s are not accepted", y.Line, y.ShortTag())
		}
	}
	return nil, invalid(path, "YAML line %d: unexpected node", y.Line)
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeValue stores n in v (settable), following the json tags of
// structs.
func decodeValue(n *node, v reflect.Value, path string) error {
	if v.Type() == durationType {
		if n.kind != kindString {
			return invalid(path, "want a duration string such as \"5s\" or \"1m\", got %s%s", n.kind, shown(n))
		}
		d, err := time.ParseDuration(n.text)
		if err != nil {
			return invalid(path, "%q is not a duration (want e.g. \"5s\", \"1m\")", n.text)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.kind == kindNull {
			v.SetZero()
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := decodeValue(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if n.kind == kindNull {
			return nil
		}
		if n.kind != kindObject {
			return invalid(path, "want a map, got %s%s", n.kind, shown(n))
		}
		fields := structFields(v.Type())
		for i, k := range n.keys {
			idx, ok := fields[k]
			if !ok {
				return invalid(join(path, k), "unknown key%s (known: %s)", suggestKey(k, fields), strings.Join(sortedNames(fields), ", "))
			}
			if err := decodeValue(n.vals[i], v.Field(idx), join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if n.kind != kindString {
			return invalid(path, "want a string, got %s%s", n.kind, shown(n))
		}
		v.SetString(n.text)
		return nil
	case reflect.Bool:
		if n.kind != kindBool {
			return invalid(path, "want true or false, got %s%s", n.kind, shown(n))
		}
		v.SetBool(n.b)
		return nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.kind != kindNumber || n.float {
			return invalid(path, "want an integer, got %s%s", n.kind, shown(n))
		}
		i, err := strconv.ParseInt(n.text, 10, v.Type().Bits())
		if err != nil {
			return invalid(path, "integer %s is out of range", n.text)
		}
		v.SetInt(i)
		return nil
	case reflect.Slice:
		if n.kind == kindNull {
			v.SetZero()
			return nil
		}
		if n.kind != kindArray {
			return invalid(path, "want a list, got %s%s", n.kind, shown(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.vals), len(n.vals))
		for i, e := range n.vals {
			if err := decodeValue(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.Interface {
			break
		}
		if n.kind == kindNull {
			v.SetZero()
			return nil
		}
		if n.kind != kindObject {
			return invalid(path, "want a map, got %s%s", n.kind, shown(n))
		}
		v.Set(reflect.ValueOf(plain(n)))
		return nil
	}
	return invalid(path, "cannot be set from a file")
}

// plain turns n into the values encoding/json produces, except that an
// integer is an int (a float64 only with a fraction or exponent).
func plain(n *node) any {
	switch n.kind {
	case kindString:
		return n.text
	case kindBool:
		return n.b
	case kindNumber:
		if !n.float {
			if i, err := strconv.ParseInt(n.text, 10, 0); err == nil {
				return int(i)
			}
		}
		f, _ := strconv.ParseFloat(n.text, 64)
		return f
	case kindObject:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k] = plain(n.vals[i])
		}
		return m
	case kindArray:
		s := make([]any, len(n.vals))
		for i, e := range n.vals {
			s[i] = plain(e)
		}
		return s
	}
	return nil
}

// shown quotes a scalar for an error message.
func shown(n *node) string {
	switch n.kind {
	case kindString:
		s := n.text
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf(" %q", s)
	case kindNumber:
		return " " + n.text
	case kindBool:
		return " " + strconv.FormatBool(n.b)
	}
	return ""
}

// structFields maps the json tag names of t's fields to their indexes;
// fields tagged "-" are not in it.
func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	return m
}

func sortedNames(m map[string]int) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// suggest returns ` (did you mean "x"?)` for the known key closest to key.
func suggestKey(key string, known map[string]int) string {
	return suggest.DidYouMean(key, sortedNames(known))
}
