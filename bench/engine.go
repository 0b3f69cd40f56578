package bench

import (
	"context"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore/natsstore"
)

// stageEnv is an Engine on the JetStream store of an embedded server.
type stageEnv struct {
	*env
	store *natsstore.Store
	eng   *stage.Engine
}

func startStage(b testing.TB, sync Sync, opts ...stage.Option) *stageEnv {
	b.Helper()
	e := startEnv(b, sync)
	var sopts []natsstore.Option
	if sync == SyncAlways {
		// What OpenEmbedded does: the server syncs before it acknowledges.
		sopts = append(sopts, natsstore.WithGroupCommit(natsstore.DefaultGroupMin))
	}
	store, err := natsstore.New(context.Background(), e.nc, sopts...)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := stage.New(store, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return &stageEnv{env: e, store: store, eng: eng}
}

func (s *stageEnv) close() {
	s.eng.Close()
	s.store.Close()
	s.env.close()
}

// Cycle is the command mix of the engine workloads: a viewer requests, a
// host grants, the viewer joins and leaves. Every command is accepted, and
// each is one event.
func Cycle(viewer string) []aggregate.Command {
	return []aggregate.Command{
		{Actor: viewer, Action: aggregate.RequestAccess{}},
		{Actor: "host", Action: aggregate.GrantAccess{Users: []string{viewer}}},
		{Actor: viewer, Action: aggregate.Join{}},
		{Actor: viewer, Action: aggregate.Leave{}},
	}
}

// Populate adds a host and a viewer to each meeting.
func Populate(b testing.TB, eng *stage.Engine, meetings int) {
	b.Helper()
	ctx := context.Background()
	for i := range meetings {
		m := meetingName(i)
		if _, err := eng.AddParticipant(ctx, m, hostP); err != nil {
			b.Fatal(err)
		}
		if _, err := eng.AddParticipant(ctx, m, viewerP("viewer")); err != nil {
			b.Fatal(err)
		}
	}
}

// EngineJetStream: the Engine on the JetStream store, callers goroutines
// over meetings meetings (each caller owns its own meetings, as with
// RawGuardedPublish), running the request-grant-join-leave cycle.
func EngineJetStream(callers, meetings int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		s := startStage(b, sync)
		defer s.close()
		Populate(b, s.eng, meetings)
		cmds := Cycle("viewer")
		step := make([]int, meetings)
		perCaller := max(meetings/callers, 1)
		ctx := context.Background()
		lat := runCallers(b, callers, func(c, i int) error {
			m := (c + (i%perCaller)*callers) % meetings
			cmd := cmds[step[m]%len(cmds)]
			step[m]++
			_, err := s.eng.Execute(ctx, meetingName(m), cmd)
			return err
		})
		perSecond(b, b.N, "cmds/s")
		lat.report(b)
	}
}
