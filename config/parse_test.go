package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/invalidation"
	_ "github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory" // registers "memory"
)

// fullJSON and fullYAML are the README's complete example files: every key
// a file can set, the two forms of the Redis settings aside.
const fullJSON = `{
  "backendName": "in-memory",
  "backend": {
    "inMemory": {"shardCount": 16, "capacity": 10000, "sweeperInterval": "1s", "ttl": "10m"}
  },
  "invalidation": {
    "type": "redis",
    "redis": {
      "address": "127.0.0.1:6379",
      "password": "",
      "db": 0,
      "channel": "myapp:invalidation",
      "poolSize": 10,
      "maxRetries": 3,
      "dialTimeout": "5s",
      "username": "",
      "tls": {"enabled": false, "caFile": "", "certFile": "", "keyFile": "", "serverName": "", "insecureSkipVerify": false},
      "addresses": [],
      "masterName": "",
      "shardedPubSub": false,
      "replayWindow": "1m",
      "disableReplay": false,
      "maxLogBytes": 134217728
    },
    "maxStaleness": "3s",
    "disableMaxStaleness": false,
    "outageStaleness": "0s",
    "gapStrategy": "clear",
    "retryBackoffMin": "10ms",
    "retryBackoffMax": "1s",
    "maxMessageBytes": 65536,
    "flushTimeout": "2s",
    "outboxMaxKeys": 100000,
    "outboxMaxBytes": 16777216
  }
}`

const fullYAML = `
backendName: in-memory
backend:
  inMemory:
    shardCount: 16
    capacity: 10000
    sweeperInterval: 1s
    ttl: 10m
invalidation:
  type: redis
  redis:
    address: 127.0.0.1:6379
    password: ""
    db: 0
    channel: myapp:invalidation
    poolSize: 10
    maxRetries: 3
    dialTimeout: 5s
    username: ""
    tls:
      enabled: false
      caFile: ""
      certFile: ""
      keyFile: ""
      serverName: ""
      insecureSkipVerify: false
    addresses: []
    masterName: ""
    shardedPubSub: false
    replayWindow: 1m
    disableReplay: false
    maxLogBytes: 134217728
  maxStaleness: 3s
  disableMaxStaleness: false
  outageStaleness: 0s
  gapStrategy: clear
  retryBackoffMin: 10ms
  retryBackoffMax: 1s
  maxMessageBytes: 65536
  flushTimeout: 2s
  outboxMaxKeys: 100000
  outboxMaxBytes: 16777216
`

func wantFull() config.InvaCacheConfig {
	return config.InvaCacheConfig{
		BackendName: "in-memory",
		Backend: &config.BackendConfig{InMemory: &config.InMemoryConfig{
			ShardCount: 16, Capacity: 10000, SweeperInterval: time.Second, Ttl: "10m",
		}},
		Invalidation: &config.InvalidationConfig{
			Type: "redis",
			Redis: &config.RedisInvalidationConfig{
				Address: "127.0.0.1:6379", Channel: "myapp:invalidation", PoolSize: 10, MaxRetries: 3,
				DialTimeout: 5 * time.Second, TLS: &config.TLSConfig{}, Addresses: []string{},
				ReplayWindow: time.Minute,
				MaxLogBytes:  128 << 20,
			},
			MaxStaleness:    3 * time.Second,
			GapStrategy:     "clear",
			RetryBackoffMin: 10 * time.Millisecond,
			RetryBackoffMax: time.Second,
			MaxMessageBytes: 65536,
			FlushTimeout:    2 * time.Second,
			OutboxMaxKeys:   100000,
			OutboxMaxBytes:  16 << 20,
		},
	}
}

