package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go/invalidation"
	"github.com/halilbulentorhon/invacache-go/invalidation/drivers/memory"
)

type printer struct{ got chan string }

func (p printer) HandleMessage(b []byte) { p.got <- string(b) }
func (p printer) HandleLogMessage(_ invalidation.LogPos, b []byte) {
	p.HandleMessage(b)
}
func (p printer) HandleLinkUp()           {}
func (p printer) HandleLinkDown(error)    {}
func (p printer) HandleAlive()            {}
func (p printer) HandleAliveAt(time.Time) {}

func Example() {
	bus := memory.NewBus()
	defer bus.Close()
	a, b := bus.Connect(), bus.Connect()

	p := printer{got: make(chan string, 1)}
	sub, _ := b.Subscribe(p, invalidation.SubscribeOptions{})
	defer sub.Close()

	b.DropNext(1) // fault injection: b loses the next payload
	_ = a.Publish(context.Background(), [][]byte{[]byte("lost"), []byte("user:1")})
	fmt.Println(<-p.got)
	// Output: user:1
}
