package redisserver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go/internal/redisserver"
)

func ExampleStart() {
	srv, err := redisserver.Start(redisserver.Options{Password: "secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	reply, err := srv.Do("PING") // authenticates with the password first
	fmt.Println(reply, err)

	srv.Kill() // crash
	if err := srv.Restart(); err != nil {
		fmt.Println(err)
		return
	}
	reply, err = srv.Do("PING")
	fmt.Println(reply, err)
	// Output:
	// PONG <nil>
	// PONG <nil>
}

func ExampleStartSentinel() {
	st, err := redisserver.StartSentinel(redisserver.SentinelOptions{MasterName: "mymaster", Replicas: 1, Sentinels: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	// After st.KillMaster(), st.WaitFailover(ctx, master) returns the
	// promoted replica's address (about 2-3s with the default timeouts).
	master, _ := st.Master()
	fmt.Println(master == st.Servers()[0].Addr(), len(st.SentinelAddrs()))
	// Output: true 1
}

// A cluster takes about 2s to form, so this example is compiled, not run.
func ExampleStartCluster() {
	c, err := redisserver.StartCluster(redisserver.ClusterOptions{Masters: 3, ReplicasPerMaster: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	slot, _ := c.KeySlot("invalidation-channel")
	owner, _ := c.MasterForSlot(slot)
	owner.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	promoted, err := c.WaitFailover(ctx, slot)
	fmt.Println(promoted.Addr(), err)
}
