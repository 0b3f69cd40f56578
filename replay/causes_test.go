package replay_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

// meetingsLog runs the webinar scenario in each meeting, step by step in
// turn, and returns the log.
func meetingsLog(t testing.TB, meetings ...string) []events.Envelope {
	t.Helper()
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store, stage.WithClock(steppingClock()))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func(m string) (stage.Result, error){
		func(m string) (stage.Result, error) {
			return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: host})
		},
		func(m string) (stage.Result, error) {
			return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: viewer})
		},
		func(m string) (stage.Result, error) {
			return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "carol", Permissions: viewer})
		},
		func(m string) (stage.Result, error) { return eng.RequestAccess(ctx, m, "bob") },
		func(m string) (stage.Result, error) { return eng.GrantAccess(ctx, m, "alice", []string{"bob"}) },
		func(m string) (stage.Result, error) { return eng.Join(ctx, m, "bob") },
		func(m string) (stage.Result, error) { return eng.RequestAccess(ctx, m, "carol") },
		func(m string) (stage.Result, error) { return eng.DenyAccess(ctx, m, "alice", []string{"carol"}) },
		func(m string) (stage.Result, error) { return eng.Kick(ctx, m, "alice", []string{"bob"}) },
		func(m string) (stage.Result, error) { return eng.RequestAccess(ctx, m, "carol") },
		func(m string) (stage.Result, error) { return eng.GrantAccess(ctx, m, "alice", []string{"carol"}) },
		func(m string) (stage.Result, error) { return eng.Join(ctx, m, "carol") },
		func(m string) (stage.Result, error) { return eng.Leave(ctx, m, "carol") },
	}
	for _, step := range steps {
		for _, m := range meetings {
			if _, err := step(m); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
		}
	}
	var out []events.Envelope
	for e, err := range store.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// at returns the index in evs of a meeting's version.
func at(t *testing.T, evs []events.Envelope, meetingID string, version uint64) int {
	t.Helper()
	i := slices.IndexFunc(evs, func(e events.Envelope) bool { return e.MeetingID == meetingID && e.Version == version })
	if i < 0 {
		t.Fatalf("no version %d of %s", version, meetingID)
	}
	return i
}

// checkGroups holds the report's groups to its findings: every finding is
// a cause or follows from one, once.
func checkGroups(t *testing.T, rep *replay.Report) []replay.Group {
	t.Helper()
	gs := rep.Groups()
	n := 0
	for _, g := range gs {
		n += 1 + len(g.Consequences)
		if rep.Findings[g.Index].Cause != nil {
			t.Errorf("group cause %d follows from %d", g.Index, *rep.Findings[g.Index].Cause)
		}
		cs := rep.Consequences(g.Index)
		if len(cs) != len(g.Consequences) {
			t.Errorf("Consequences(%d) gives %d, the group %d", g.Index, len(cs), len(g.Consequences))
		}
		for _, i := range g.Consequences {
			if i <= g.Index || *rep.Findings[i].Cause != g.Index {
				t.Errorf("finding %d in the group of %d: cause %v", i, g.Index, rep.Findings[i].Cause)
			}
		}
	}
	if n != len(rep.Findings) || len(rep.Causes()) != len(gs) {
		t.Errorf("groups hold %d of %d findings; %d causes, %d groups", n, len(rep.Findings), len(rep.Causes()), len(gs))
	}
	return gs
}

