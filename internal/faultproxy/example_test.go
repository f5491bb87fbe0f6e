package faultproxy_test

import (
	"fmt"
	"net"

	"github.com/halilbulentorhon/invacache-go/internal/faultproxy"
)

func ExampleProxy() {
	// Any TCP server works as a target; here one that is never contacted.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()

	p, err := faultproxy.New(target.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	// Clients connect to p.Addr() instead of the target, then a test injects
	// faults: p.Cut(), p.Blackhole() ... p.Heal(), p.Refuse() ... p.Accept().
	p.Blackhole()
	p.Heal()
	fmt.Println(p.Target() == target.Addr().String(), p.Stats().Active)
	// Output: true 0
}
