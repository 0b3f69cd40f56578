package projections_test

import (
	"context"
	"errors"
	"testing"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/storetest"
	"github.com/productdb/stage/projections"
)

// TestRunner_RosterNoMeeting: a meeting with no events up to the runner's
// position is no meeting (aggregate.ErrNoMeeting), as with Engine.Roster.
func TestRunner_RosterNoMeeting(t *testing.T) {
	ctx := context.Background()
	store := eventstore.NewMemory()
	r, err := projections.NewRunner(store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Roster(ctx, "nobody.here"); !errors.Is(err, aggregate.ErrNoMeeting) {
		t.Fatalf("Roster of a meeting with no events: %v, want ErrNoMeeting", err)
	}
	c := storetest.NewChain("m")
	if _, err := store.Append(ctx, "m", 0, c.Next(1)); err != nil {
		t.Fatal(err)
	}
	// Stored, but after the runner's position (it has not run).
	if _, err := r.Roster(ctx, "m"); !errors.Is(err, aggregate.ErrNoMeeting) {
		t.Fatalf("Roster of a meeting past the runner's position: %v, want ErrNoMeeting", err)
	}
}
