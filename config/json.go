package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// jsonDuration reads a duration written as a string ("5s") or as a number of
// nanoseconds, the two ways a configuration file writes one.
type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	v, err := parseDuration(json.RawMessage(b))
	if err != nil {
		return err
	}
	*d = jsonDuration(v)
	return nil
}

// parseDuration converts a duration from the forms configuration sources
// produce: time.Duration, a string for time.ParseDuration, an integer number
// of nanoseconds (int kinds, or float64 without a fraction as JSON decodes it),
// or raw JSON of either form.
func parseDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("config: %q is not a duration: %w", x, ErrInvalidConfig)
		}
		return d, nil
	case int:
		return time.Duration(x), nil
	case int64:
		return time.Duration(x), nil
	case int32:
		return time.Duration(x), nil
	case uint:
		return time.Duration(x), nil
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("config: %v is not a whole number of nanoseconds: %w", x, ErrInvalidConfig)
		}
		return time.Duration(int64(x)), nil
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, fmt.Errorf("config: %s is not a whole number of nanoseconds: %w", x, ErrInvalidConfig)
		}
		return time.Duration(i), nil
	case json.RawMessage:
		var s string
		if err := json.Unmarshal(x, &s); err == nil {
			return parseDuration(s)
		}
		var n json.Number
		if err := json.Unmarshal(x, &n); err == nil {
			return parseDuration(n)
		}
		return 0, fmt.Errorf("config: %s is not a duration: %w", string(x), ErrInvalidConfig)
	default:
		return 0, fmt.Errorf("config: %T is not a duration: %w", v, ErrInvalidConfig)
	}
}

// UnmarshalJSON accepts durations as strings ("30s") or nanoseconds.
func (c *InMemoryConfig) UnmarshalJSON(b []byte) error {
	type plain InMemoryConfig
	aux := struct {
		*plain
		SweeperInterval *jsonDuration `json:"sweeperInterval"`
	}{plain: (*plain)(c), SweeperInterval: (*jsonDuration)(&c.SweeperInterval)}
	return wrapJSON("backend.inMemory", json.Unmarshal(b, &aux))
}

// UnmarshalJSON accepts durations as strings ("3s") or nanoseconds.
func (c *InvalidationConfig) UnmarshalJSON(b []byte) error {
	type plain InvalidationConfig
	aux := struct {
		*plain
		MaxStaleness    *jsonDuration `json:"maxStaleness"`
		RetryBackoffMin *jsonDuration `json:"retryBackoffMin"`
		RetryBackoffMax *jsonDuration `json:"retryBackoffMax"`
		FlushTimeout    *jsonDuration `json:"flushTimeout"`
	}{
		plain:           (*plain)(c),
		MaxStaleness:    (*jsonDuration)(&c.MaxStaleness),
		RetryBackoffMin: (*jsonDuration)(&c.RetryBackoffMin),
		RetryBackoffMax: (*jsonDuration)(&c.RetryBackoffMax),
		FlushTimeout:    (*jsonDuration)(&c.FlushTimeout),
	}
	return wrapJSON("invalidation", json.Unmarshal(b, &aux))
}

// UnmarshalJSON accepts dialTimeout and replayWindow as strings ("5s") or
// nanoseconds.
func (c *RedisInvalidationConfig) UnmarshalJSON(b []byte) error {
	type plain RedisInvalidationConfig
	aux := struct {
		*plain
		DialTimeout  *jsonDuration `json:"dialTimeout"`
		ReplayWindow *jsonDuration `json:"replayWindow"`
	}{plain: (*plain)(c), DialTimeout: (*jsonDuration)(&c.DialTimeout), ReplayWindow: (*jsonDuration)(&c.ReplayWindow)}
	return wrapJSON("invalidation.redis", json.Unmarshal(b, &aux))
}

func wrapJSON(section string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("config: %s: %w: %w", section, ErrInvalidConfig, err)
}
