module github.com/halilbulentorhon/invacache-go/bench

go 1.26.0

require (
	github.com/halilbulentorhon/invacache-go v0.1.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgraph-io/ristretto/v2 v2.4.2
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis v0.1.0
	github.com/maypok86/otter/v2 v2.4.0
	golang.org/x/sys v0.48.0 // indirect
)