func verifyLog(t *testing.T, evs []events.Envelope) *replay.Report {
	t.Helper()
	rep, err := replay.Verify(context.Background(), seq(evs))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// One edited time reports once: every event after it is "older" than the
// edited time, and each of those findings follows from the edit.
func TestVerify_editedTimeIsOneCause(t *testing.T) {
	log := meetingsLog(t, "m1")
	for _, resealed := range []bool{false, true} {
		evs := clone(t, log)
		i := at(t, evs, "m1", 3)
		evs[i].Time = evs[i].Time.Add(time.Hour)
		want := replay.HashMismatch
		if resealed {
			reseal(t, evs, i)
			want = replay.TimeReversed // the first event older than the edited one
		}
		rep := verifyLog(t, evs)
		gs := checkGroups(t, rep)
		if len(rep.Findings) != 1+10 && len(rep.Findings) != 10 {
			t.Errorf("resealed %v: %d findings, want every one still listed", resealed, len(rep.Findings))
		}
		if len(gs) != 1 || gs[0].Cause.Kind != want || len(gs[0].Consequences) < 9 {
			t.Fatalf("resealed %v: groups %+v\nfindings %v", resealed, gs, rep.Findings)
		}
		for _, c := range gs[0].Consequences {
			if rep.Findings[c].Kind != replay.TimeReversed {
				t.Errorf("consequence %v", rep.Findings[c])
			}
		}
	}
}

// A back-dated event whose time makes later rules decide otherwise (an
// invitation lapses early): the illegal and mismatched events after it
// follow from it.
func TestVerify_backdatedIsOneCause(t *testing.T) {
	evs := clone(t, policyWebinar(t))
	i := slices.IndexFunc(evs, func(e events.Envelope) bool { return e.Type == events.TypeAccessGranted })
	evs[i].Time = evs[i].Time.Add(-2 * time.Minute) // the invitations (1m) lapse before the joins
	reseal(t, evs, i)
	rep := verifyLog(t, evs)
	gs := checkGroups(t, rep)
	if len(gs) != 1 || gs[0].Cause.Kind != replay.TimeReversed || gs[0].Cause.Version != evs[i].Version || len(gs[0].Consequences) == 0 {
		t.Fatalf("groups %+v\nfindings %v", gs, rep.Findings)
	}
}

// Two edits are two causes: in two meetings, or far apart in one.
func TestVerify_independentEditsAreTwoCauses(t *testing.T) {
	log := meetingsLog(t, "m1", "m2")
	t.Run("two meetings", func(t *testing.T) {
		evs := clone(t, log)
		for _, m := range []string{"m1", "m2"} {
			i := at(t, evs, m, 4)
			evs[i].Time = evs[i].Time.Add(time.Hour)
		}
		rep := verifyLog(t, evs)
		gs := checkGroups(t, rep)
		if len(gs) != 2 || gs[0].Cause.MeetingID != "m1" || gs[1].Cause.MeetingID != "m2" {
			t.Fatalf("groups %+v\nfindings %v", gs, rep.Findings)
		}
		for _, g := range gs {
			for _, c := range g.Consequences {
				if rep.Findings[c].MeetingID != g.Cause.MeetingID {
					t.Errorf("%v follows from %v", rep.Findings[c], g.Cause)
				}
			}
		}
	})
	t.Run("far apart", func(t *testing.T) {
		evs := clone(t, log)
		a, b := at(t, evs, "m1", 2), at(t, evs, "m1", 12)
		evs[a].Time = evs[a].Time.Add(time.Hour)
		evs[b].Actor = "bob" // carol's join, edited
		rep := verifyLog(t, evs)
		gs := checkGroups(t, rep)
		if len(gs) != 2 || gs[0].Cause.Version != 2 || gs[1].Cause.Version != 12 || gs[1].Cause.Kind != replay.HashMismatch {
			t.Fatalf("groups %+v\nfindings %v", gs, rep.Findings)
		}
		// Every event after version 2 is older than its edited time,
		// version 12 too: those follow from the first edit.
		for _, f := range rep.Findings {
			if f.Kind == replay.TimeReversed && *f.Cause != gs[0].Index {
				t.Errorf("%v follows from %v", f, rep.Findings[*f.Cause])
			}
		}
	})
	t.Run("deleted in two meetings", func(t *testing.T) {
		evs := clone(t, log)
		evs = slices.Delete(evs, at(t, evs, "m2", 5), at(t, evs, "m2", 5)+1)
		evs = slices.Delete(evs, at(t, evs, "m1", 5), at(t, evs, "m1", 5)+1)
		rep := verifyLog(t, evs)
		gs := checkGroups(t, rep)
		if len(gs) != 2 || gs[0].Cause.Kind != replay.VersionGap || gs[1].Cause.Kind != replay.VersionGap || len(gs[0].Consequences) == 0 {
			t.Fatalf("groups %+v\nfindings %v", gs, rep.Findings)
		}
	})
}

// Two swapped events are one cause: the gap, the event out of place, and
// the gap after it.
func TestVerify_swapIsOneCause(t *testing.T) {
	evs := clone(t, meetingsLog(t, "m1"))
	evs[5], evs[6] = evs[6], evs[5]
	rep := verifyLog(t, evs)
	gs := checkGroups(t, rep)
	if len(gs) != 1 || gs[0].Cause.Kind != replay.VersionGap || len(gs[0].Consequences) < 2 {
		t.Fatalf("groups %+v\nfindings %v", gs, rep.Findings)
	}
}
