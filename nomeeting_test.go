package stage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// TestEngine_noMeeting: reads and commands other than AddParticipant on a
// meeting with no events fail with aggregate.ErrNoMeeting and store
// nothing; another Engine's AddParticipant on the same store makes the
// meeting exist for this one too (its cached "no meeting" is not trusted).
func TestEngine_noMeeting(t *testing.T) {
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const m = "nobody-here"
	want := func(what string, err error) {
		t.Helper()
		var ae *aggregate.Error
		if !errors.Is(err, aggregate.ErrNoMeeting) || !errors.As(err, &ae) {
			t.Errorf("%s: %v, want ErrNoMeeting", what, err)
		}
		if errors.Is(err, aggregate.ErrNotParticipant) || errors.Is(err, aggregate.ErrPermissionDenied) {
			t.Errorf("%s: %v is more than ErrNoMeeting", what, err)
		}
	}
	_, err = eng.Roster(ctx, m)
	want("Roster", err)
	_, err = eng.Status(ctx, m, "alice")
	want("Status", err)
	_, err = eng.GetAccessRequests(ctx, m, "alice")
	want("GetAccessRequests", err)
	for name, f := range map[string]func() (stage.Result, error){
		"RequestAccess":     func() (stage.Result, error) { return eng.RequestAccess(ctx, m, "bob") },
		"GrantAccess":       func() (stage.Result, error) { return eng.GrantAccess(ctx, m, "alice", []string{"bob"}) },
		"Join":              func() (stage.Result, error) { return eng.Join(ctx, m, "bob") },
		"Configure":         func() (stage.Result, error) { return eng.Configure(ctx, m, "alice", aggregate.Settings{}) },
		"RemoveParticipant": func() (stage.Result, error) { return eng.RemoveParticipant(ctx, m, "bob") },
		"Disconnect":        func() (stage.Result, error) { return eng.Disconnect(ctx, m, "bob") },
	} {
		res, err := f()
		want(name, err)
		if res.Version != 0 {
			t.Errorf("%s: version %d", name, res.Version)
		}
	}
	for e, err := range store.ReadAll(ctx, 0) {
		t.Fatalf("stored %+v, %v", e, err)
	}

	// Another engine starts the meeting; this one sees it.
	other, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: aggregate.PresetHost.Permissions()}); err != nil {
		t.Fatal(err)
	}
	if r, err := eng.Roster(ctx, m); err != nil || r.Version != 1 {
		t.Fatalf("Roster after another engine's AddParticipant: %+v, %v", r, err)
	}
	if _, err := eng.Status(ctx, m, "bob"); !errors.Is(err, aggregate.ErrNotParticipant) {
		t.Errorf("Status of a non-participant: %v, want ErrNotParticipant", err)
	}
	if reqs, err := eng.GetAccessRequests(ctx, m, "alice"); err != nil || len(reqs) != 0 {
		t.Errorf("GetAccessRequests: %v, %v", reqs, err)
	}

	// A command on a cached empty meeting is decided again on the store's
	// head before it is refused.
	const m2 = "started-elsewhere"
	_, err = eng.Roster(ctx, m2)
	want("Roster of m2", err)
	if _, err := other.AddParticipant(ctx, m2, aggregate.Participant{UserID: "alice", Permissions: aggregate.PresetHost.Permissions()}); err != nil {
		t.Fatal(err)
	}
	if res, err := eng.Configure(ctx, m2, "alice", aggregate.Settings{}); err != nil || res.Version != 2 {
		t.Fatalf("Configure on a meeting another engine started: %+v, %v", res, err)
	}
}
