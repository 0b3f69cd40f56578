package bench

import (
	"fmt"
	"testing"
)

func BenchmarkRaw(b *testing.B) {
	for _, sync := range []Sync{LazySync, SyncAlways} {
		for _, callers := range []int{1, 64, 256} {
			b.Run(fmt.Sprintf("guarded/callers=%d/%v", callers, sync), RawGuardedPublish(callers, 1000, sync))
		}
		b.Run(fmt.Sprintf("async/%v", sync), RawAsyncPublish(1000, sync))
		b.Run(fmt.Sprintf("batch100/%v", sync), RawAtomicBatch(100, sync))
	}
	b.Run("replay/n=100000", RawOrderedReplay(100_000, 1000))
}

func BenchmarkEngine(b *testing.B) {
	for _, sync := range []Sync{LazySync, SyncAlways} {
		b.Run(fmt.Sprintf("callers=1/meetings=1/%v", sync), EngineJetStream(1, 1, sync))
		for _, callers := range []int{64, 256} {
			b.Run(fmt.Sprintf("callers=%d/meetings=1000/%v", callers, sync), EngineJetStream(callers, 1000, sync))
		}
	}
}

func BenchmarkColdLoad(b *testing.B) {
	for _, snapshots := range []bool{false, true} {
		b.Run(fmt.Sprintf("events=100000/snapshots=%v", snapshots), ColdLoad(100_000, snapshots))
	}
	for _, snapshots := range []bool{false, true} {
		for _, n := range []int{10_000, 1_000_000} {
			b.Run(fmt.Sprintf("stream=%d/meeting=100/snapshots=%v", n, snapshots), ColdLoadInStream(n, 100, snapshots))
		}
	}
}
