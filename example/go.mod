module github.com/halilbulentorhon/invacache-go/example

go 1.26.0

require (
	github.com/halilbulentorhon/invacache-go v0.1.0
	github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis v0.1.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
