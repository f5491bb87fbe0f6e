module github.com/halilbulentorhon/invacache-go

go 1.24.0

require (
	github.com/maypok86/otter/v2 v2.4.0
	go.yaml.in/yaml/v3 v3.0.6
)
