package peer

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/productdb/stage/bench"
)

var (
	cmds      = flag.Int("peer.cmds", 8000, "commands (events) per round of a callers workload")
	loadCount = flag.Int("peer.loads", 10, "loads per round of a load workload")
	loadN     = flag.Int("peer.events", 20_000, "events of the loaded meeting")
	rounds    = flag.Int("peer.rounds", 5, "rounds of every workload, interleaved")
)

// BenchmarkPeer runs -peer.rounds rounds (default 5) of every workload,
// ours, raw and rita in turn within each round: run it with -benchtime 1x
// (each workload is one whole round; -count would repeat a workload
// before the next one) and read the medians and ratios with
// cmd/peertable. With -short the rounds are small and there are two (a
// smoke run).
func BenchmarkPeer(b *testing.B) {
	r := Round{Cmds: *cmds, Loads: *loadCount}
	n, count := *loadN, *rounds
	if testing.Short() {
		r, n, count = Round{Cmds: 500, Loads: 2}, 2_000, 2
	}
	for i := range count {
		b.Run(fmt.Sprintf("round=%d", i+1), func(b *testing.B) { round(b, r, n) })
	}
}

// round runs one round of every workload.
func round(b *testing.B, r Round, n int) {
	for _, callers := range []int{64, 256} {
		name := fmt.Sprintf("lazy/callers=%d/meetings=1000", callers)
		b.Run(name+"/ours", Ours(r, callers, 1000, bench.LazySync))
		b.Run(name+"/raw", Raw(r, callers, 1000, bench.LazySync))
		b.Run(name+"/rita", Rita(r, callers, 1000, bench.LazySync))
	}
	name := fmt.Sprintf("load/events=%d", n)
	b.Run(name+"/ours", OursLoad(r, n))
	b.Run(name+"/ours-storeload", OursStoreLoad(r, n))
	b.Run(name+"/rita", RitaLoad(r, n))
	name = "sync/callers=256/meetings=1000"
	b.Run(name+"/ours", Ours(r, 256, 1000, bench.SyncAlways))
	b.Run(name+"/raw", Raw(r, 256, 1000, bench.SyncAlways))
	b.Run(name+"/rita", Rita(r, 256, 1000, bench.SyncAlways))
}

func TestMain(m *testing.M) {
	code := m.Run()
	Close()
	os.Exit(code)
}
