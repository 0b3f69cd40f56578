package bench

import (
	"fmt"
	"os"
	"testing"
)

// The benchmarks come in pairs: BenchmarkOurs/X and BenchmarkRaw/X run the
// same workload X through the engine and through raw JetStream, on the same
// kind of embedded server in the same run; cmd/benchtable pairs them into
// one table. BenchmarkCore has the workloads with no raw counterpart.
//
// With -short the workloads that fill large streams use smaller ones, so
// that CI can run every benchmark once (-benchtime=1x) in seconds.

func BenchmarkCore(b *testing.B) {
	b.Run("decide-evolve", DecideEvolve)
	b.Run("engine-memory", EngineMemory)
	b.Run("idle-meeting/commands=6", IdleMeetingMemory(6))
	b.Run("idle-meeting/commands=200", IdleMeetingMemory(200))
}

func BenchmarkOurs(b *testing.B) {
	for _, sync := range []Sync{LazySync, SyncAlways} {
		b.Run(fmt.Sprintf("guarded/callers=1/%v", sync), EngineJetStream(1, 1, sync))
		for _, callers := range []int{64, 256} {
			b.Run(fmt.Sprintf("guarded/callers=%d/%v", callers, sync), EngineJetStream(callers, 1000, sync))
		}
	}
	b.Run("replay", OursReplay)
}

func BenchmarkRaw(b *testing.B) {
	for _, sync := range []Sync{LazySync, SyncAlways} {
		b.Run(fmt.Sprintf("guarded/callers=1/%v", sync), RawGuardedPublish(1, 1, sync))
		for _, callers := range []int{64, 256} {
			b.Run(fmt.Sprintf("guarded/callers=%d/%v", callers, sync), RawGuardedPublish(callers, 1000, sync))
		}
		b.Run(fmt.Sprintf("async/%v", sync), RawAsyncPublish(1000, sync))
		b.Run(fmt.Sprintf("batch100/%v", sync), RawAtomicBatch(100, sync))
	}
	b.Run("replay", RawReplay)
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeFilled()
	os.Exit(code)
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
