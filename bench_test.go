package stage_test

import (
	"context"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// cycle is the command mix of the engine benchmarks: a viewer requests, a
// host grants, the viewer joins and leaves. Every command is accepted.
func cycle(viewer string) []aggregate.Command {
	return []aggregate.Command{
		{Actor: viewer, Action: aggregate.RequestAccess{}},
		{Actor: "host", Action: aggregate.GrantAccess{Users: []string{viewer}}},
		{Actor: viewer, Action: aggregate.Join{}},
		{Actor: viewer, Action: aggregate.Leave{}},
	}
}

func setupMeeting(b *testing.B, eng *stage.Engine, meeting string, viewers ...string) {
	ctx := context.Background()
	if _, err := eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "host",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}); err != nil {
		b.Fatal(err)
	}
	for _, v := range viewers {
		if _, err := eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: v,
			Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEngineMemory: one caller, one meeting, on the in-memory store.
func BenchmarkEngineMemory(b *testing.B) {
	ctx := context.Background()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	setupMeeting(b, eng, "m", "bob")
	cmds := cycle("bob")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := eng.Execute(ctx, "m", cmds[i%len(cmds)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}