// The Redis driver lives in its own module; a stand-in registers its name,
// since Parse checks that Type names a registered driver and builds it.
// "anykeys" takes any driverConfig, for the tests of how values decode.
// Both build a memory driver.
func init() {
	standIn := func(spec invalidation.Spec) (invalidation.Driver, error) {
		return invalidation.Open(invalidation.Spec{Type: "memory", Logger: spec.Logger})
	}
	invalidation.MustRegister("redis", standIn)
	invalidation.MustRegister("anykeys", standIn)
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want config.InvaCacheConfig
	}{
		{"full json", fullJSON, wantFull()},
		{"full yaml", fullYAML, wantFull()},
		{"empty", "", config.InvaCacheConfig{}},
		{"empty json object", "{}", config.InvaCacheConfig{}},
		{"yaml comment only", "# nothing\n", config.InvaCacheConfig{}},
		{"json nulls", `{"backend": null, "invalidation": null}`, config.InvaCacheConfig{}},
		{"yaml driverConfig map", "invalidation:\n  type: anykeys\n  driverConfig:\n    Address: h:1\n    DB: 2\n    DialTimeout: 5s\n    Ratio: 1.5\n    On: true\n    List: [a, 1]\n",
			config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "anykeys", DriverConfig: map[string]any{
				"Address": "h:1", "DB": 2, "DialTimeout": "5s", "Ratio": 1.5, "On": true, "List": []any{"a", 2 - 1},
			}}}},
		{"json driverConfig map", `{"invalidation": {"type": "anykeys", "driverConfig": {"Address": "h:1", "DB": 2, "DialTimeout": 5000000000, "Ratio": 1.5}}}`,
			config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "anykeys", DriverConfig: map[string]any{
				"Address": "h:1", "DB": 2, "DialTimeout": 5000000000, "Ratio": 1.5,
			}}}},
		{"disabled staleness", "invalidation: {type: memory, disableMaxStaleness: true}", config.InvaCacheConfig{
			Invalidation: &config.InvalidationConfig{Type: "memory", DisableMaxStaleness: true}}},
		{"yaml flow json-like", `invalidation: {"type": "memory", "maxStaleness": "1m"}`, config.InvaCacheConfig{
			Invalidation: &config.InvalidationConfig{Type: "memory", MaxStaleness: time.Minute}}},
		{"outage staleness", `{"invalidation": {"type": "memory", "outageStaleness": "30s"}}`, config.InvaCacheConfig{
			Invalidation: &config.InvalidationConfig{Type: "memory", OutageStaleness: 30 * time.Second}}},
		{"leading blank json", "\n  {\"backendName\": \"in-memory\"}", config.InvaCacheConfig{BackendName: "in-memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %#v\nwant %#v", got, tt.want)
				if got.Invalidation != nil && tt.want.Invalidation != nil {
					t.Errorf("invalidation:\n got %#v\nwant %#v", *got.Invalidation, *tt.want.Invalidation)
				}
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error: the key's path first
	}{
		{"json typo deep", `{"invalidation": {"type": "redis", "redis": {"adress": "h:1"}}}`, []string{"invalidation.redis.adress", `did you mean "address"`}},
		{"yaml typo deep", "invalidation:\n  type: redis\n  redis:\n    adress: h:1\n", []string{"invalidation.redis.adress", `did you mean "address"`}},
		{"json typo store", `{"backend": {"inMemory": {"capacty": 10}}}`, []string{"backend.inMemory.capacty", `did you mean "capacity"`}},
		{"yaml typo store", "backend:\n  inMemory:\n    capacty: 10\n", []string{"backend.inMemory.capacty", `did you mean "capacity"`}},
		{"json typo invalidation", `{"invalidation": {"type": "memory", "maxStalenes": "1s"}}`, []string{"invalidation.maxStalenes", `did you mean "maxStaleness"`}},
		{"yaml typo invalidation", "invalidation:\n  type: memory\n  maxStalenes: 1s\n", []string{"invalidation.maxStalenes", `did you mean "maxStaleness"`}},
		{"json top-level typo", `{"backendNme": "in-memory"}`, []string{"backendNme", `did you mean "backendName"`}},
		{"yaml wrong case", "BackendName: in-memory\n", []string{"BackendName", `did you mean "backendName"`}},
		{"json tls typo", `{"invalidation": {"redis": {"tls": {"enable": true}}}}`, []string{"invalidation.redis.tls.enable", `did you mean "enabled"`}},
		{"json logger not settable", `{"logger": {}}`, []string{"logger", "unknown key"}},
		{"json bare duration", `{"invalidation": {"redis": {"dialTimeout": 5}}}`, []string{"invalidation.redis.dialTimeout", "duration string"}},
		{"yaml bare duration", "invalidation:\n  type: memory\n  maxStaleness: 3\n", []string{"invalidation.maxStaleness", "duration string"}},
		{"yaml bare duration store", "backend:\n  inMemory:\n    sweeperInterval: 30\n", []string{"backend.inMemory.sweeperInterval", "duration string"}},
		{"json prose duration", `{"invalidation": {"type": "memory", "flushTimeout": "3 seconds"}}`, []string{"invalidation.flushTimeout", `"3 seconds" is not a duration`}},
		{"yaml prose duration", "invalidation:\n  type: memory\n  flushTimeout: 3 seconds\n", []string{"invalidation.flushTimeout", `"3 seconds" is not a duration`}},
		{"json string for int", `{"backend": {"inMemory": {"capacity": "10"}}}`, []string{"backend.inMemory.capacity", "want an integer"}},
		{"yaml string for int", "backend:\n  inMemory:\n    capacity: ten\n", []string{"backend.inMemory.capacity", "want an integer"}},
		{"json float for int", `{"backend": {"inMemory": {"shardCount": 1.5}}}`, []string{"backend.inMemory.shardCount", "want an integer"}},
		{"json huge int", `{"backend": {"inMemory": {"shardCount": 99999999999999999999}}}`, []string{"backend.inMemory.shardCount"}},
		{"json int for string", `{"invalidation": {"type": 7}}`, []string{"invalidation.type", "want a string"}},
		{"yaml int for string", "invalidation:\n  redis:\n    channel: 7\n", []string{"invalidation.redis.channel", "want a string"}},
		{"json string for bool", `{"invalidation": {"type": "memory", "disableMaxStaleness": "yes"}}`, []string{"invalidation.disableMaxStaleness", "want true or false"}},
		{"json list for map", `{"invalidation": []}`, []string{"invalidation", "want a map"}},
		{"yaml scalar for map", "backend: in-memory\n", []string{"backend", "want a map"}},
		{"json map for list", `{"invalidation": {"redis": {"addresses": {"a": 1}}}}`, []string{"invalidation.redis.addresses", "want a list"}},
		{"yaml int in list", "invalidation:\n  redis:\n    addresses: [h:1, 2]\n", []string{"invalidation.redis.addresses[1]", "want a string"}},
		{"json driverConfig not a map", `{"invalidation": {"type": "memory", "driverConfig": "x"}}`, []string{"invalidation.driverConfig", "want a map"}},
		{"json duplicate key", `{"backendName": "in-memory", "backendName": "x"}`, []string{"backendName", "given twice"}},
		{"yaml duplicate key", "backendName: in-memory\nbackendName: x\n", []string{"backendName"}},
		{"json syntax", `{"backend": {`, []string{"backend", "JSON"}},
		{"json trailing", `{} {}`, []string{"data after"}},
		{"yaml syntax", "backend: [\n", []string{"YAML"}},
		{"yaml two documents", "backendName: in-memory\n---\nbackendName: x\n", []string{"more than one document"}},
		{"yaml top-level list", "- a\n", []string{"want a map"}},
		{"yaml binary", "backendName: !!binary aGk=\n", []string{"backendName"}},
		{"outage bound below the strict one", `{"invalidation": {"type": "memory", "maxStaleness": "3s", "outageStaleness": "1s"}}`, []string{"Invalidation.OutageStaleness", "below MaxStaleness"}},
		{"outage bound with the bound off", "invalidation:\n  type: memory\n  disableMaxStaleness: true\n  outageStaleness: 30s\n", []string{"Invalidation.OutageStaleness", "DisableMaxStaleness"}},
		{"negative outbox bound", `{"invalidation": {"type": "memory", "outboxMaxKeys": -1}}`, []string{"Invalidation.OutboxMaxKeys", "negative"}},
		{"negative duration", `{"invalidation": {"type": "memory", "maxStaleness": "-1s"}}`, []string{"Invalidation.MaxStaleness", "negative"}},
		{"unknown type", "invalidation:\n  type: rediss\n", []string{"Invalidation.Type", `"rediss"`, `did you mean "redis"`}},
		{"unknown backend", `{"backendName": "otter"}`, []string{"BackendName"}},
		{"bad gap strategy", "invalidation: {type: memory, gapStrategy: sometimes}", []string{"Invalidation.GapStrategy"}},
		{"unparsable ttl", "backend:\n  inMemory:\n    ttl: forever\n", []string{"Backend.InMemory.Ttl"}},
		{"both redis forms", `{"invalidation": {"type": "redis", "redis": {}, "driverConfig": {"Address": "h:1"}}}`, []string{"Invalidation.Redis", "DriverConfig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse = %+v, nil; want an error naming %q", got, tt.want[0])
			}
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Errorf("Parse error %q does not wrap ErrInvalidConfig", err)
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("Parse error %q does not start with the package name", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error %q does not contain %q", err, w)
				}
			}
			if !reflect.DeepEqual(got, config.InvaCacheConfig{}) {
				t.Errorf("Parse returned %+v with its error, want the zero config", got)
			}
		})
	}
}

