package wire_test

import (
	"fmt"

	"github.com/halilbulentorhon/invacache-go/internal/wire"
)

func ExampleAppendBatches() {
	payloads, _, next := wire.AppendBatches(nil, nil, 0x9f3a61c07e2b4d18, 41, false, []string{"user:1", "order:7"}, 1024)
	for _, p := range payloads {
		fmt.Printf("%q\n", p)
	}
	fmt.Println("next seq", next)
	// Output:
	// "\x00ivc1 9f3a61c07e2b4d18 41 D 6:user:1 7:order:7"
	// next seq 42
}

func ExampleDecode() {
	for _, p := range []string{"user:1", "", "\x00ivc1 9f3a61c07e2b4d18 42 C", "\x00ivc9 ..."} {
		m, err := wire.Decode([]byte(p))
		fmt.Printf("raw=%v ops=%+v err=%v\n", m.Raw, m.Ops, err)
	}
	// Output:
	// raw=true ops=[{Clear:false Keys:[user:1]}] err=<nil>
	// raw=true ops=[{Clear:true Keys:[]}] err=<nil>
	// raw=false ops=[{Clear:true Keys:[]}] err=<nil>
	// raw=false ops=[] err=wire: unknown envelope version 9 (this reader knows 1)
}
