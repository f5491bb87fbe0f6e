package redis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	"github.com/halilbulentorhon/invacache-go/internal/leakcheck"
	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis"
)

// A refusal only a configuration change fixes (credentials, ACL user, TLS)
// fails NewCache with an error naming the cause. DialTimeout is long: a
// NewCache that waited for it would return a cache and no error, so the
// error proves NewCache did not wait for the timeout. (A network that may
// recover is not a refusal: TestCacheStartsWithRedisDown. Nor are two TLS
// mismatches that look like one: a plain client to a TLS server sees the
// connection closed, a TLS client to a plain server a handshake timeout;
// and a client certificate the server rejects may show as a reset, when
// the client writes before it reads the server's alert.)
func TestNewCacheFailsAtTheDoor(t *testing.T) {
	leakcheck.Check(t)
	pw := redisserver.StartT(t, redisserver.Options{Password: "root-pw", Users: []redisserver.User{{Name: "cache", Password: "cache-pw"}}})
	tests := []struct {
		name    string
		cfg     map[string]any
		want    error
		wantMsg string
	}{
		{"wrong password", map[string]any{"Address": pw.Addr(), "Password": "wrong"}, redis.ErrAuth, "WRONGPASS"},
		{"missing ACL user", map[string]any{"Address": pw.Addr(), "Username": "nobody", "Password": "cache-pw"}, redis.ErrAuth, "WRONGPASS"},
		{"no password", map[string]any{"Address": pw.Addr()}, redis.ErrAuth, "NOAUTH"},
	}
	if redisserver.TLSSupported() {
		srv := redisserver.StartT(t, redisserver.Options{TLS: true})
		cc := srv.ClientCerts()
		tests = append(tests, struct {
			name    string
			cfg     map[string]any
			want    error
			wantMsg string
		}{"TLS server name mismatch", map[string]any{"Address": srv.Addr(), "TLS": map[string]any{"Enabled": true, "CAFile": cc.CAFile, "CertFile": cc.CertFile, "KeyFile": cc.KeyFile, "ServerName": "redis.example"}}, redis.ErrTLS, "redis.example"}, struct {
			name    string
			cfg     map[string]any
			want    error
			wantMsg string
		}{"TLS with an unknown CA", map[string]any{"Address": srv.Addr(), "TLS": map[string]any{"Enabled": true, "CertFile": cc.CertFile, "KeyFile": cc.KeyFile, "ServerName": "localhost"}}, redis.ErrTLS, "certificate"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg["Channel"] = "door"
			tc.cfg["DialTimeout"] = "30s"
			c, err := invacache.NewCache[string](config.InvaCacheConfig{Invalidation: &config.InvalidationConfig{Type: "redis", DriverConfig: tc.cfg}})
			if err == nil {
				_ = c.Close()
				t.Fatalf("NewCache: no error, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("NewCache error = %v, want %v and config.ErrInvalidConfig, naming %q", err, tc.want, tc.wantMsg)
			}
		})
	}
}
