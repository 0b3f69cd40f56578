package stage_test

import (
	"context"
	"slices"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore/natsstore"
)

// TestJetStream_AnyMeetingIDs runs meetings whose ids hold '.', '@',
// spaces, non-ASCII and a wildcard, with user ids like them, end to end on
// a real embedded JetStream store: commands, a keyed retry, Load, Watch,
// snapshots and a cold start from them. Each meeting's events are on one
// subject of its own (natsstore.SubjectToken).
func TestJetStream_AnyMeetingIDs(t *testing.T) {
	meetings := []string{"bob@example.com", "user.123", "a b", "ünï.cödé", ">"}
	const alice, bob = "alice@example.com", "Bob B."
	srv := jsEmbedded(t)
	nc := jsConnect(t, srv)
	ctx := jsCtx(t)
	st, err := natsstore.New(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := stage.New(st, stage.WithClock(jsUTC), stage.WithSnapshotEvery(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range meetings {
		steps := []func() (stage.Result, error){
			func() (stage.Result, error) {
				return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: alice, Permissions: jsPresets[0]})
			},
			func() (stage.Result, error) {
				return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: bob, Permissions: jsPresets[1]})
			},
			func() (stage.Result, error) { return eng.RequestAccess(ctx, m, bob) },
			func() (stage.Result, error) { return eng.GrantAccess(ctx, m, alice, []string{bob}) },
			func() (stage.Result, error) {
				return eng.Execute(ctx, m, aggregate.Command{Actor: bob, Action: aggregate.Join{}}, stage.WithIdempotencyKey("join-1"))
			},
		}
		for i, step := range steps {
			if res, err := step(); err != nil || res.Version != uint64(i+1) {
				t.Fatalf("meeting %q, step %d: version %d, %v", m, i+1, res.Version, err)
			}
		}
		res, err := eng.Execute(ctx, m, aggregate.Command{Actor: bob, Action: aggregate.Join{}}, stage.WithIdempotencyKey("join-1"))
		if err != nil || !res.Duplicate || res.Version != 5 {
			t.Fatalf("meeting %q: keyed retry: %+v, %v", m, res, err)
		}
	}
	for _, m := range meetings {
		n := 0
		for e, err := range st.Load(ctx, m, 0) {
			if err != nil || e.MeetingID != m {
				t.Fatalf("Load(%q): event of %q, %v", m, e.MeetingID, err)
			}
			n++
		}
		if n != 5 {
			t.Fatalf("Load(%q): %d events, want 5", m, n)
		}
		r, err := eng.Roster(ctx, m)
		if err != nil || !slices.Equal(r.OnStage, []string{bob}) {
			t.Fatalf("Roster(%q): %+v, %v", m, r, err)
		}
		wctx, cancel := context.WithCancel(ctx)
		var versions []uint64
		for n, err := range eng.Watch(wctx, m, 1) {
			if err != nil || n.MeetingID != m {
				t.Fatalf("Watch(%q): notification of %q, %v", m, n.MeetingID, err)
			}
			versions = append(versions, n.Version)
			if n.Version == 5 {
				break
			}
		}
		cancel()
		if len(versions) == 0 || versions[len(versions)-1] != 5 {
			t.Fatalf("Watch(%q): versions %v, want up to 5", m, versions)
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	// Snapshots, one per meeting, and a cold start from them.
	for _, m := range meetings {
		snap, found, err := st.LoadSnapshot(ctx, m)
		if err != nil || !found || snap.Version < 4 {
			t.Fatalf("LoadSnapshot(%q): version %d, found %v, %v", m, snap.Version, found, err)
		}
	}
	eng2, err := stage.New(st, stage.WithClock(jsUTC))
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	for _, m := range meetings {
		if s, err := eng2.Status(ctx, m, bob); err != nil || s != aggregate.OnStage {
			t.Fatalf("cold Status(%q, bob): %v, %v", m, s, err)
		}
		if _, err := eng2.Leave(ctx, m, bob); err != nil {
			t.Fatalf("cold Leave(%q): %v", m, err)
		}
	}
	// Every event is on its meeting's one subject.
	for e, err := range st.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(meetings, e.MeetingID) {
			t.Fatalf("ReadAll: event of meeting %q", e.MeetingID)
		}
	}
}
