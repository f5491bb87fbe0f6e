package engine_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/halilbulentorhon/invacache-go/internal/engine"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

// printTarget stands in for a cache.
type printTarget struct {
	name string
	done chan struct{}
	once sync.Once
}

func (p *printTarget) InvalidateKeys(keys []string) {
	fmt.Println(p.name, "drops", keys)
	p.once.Do(func() { close(p.done) })
}

func (p *printTarget) InvalidateAll() {} // the link-up gap clear

func Example() {
	bus := memory.NewBus()
	defer bus.Close()

	writer, _ := engine.New(engine.Config{Driver: bus.Connect()}, &printTarget{name: "writer", done: make(chan struct{})})
	defer writer.Close()
	peer := &printTarget{name: "peer", done: make(chan struct{})}
	reader, _ := engine.New(engine.Config{Driver: bus.Connect()}, peer)
	defer reader.Close()
	_ = reader.WaitLinkUp(context.Background())

	_ = writer.BroadcastDelete("user:1", "user:2") // returns at once
	_ = writer.Flush(context.Background())         // the message left the process
	<-peer.done
	// Output:
	// peer drops [user:1 user:2]
}
