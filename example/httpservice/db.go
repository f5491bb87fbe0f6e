package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Item is what the service stores: a value and the version the database
// gave it (each write of an id bumps its version).
type Item struct {
	ID      string `json:"id"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
}

// errNoItem is returned by a DB for an id it does not hold.
var errNoItem = errors.New("httpservice: no such item")

// DB is the source of truth behind the cache: your SQL database in a real
// service.
type DB interface {
	Get(ctx context.Context, id string) (Item, error)
	Put(ctx context.Context, id, value string) (Item, error)
	Delete(ctx context.Context, id string) error
}

// slowDB adds a fixed latency to reads, so the cache's effect shows.
type slowDB struct {
	DB
	latency time.Duration
}

func (s slowDB) Get(ctx context.Context, id string) (Item, error) {
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return Item{}, ctx.Err()
		}
	}
	return s.DB.Get(ctx, id)
}

// memDB is a DB in process memory: every replica of a test shares one.
type memDB struct {
	mu    sync.Mutex
	items map[string]Item // guarded by mu
}

func newMemDB() *memDB { return &memDB{items: map[string]Item{}} }

func (m *memDB) Get(_ context.Context, id string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return Item{}, errNoItem
	}
	return it, nil
}

func (m *memDB) Put(_ context.Context, id, value string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it := Item{ID: id, Value: value, Version: m.items[id].Version + 1}
	m.items[id] = it
	return it, nil
}

func (m *memDB) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, id)
	return nil
}

// redisDB keeps items as Redis hashes, so replicas in separate processes
// share one database; it stands in for SQL in the walkthrough. A version
// survives Delete (HINCRBY on a kept counter), so versions only grow.
type redisDB struct {
	rdb    *redis.Client
	prefix string
}

func (r redisDB) key(id string) string { return r.prefix + "item:" + id }
func (r redisDB) ver(id string) string { return r.prefix + "version:" + id }

func (r redisDB) Get(ctx context.Context, id string) (Item, error) {
	vals, err := r.rdb.HMGet(ctx, r.key(id), "value", "version").Result()
	if err != nil {
		return Item{}, fmt.Errorf("httpservice: read %q: %w", id, err)
	}
	value, ok1 := vals[0].(string)
	version, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return Item{}, errNoItem
	}
	v, err := strconv.ParseUint(version, 10, 64)
	if err != nil {
		return Item{}, fmt.Errorf("httpservice: read %q: version %q: %w", id, version, err)
	}
	return Item{ID: id, Value: value, Version: v}, nil
}

func (r redisDB) Put(ctx context.Context, id, value string) (Item, error) {
	ver, err := put.Run(ctx, r.rdb, []string{r.ver(id), r.key(id)}, value).Uint64()
	if err != nil {
		return Item{}, fmt.Errorf("httpservice: write %q: %w", id, err)
	}
	return Item{ID: id, Value: value, Version: ver}, nil
}

// put bumps the id's version and stores the value with it, atomically.
var put = redis.NewScript(`
local v = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'value', ARGV[1], 'version', v)
return v`)

func (r redisDB) Delete(ctx context.Context, id string) error {
	if err := r.rdb.Del(ctx, r.key(id)).Err(); err != nil {
		return fmt.Errorf("httpservice: delete %q: %w", id, err)
	}
	return nil
}
