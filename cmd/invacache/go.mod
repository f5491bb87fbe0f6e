module github.com/halilbulentorhon/invacache-go/cmd/invacache

go 1.24

replace (
	github.com/halilbulentorhon/invacache-go => ../..
	github.com/halilbulentorhon/invacache-go/invalidation/drivers/redis => ../../invalidation/drivers/redis
)
