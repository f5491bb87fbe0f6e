package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/chaos"
)

func main() {
	// `invacache chaos --procs` re-executes this binary as its node processes.
	if code, ok := chaos.NodeProcess(); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