// TestParseAliasBomb: a YAML document whose aliases expand into billions of
// values is refused quickly instead of exhausting memory.
func TestParseAliasBomb(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		doc += n + ": &" + n + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = n
	}
	_, err := config.Parse([]byte(doc))
	if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Parse(alias bomb) error = %v, want one about the document's size", err)
	}
}

// TestParseDepth: JSON and YAML nest to the same bound, and a document
// past it is refused with an error naming the limit, before its values are
// built (30,000 levels of JSON '[' once cost 2 GB).
func TestParseDepth(t *testing.T) {
	nested := func(open, close string, n int) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	tests := []struct {
		name    string
		doc     string
		tooDeep bool
	}{
		{"json at the limit", `{"a": ` + nested("[", "]", 99) + `}`, false},
		{"yaml at the limit", "a: " + nested("[", "]", 99) + "\n", false},
		{"json past the limit", `{"a": ` + nested("[", "]", 100) + `}`, true},
		{"yaml past the limit", "a: " + nested("[", "]", 100) + "\n", true},
		{"json maps past the limit", strings.Repeat(`{"a": `, 101) + "1" + strings.Repeat("}", 101), true},
		{"json 30000 deep", `{"a": ` + nested("[", "]", 30_000) + `}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc))
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("Parse error = %v, want one wrapping ErrInvalidConfig", err)
			}
			got := strings.Contains(err.Error(), "nested more than 100 levels deep")
			if got != tt.tooDeep {
				t.Errorf("Parse error = %q; names the depth limit: %v, want %v", err, got, tt.tooDeep)
			}
		})
	}
}

// FuzzParse: any document either parses into a configuration that Resolve
// accepts or fails with an error wrapping ErrInvalidConfig; JSON and YAML
// spellings of one configuration agree. The seed corpus (run by plain go
// test) holds the good and bad files of the tables above.
func FuzzParse(f *testing.F) {
	f.Add(fullJSON)
	f.Add(fullYAML)
	f.Add(`{"invalidation": {"redis": {"dialTimeout": 5}}}`)
	f.Add("invalidation:\n  type: memory\n  maxStaleness: 3\n")
	f.Add("a: &a [x, x]\nb: [*a, *a]\n")
	f.Add(`{"backend": {"inMemory": {"capacity": 1e400}}}`)
	f.Add("backend:\n  inMemory:\n    capacity: 0x10\n")
	f.Add("invalidation:\n  type: memory\n  driverConfig: {k: [1, {x: y}], n: ~}\n")
	f.Add(`{"invalidation": {"driverConfig": {"k": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}}`)
	f.Add("invalidation:\n  driverConfig:\n    k: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n")
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := config.Parse([]byte(doc))
		if err != nil {
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidConfig", doc, err)
			}
			return
		}
		if _, err := config.Resolve(cfg); err != nil {
			t.Fatalf("Parse(%q) accepted a config that Resolve refuses: %v", doc, err)
		}
	})
}
