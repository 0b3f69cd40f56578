package stage

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

func TestEngine_cacheBound(t *testing.T) {
	ctx := context.Background()
	eng, err := New(eventstore.NewMemory(), WithCacheSize(2))
	if err != nil {
		t.Fatal(err)
	}
	host := aggregate.Participant{UserID: "h", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
	for round := range 3 {
		for i := range 5 {
			m := fmt.Sprintf("m%d", i)
			if round == 0 {
				if _, err := eng.AddParticipant(ctx, m, host); err != nil {
					t.Fatal(err)
				}
			}
			// Alternate request and leave: each only succeeds if the
			// reloaded state knows what happened before eviction.
			if round%2 == 0 {
				_, err = eng.RequestAccess(ctx, m, "h")
			} else {
				_, err = eng.Leave(ctx, m, "h")
			}
			if err != nil {
				t.Fatalf("round %d meeting %s: %v", round, m, err)
			}
			if n := len(eng.meetings); n > 2 || eng.lru.Len() != n {
				t.Fatalf("cache holds %d meetings (lru %d), bound 2", n, eng.lru.Len())
			}
		}
	}
	st, err := eng.Status(ctx, "m0", "h")
	if err != nil || st != aggregate.AcceptedToJoinStage {
		t.Fatalf("m0 h: %v %v, want AcceptedToJoinStage", st, err)
	}
}

// BenchmarkIdleMeetingMemory reports the engine's memory per cached idle
// meeting: a host and a viewer who requested, was granted, joined and left
// (six events), and the same after 200 more commands, when the meeting's
// idempotency window (aggregate.CommandWindow) is full. The store's own
// memory is not counted.
func BenchmarkIdleMeetingMemory(b *testing.B) {
	b.Run("commands=6", func(b *testing.B) { benchIdleMeeting(b, 0) })
	b.Run("commands=206", func(b *testing.B) { benchIdleMeeting(b, 100) })
}

func benchIdleMeeting(b *testing.B, cycles int) {
	ctx := context.Background()
	const n = 2000
	var store *eventstore.Memory
	host := aggregate.Participant{UserID: "host", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
	viewer := aggregate.Participant{UserID: "viewer", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}
	for b.Loop() {
		store = eventstore.NewMemory()
		eng, err := New(store, WithCacheSize(n))
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			m := fmt.Sprintf("meeting-%06d", i)
			must := func(_ Result, err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			must(eng.AddParticipant(ctx, m, host))
			must(eng.AddParticipant(ctx, m, viewer))
			must(eng.RequestAccess(ctx, m, "viewer"))
			must(eng.GrantAccess(ctx, m, "host", "viewer"))
			must(eng.Join(ctx, m, "viewer"))
			must(eng.Leave(ctx, m, "viewer"))
			for range cycles {
				must(eng.RequestAccess(ctx, m, "viewer"))
				must(eng.CancelRequestAccess(ctx, m, "viewer"))
			}
		}
		with := heap()
		runtime.KeepAlive(eng)
		eng = nil
		without := heap()
		b.ReportMetric(float64(with-without)/n, "B/meeting")
		runtime.KeepAlive(eng)
	}
	runtime.KeepAlive(store)
}

func heap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
