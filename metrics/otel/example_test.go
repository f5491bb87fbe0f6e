package otel_test

import (
	"context"
	"fmt"

	"github.com/halilbulentorhon/invacache-go"
	"github.com/halilbulentorhon/invacache-go/config"
	invaotel "github.com/halilbulentorhon/invacache-go/metrics/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func ExampleRegister() {
	users, err := invacache.NewCache[string](config.InvaCacheConfig{})
	if err != nil {
		panic(err)
	}
	defer users.Close()

	reader := sdkmetric.NewManualReader() // in a service: a periodic reader with an exporter
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	reg, err := invaotel.Register(mp, invaotel.Cache{Name: "users", Stats: users.Stats})
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()

	users.Set("u1", "Ada")
	users.Get("u1")
	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "invacache.hits" {
			fmt.Println(m.Name, m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
		}
	}
	// Output:
	// invacache.hits 1
}
