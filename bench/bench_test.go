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
	for _, sync := range []Sync{LazySync, SyncAlways} {
		for _, callers := range []int{64, 256} {
			b.Run(fmt.Sprintf("onemeeting/callers=%d/%v", callers, sync), OneMeeting(callers, sync))
		}
	}
	viewers := 100_000
	if testing.Short() {
		viewers = 2_000
	}
	b.Run(fmt.Sprintf("livestream/viewers=%d/callers=256/sync=always", viewers), Livestream(viewers, 256, SyncAlways))
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("reads/callers=64/cached=%v", cached), Reads(64, 100, cached))
	}
	b.Run("replay", OursReplay)
	b.Run("verify", OursReplayVerify)
	b.Run("replaypair", ReplayPaired)
	b.Run(fmt.Sprintf("load/events=%d", loadSize()), OursLoadMeeting)
	n, meetings := replaySize()
	for _, st := range []struct {
		name        string
		n, meetings int
		snapshots   bool
	}{
		{"stream=large", n, meetings, false},
		{"stream=small", n / 100, meetings / 100, false},
		{"snapshot/stream=large", n, meetings, true},
		{"snapshot/stream=small", n / 100, meetings / 100, true},
	} {
		b.Run("coldload/"+st.name, ColdLoadInStream(st.n, st.meetings, st.snapshots))
	}
	b.Run("coldload/default/stream=large", ColdLoadDefault(n, meetings, false))
	b.Run("coldload/default/stream=small", ColdLoadDefault(n/100, meetings/100, false))
	b.Run("coldload/default/crash/stream=large", ColdLoadDefault(n, meetings, true))
	b.Run("coldload/default/crash/stream=small", ColdLoadDefault(n/100, meetings/100, true))
	participants, queue := 100_000, 10_000
	if testing.Short() {
		participants, queue = 5_000, 500
	}
	b.Run("coldload/participants=100000/queue=10000/snapshots=off", ColdLoad(participants, queue, false))
	b.Run("coldload/participants=100000/queue=10000/snapshots=on", ColdLoad(participants, queue, true))
}

func BenchmarkRaw(b *testing.B) {
	for _, sync := range []Sync{LazySync, SyncAlways} {
		b.Run(fmt.Sprintf("guarded/callers=1/%v", sync), RawGuardedPublish(1, 1, sync))
		for _, callers := range []int{64, 256} {
			b.Run(fmt.Sprintf("guarded/callers=%d/%v", callers, sync), RawGuardedPublish(callers, 1000, sync))
		}
		for _, callers := range []int{64, 256} {
			b.Run(fmt.Sprintf("onesubject/callers=%d/%v", callers, sync), RawOneSubject(callers, sync))
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
