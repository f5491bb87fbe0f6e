package redisserver_test

import (
	"fmt"

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
