module github.com/halilbulentorhon/invacache-go

go 1.24
