package prometheus_test

import (
	"fmt"
	"net/http"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	invaprom "github.com/halilbulentorhon/invacache-go/metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type user struct{ Name string }

func ExampleNewCollector() {
	users, err := invacache.NewCache[user](config.InvaCacheConfig{})
	if err != nil {
		panic(err)
	}
	defer users.Close()
	sessions, err := invacache.NewCache[[]byte](config.InvaCacheConfig{})
	if err != nil {
		panic(err)
	}
	defer sessions.Close()

	col, err := invaprom.NewCollector(
		invaprom.Cache{Name: "users", Stats: users.Stats},
		invaprom.Cache{Name: "sessions", Stats: sessions.Stats},
	)
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	users.Set("u1", user{Name: "Ada"})
	users.Get("u1")
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() == "invacache_hits_total" {
			for _, m := range f.GetMetric() {
				fmt.Println(m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// sessions 0
	// users 1
}
