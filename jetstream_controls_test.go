package stage_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// TestJetStream_StageControls runs the stage controls on a real embedded
// JetStream server with the engine's own timers: a backstage start, a
// request that lapses by RequestTTL with no tick from the test, the
// requests switch with its denial, a co-host, an explicit decline, a user
// brought on stage and the stage ended for everyone. A second Engine, cold,
// loads the same state from the stream, and replay.Verify re-decides every
// event clean.
func TestJetStream_StageControls(t *testing.T) {
	ctx := jsCtx(t)
	nc := jsConnect(t, jsEmbedded(t))
	eng, st := jsEngine(t, nc)
	const m = "controls"
	must := func(_ stage.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	refused := func(want error) func(stage.Result, error) {
		return func(_ stage.Result, err error) {
			t.Helper()
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		}
	}
	for _, p := range []aggregate.Participant{
		{UserID: "host", Permissions: aggregate.PresetHost.Permissions()},
		{UserID: "mod", Permissions: aggregate.PresetViewer.Permissions()},
		{UserID: "ann", Permissions: aggregate.PresetViewer.Permissions()},
		{UserID: "ben", Permissions: aggregate.PresetViewer.Permissions()},
		{UserID: "spk", Permissions: aggregate.PresetSpeaker.Permissions()},
	} {
		must(eng.AddParticipant(ctx, m, p))
	}
	const ttl = 150 * time.Millisecond
	must(eng.Configure(ctx, m, "host", aggregate.Settings{StartBackstage: true, RequestTTL: ttl, AllowBringOnStage: true}))
	refused(aggregate.ErrBackstage)(eng.RequestAccess(ctx, m, "ann"))
	must(eng.Join(ctx, m, "spk"))
	must(eng.StartStage(ctx, m, "host"))

	// The engine's timer records the request's lapse.
	must(eng.RequestAccess(ctx, m, "ann"))
	jsWaitFor(t, "ann's request to lapse", func() bool {
		for e, err := range st.Load(ctx, m, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := e.Payload.(*events.Lapsed); ok && p.Lapses[0].Kind == events.RequestExpired && p.Lapses[0].UserID == "ann" {
				return true
			}
		}
		return false
	})
	if s, _ := eng.Status(ctx, m, "ann"); s != aggregate.OffStage {
		t.Fatalf("ann is %v after her request lapsed", s)
	}

	must(eng.PromoteCoHost(ctx, m, "host", "mod"))
	must(eng.RequestAccess(ctx, m, "ann"))
	must(eng.RequestAccess(ctx, m, "ben"))
	must(eng.GrantAccess(ctx, m, "mod", []string{"ann"}))
	must(eng.DeclineInvitation(ctx, m, "ann"))
	res, err := eng.CloseRequests(ctx, m, "host", true)
	if err != nil || !slices.Equal(res.Events[len(res.Events)-1].Payload.(*events.RequestsClosed).Denied, []string{"ben"}) {
		t.Fatalf("CloseRequests: %+v, %v", res, err)
	}
	refused(aggregate.ErrRequestsClosed)(eng.RequestAccess(ctx, m, "ben"))
	must(eng.BringOnStage(ctx, m, "host", "ben"))
	refused(aggregate.ErrPermissionDenied)(eng.EndStage(ctx, m, "mod"))
	res, err = eng.EndStage(ctx, m, "host")
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Events[len(res.Events)-1].Payload.(*events.StageEnded); !slices.Equal(p.OnStage, []string{"ben", "spk"}) {
		t.Fatalf("StageEnded %+v", p)
	}

	// A cold Engine loads the same state; the log verifies clean.
	cold, _ := jsEngine(t, nc)
	if _, err := cold.Roster(ctx, m); err != nil {
		t.Fatal(err)
	}
	a, b := eng.CachedStateForTest(m), cold.CachedStateForTest(m)
	if !a.Equal(b) || b.Phase() != aggregate.PhaseEnded || slices.Equal(b.CoHosts(), nil) {
		t.Fatalf("the cold Engine's state differs (phase %v, co-hosts %v)", b.Phase(), b.CoHosts())
	}
	rep, err := replay.Verify(ctx, st.ReadAll(ctx, 1))
	if err != nil || len(rep.Findings) > 0 {
		t.Fatalf("verify: %v, findings %v", err, rep.Findings)
	}
}
