package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	goredis "github.com/redis/go-redis/v9"
)

// markerID names the stream a marker belongs to: the PostgreSQL system
// (IDENTIFY_SYSTEM's identifier: a restore or a new cluster changes it),
// the database and the slot.
type markerID struct {
	System   string `json:"system"`
	Database string `json:"database"`
	Slot     string `json:"slot"`
}

// marker is what the relay keeps next to the replay log: which stream it
// relays and the LSN up to which everything is published. It is written
// before that LSN is acknowledged to PostgreSQL, so the slot's
// confirmed_flush_lsn never passes it while the slot is the same one.
type marker struct {
	markerID
	LSN string        `json:"lsn"`
	lsn pglogrepl.LSN // parsed LSN
}

type markerStore struct {
	client goredis.UniversalClient
	key    string
	id     markerID
}

// markerKey puts the marker in the channel's cluster slot, like the
// replay log's keys ("{channel}:relay:<slot>").
func markerKey(channel, slot string) string {
	if i := strings.IndexByte(channel, '{'); i >= 0 && strings.IndexByte(channel[i+1:], '}') > 0 {
		return channel + ":relay:" + slot
	}
	if strings.Contains(channel, "}") {
		return channel + ":relay:" + slot
	}
	return "{" + channel + "}:relay:" + slot
}

func (s markerStore) read(ctx context.Context) (marker, bool, error) {
	b, err := s.client.Get(ctx, s.key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, err
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		return marker{}, false, nil // unreadable: as if missing (the relay clears)
	}
	if m.lsn, err = pglogrepl.ParseLSN(m.LSN); err != nil {
		return marker{}, false, nil
	}
	return m, true, nil
}

func (s markerStore) write(ctx context.Context, lsn pglogrepl.LSN) error {
	b, err := json.Marshal(marker{markerID: s.id, LSN: lsn.String()})
	if err != nil {
		return fmt.Errorf("postgres: marker: %w", err)
	}
	return s.client.Set(ctx, s.key, b, 0).Err()
}
