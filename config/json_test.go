package config_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/halilbulentorhon/invacache-go/config"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      any
		want    time.Duration
		wantErr bool
	}{
		{5 * time.Second, 5 * time.Second, false},
		{"5s", 5 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{int(1000), time.Microsecond, false},
		{int64(1000), time.Microsecond, false},
		{float64(2e9), 2 * time.Second, false},
		{json.Number("3000000000"), 3 * time.Second, false},
		{json.RawMessage(`"250ms"`), 250 * time.Millisecond, false},
		{json.RawMessage(`1000000`), time.Millisecond, false},
		{"soon", 0, true},
		{1.5, 0, true},
		{true, 0, true},
		{json.Number("1.5"), 0, true},
		{json.RawMessage(`[1]`), 0, true},
		{nil, 0, true},
	}
	for _, tt := range tests {
		got, err := config.ParseDuration(tt.in)
		if tt.wantErr {
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Errorf("ParseDuration(%#v) err = %v, want ErrInvalidConfig", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%#v) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

// FuzzConfigJSON: any document either decodes or fails with an error; the
// custom duration decoding never panics.
func FuzzConfigJSON(f *testing.F) {
	f.Add(`{"backend":{"inMemory":{"sweeperInterval":"30s","ttl":"10m"}}}`)
	f.Add(`{"invalidation":{"maxStaleness":1e9,"redis":{"dialTimeout":"5s"}}}`)
	f.Add(`{"invalidation":{"maxStaleness":null}}`)
	f.Add(`{"invalidation":{"flushTimeout":"-1"}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var cfg config.InvaCacheConfig
		_ = json.Unmarshal([]byte(doc), &cfg)
	})
}
