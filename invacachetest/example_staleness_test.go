package invacachetest_test

import (
	"fmt"
	"time"

	"github.com/halilbulentorhon/invacache-go/invacachetest"
)

func ExampleChecker() {
	c := invacachetest.NewChecker(invacachetest.Bound{MaxStaleness: time.Second})
	t0 := time.Now()
	c.AckAt("user:1", 2, t0)
	fmt.Println(c.Read("user:1", 1, t0.Add(100*time.Millisecond))) // within the bound
	fmt.Println(c.Read("user:1", 1, t0.Add(2*time.Second)))        // a second past it
	fmt.Println(c.Stale())
	// Output:
	// false
	// true
	// 1
}
