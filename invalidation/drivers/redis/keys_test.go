package redis

import (
	"strconv"
	"strings"
	"testing"

	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

// The log's keys share the channel's cluster slot, for every shape of
// name (checked against CLUSTER KEYSLOT of a real server), and the keys
// of different channels differ.
func TestLogKeysInChannelSlot(t *testing.T) {
	srv := redisserver.StartT(t, redisserver.Options{Args: []string{"--cluster-enabled", "yes"}})
	slot := func(key string) int {
		t.Helper()
		out, err := srv.Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(out)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	seen := map[string]string{}
	for _, ch := range []string{
		"invacache:invalidation", "app:{users}:inv", "{a}", "{}", "{}x", "x{}", "a}b", "}", "}{", "{", "a{b", "a{b}c}",
		"{{x}}", "}{x}", "{}}", "a}{b", "ü:ç", "x y", "{x}{y}", "a{}b}c",
	} {
		keys := logKeys(ch)
		stream, epoch := keys[0], keys[1]
		want := slot(ch)
		if got := keySlot(ch); got != want {
			t.Errorf("keySlot(%q) = %d, CLUSTER KEYSLOT says %d", ch, got, want)
		}
		for _, k := range keys {
			if got := slot(k); got != want {
				t.Errorf("channel %q (slot %d): key %q in slot %d", ch, want, k, got)
			}
			if prev, dup := seen[k]; dup {
				t.Errorf("channels %q and %q share the key %q", prev, ch, k)
			}
			seen[k] = ch
		}
		if len(keys) != 6 || !strings.Contains(stream, "log") || !strings.Contains(epoch, "epoch") || !strings.Contains(keys[2], "meta") {
			t.Errorf("logKeys(%q) = %q", ch, keys)
		}
	}
}
