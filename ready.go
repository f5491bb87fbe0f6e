package invacache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ReadyHandler returns an http.Handler for a readiness probe (/readyz) over
// one or more caches (any Cache[V]).
//
// It answers 200 "ready" once every cache has started, and 503 Service
// Unavailable naming the caches that are closed (by their position in the
// arguments). A cache has started when NewCache returns: its link came up,
// or the driver's connect timeout passed with the bus unreachable.
//
// Readiness is deliberately not the link's state. One Redis serves every
// replica, so a probe that failed with the link would take the whole fleet
// out of rotation at the same moment, during any Redis outage, although
// each replica still answers: a cache that may not serve (its link down or
// not proven alive within MaxStaleness, a gap being handled) loads every
// value from the source, and with InvalidationConfig.OutageStaleness it
// keeps serving its cache for a bounded time. The link's state is reported
// apart: LinkHandler, Stats().Invalidation (LinkUp, Serving, SinceAlive),
// and the metrics modules' invacache_link_up and invacache_serving gauges.
// The probe never blocks.
//
//	http.Handle("/readyz", invacache.ReadyHandler(users, sessions))
func ReadyHandler(caches ...interface{ WaitServing(context.Context) error }) http.Handler {
	return probeHandler("ready", "not ready", func(i int) string {
		if err := caches[i].WaitServing(ended()); errors.Is(err, ErrClosed) {
			return "closed"
		}
		return ""
	}, len(caches))
}

// LinkHandler returns an http.Handler that reports the invalidation link of
// one or more caches: 200 "link up" while every distributed cache's
// subscription is up, proven alive within MaxStaleness and not handling a
// gap (a local cache always passes), 503 naming the caches that are not
// (by their position in the arguments) and why: "link down", "not serving"
// (not proven alive within MaxStaleness, or handling a gap), "closed".
//
// It is the probe that ReadyHandler is not: for alerting, or for a
// deployment that wants a replica out of rotation while its link is down,
// knowing that one Redis outage then fails every replica's probe at once.
// It never blocks.
//
//	http.Handle("/linkz", invacache.LinkHandler(users, sessions))
func LinkHandler(caches ...interface {
	WaitServing(context.Context) error
	Stats() Stats
}) http.Handler {
	return probeHandler("link up", "link not up", func(i int) string {
		c := caches[i]
		err := c.WaitServing(ended())
		st := c.Stats()
		switch {
		case errors.Is(err, ErrClosed):
			return "closed"
		case !st.Distributed:
			return ""
		case !st.Invalidation.LinkUp:
			return "link down"
		case err != nil || !st.Invalidation.Serving:
			return "not serving"
		}
		return ""
	}, len(caches))
}

// ended is a context that has already ended: WaitServing answers at once,
// nil if the cache serves now.
func ended() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// probeHandler answers 200 with ok when check reports "" for each of the n
// caches, else 503 with bad, naming each failing cache with its reason.
func probeHandler(ok, bad string, check func(i int) string, n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var not []string
		for i := range n {
			if reason := check(i); reason != "" {
				not = append(not, fmt.Sprintf("cache %d: %s", i, reason))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if len(not) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%s: %s\n", bad, strings.Join(not, "; "))
			return
		}
		fmt.Fprintln(w, ok)
	})
}
