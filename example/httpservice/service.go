package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/backend/option"
)

// maxValueBytes bounds a PUT body.
const maxValueBytes = 1 << 20

// service serves items from a cache in front of a DB.
type service struct {
	name  string // this replica, echoed in responses
	cache invacache.Cache[Item]
	db    DB
	log   *slog.Logger
}

// routes returns the service's handler: the item API, /readyz, /linkz and,
// when metrics is non-nil, /metrics.
func (s *service) routes(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", s.get)
	mux.HandleFunc("PUT /items/{id}", s.put)
	mux.HandleFunc("DELETE /items/{id}", s.delete)
	// Ready once the cache started, whatever its Redis link does: one
	// Redis outage must not take every replica out of rotation at once (a
	// replica whose link is down still answers, from the database). The
	// link has its own probe, for alerts.
	mux.Handle("GET /readyz", invacache.ReadyHandler(s.cache))
	mux.Handle("GET /linkz", invacache.LinkHandler(s.cache))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// response is an item as the API returns it.
type response struct {
	Item
	Replica string `json:"replica"`
	Source  string `json:"source,omitempty"` // GET: "cache" or "database"
}

func (s *service) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	source := "cache"
	// Concurrent requests for one id share one database read. A client that
	// disconnects ends only its own request; the read continues for the
	// others (and is dropped, not cached, if every client left).
	it, err := s.cache.GetOrLoadContext(r.Context(), id, func(ctx context.Context, id string) (Item, time.Duration, error) {
		source = "database"
		it, err := s.db.Get(ctx, id)
		return it, 0, err
	})
	switch {
	case errors.Is(err, errNoItem):
		http.Error(w, "no such item", http.StatusNotFound)
		return
	case r.Context().Err() != nil:
		return // the client is gone
	case err != nil:
		s.fail(w, "read", id, err)
		return
	}
	s.reply(w, http.StatusOK, response{Item: it, Replica: s.name, Source: source})
}

// put writes the database, then invalidates the id on every replica (this
// one included) and answers once the invalidation has left the process.
// Delete rather than Set: two racing writes could otherwise leave the older
// value cached here; the next read loads the newest from the database.
func (s *service) put(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueBytes))
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	it, err := s.db.Put(r.Context(), id, string(body))
	if err != nil {
		s.fail(w, "write", id, err)
		return
	}
	if err := s.invalidate(r.Context(), id); err != nil {
		s.fail(w, "invalidate", id, err)
		return
	}
	s.reply(w, http.StatusOK, response{Item: it, Replica: s.name})
}

func (s *service) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.db.Delete(r.Context(), id); err != nil {
		s.fail(w, "delete", id, err)
		return
	}
	if err := s.invalidate(r.Context(), id); err != nil {
		s.fail(w, "invalidate", id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// invalidate drops id here and on every peer, and waits until the
// invalidation has left the process (bounded, so a Redis outage does not
// hang writers: the outbox keeps retrying after the timeout).
func (s *service) invalidate(ctx context.Context, id string) error {
	if err := s.cache.Delete(id, option.WithDeleteInvalidation()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.cache.Flush(ctx)
}

func (s *service) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("httpservice: write response", "err", err)
	}
}

func (s *service) fail(w http.ResponseWriter, what, id string, err error) {
	s.log.Error("httpservice: "+what, "id", id, "err", err)
	http.Error(w, what+" failed", http.StatusInternalServerError)
}
