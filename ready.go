package invacache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ReadyHandler returns an http.Handler for a readiness probe (/readyz) over
// one or more caches (any Cache[V]; every cache has WaitServing).
//
// It answers 200 "ready" while every cache serves, and 503 Service
// Unavailable naming the caches that do not (by their position in the
// arguments) otherwise: while a distributed cache's subscription is not up or
// not proven alive within MaxStaleness, while it handles a gap, and after
// Close. A replica that is not ready still works, it only loads every value
// from the source; take it out of rotation so the source is not flooded. The
// probe never blocks: it asks each cache whether it serves now.
//
//	http.Handle("/readyz", invacache.ReadyHandler(users, sessions))
func ReadyHandler(caches ...interface{ WaitServing(context.Context) error }) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now, cancel := context.WithCancel(r.Context())
		cancel() // WaitServing answers at once: nil if the cache serves now
		var not []string
		for i, c := range caches {
			if err := c.WaitServing(now); err != nil {
				reason := "not serving"
				if errors.Is(err, ErrClosed) {
					reason = "closed"
				}
				not = append(not, fmt.Sprintf("cache %d: %s", i, reason))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if len(not) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", strings.Join(not, "; "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
}
