package simdb_test

import (
	"fmt"

	"github.com/halilbulentorhon/invacache-go/cmd/invacache/internal/simdb"
)

func Example() {
	db := simdb.New("item:", 3, 0)
	v := db.Write("item:1", func(v uint64) {
		// Update the writer's cache here: writes of one key are serialized.
		fmt.Println("cache write of version", v)
	})
	fmt.Println(v, db.Read("item:1"), db.Read("item:2"))
	// Output:
	// cache write of version 1
	// 1 1 0
}
