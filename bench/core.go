package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// DecideEvolve: one command through the pure core, Decide then Evolve: the
// engine's work per command besides sealing and I/O. The command ids are
// UUIDs, as the engine makes them.
func DecideEvolve(b *testing.B) {
	s := aggregate.NewState("m")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(c aggregate.Command) {
		d, err := aggregate.Decide(s, c, t0)
		if err != nil {
			b.Fatal(err)
		}
		for i := range d.Events {
			aggregate.Evolve(s, &d.Events[i])
		}
	}
	apply(aggregate.Command{ID: "h", Action: aggregate.AddParticipant{Participant: hostP}})
	apply(aggregate.Command{ID: "v", Action: aggregate.AddParticipant{Participant: viewerP("viewer")}})
	cmds := Cycle("viewer")
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(i))).String()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := cmds[i%len(cmds)]
		c.ID = ids[i%len(ids)]
		d, err := aggregate.Decide(s, c, t0.Add(time.Duration(i)))
		if err != nil {
			b.Fatal(err)
		}
		aggregate.Evolve(s, &d.Events[0])
	}
}

// EngineMemory: the Engine on the in-memory store, one caller, one meeting.
func EngineMemory(b *testing.B) {
	ctx := context.Background()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	Populate(b, eng, 1)
	cmds := Cycle("viewer")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := eng.Execute(ctx, meetingName(0), cmds[i%len(cmds)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perSecond(b, b.N, "cmds/s")
}

// IdleMeetingMemory reports the engine's memory per cached idle meeting
// after a host and a viewer ran commands commands each (a full idempotency
// window past 2*aggregate.CommandWindow). The store's own memory is not
// counted. One b.N iteration measures 2,000 meetings (200 with -short).
func IdleMeetingMemory(commands int) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		n := 2000
		if testing.Short() {
			n = 200
		}
		for range b.N {
			store := eventstore.NewMemory()
			// Snapshots off: Close would write them into the store, whose
			// heap is not the Engine's.
			eng, err := stage.New(store, stage.WithCacheSize(n), stage.WithSnapshotEvery(0))
			if err != nil {
				b.Fatal(err)
			}
			Populate(b, eng, n)
			cmds := Cycle("viewer")
			for i := range n {
				for j := range commands - 2 {
					if _, err := eng.Execute(ctx, meetingName(i), cmds[j%len(cmds)]); err != nil {
						b.Fatal(err)
					}
				}
			}
			with := heapInUse()
			eng.Close() // its goroutines (the idle sweep) hold it until then
			eng = nil
			without := heapInUse()
			b.ReportMetric(float64(with-without)/float64(n), "B/meeting")
			runtime.KeepAlive(store)
		}
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

var (
	hostP = aggregate.Participant{UserID: "host",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
	viewerP = func(id string) aggregate.Participant {
		return aggregate.Participant{UserID: id, Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}
	}
)

// meetingName names the benchmark meetings.
func meetingName(i int) string { return fmt.Sprintf("m%06d", i) }
