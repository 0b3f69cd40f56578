package stage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/projections"
)

// TestRouter_stageControls: the stage controls' notifications for
// everyone (the phase, the requests switch, the co-hosts in the roster
// update) reach every subscription, an anonymous one included, and a
// co-host's subscription carries the moderators' notifications.
func TestRouter_stageControls(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		setupMeeting(ctx, t, eng)
		r, err := eng.NewRouter("w")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		subs := map[string]*stage.Subscription{}
		for _, u := range []string{"bob", "carol", projections.Everyone} {
			if subs[u], err = r.Subscribe(ctx, u, ""); err != nil {
				t.Fatal(err)
			}
		}
		must := func(_ stage.Result, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(eng.PromoteCoHost(ctx, "w", "alice", "bob"))
		must(eng.RequestAccess(ctx, "w", "carol"))
		must(eng.CloseRequests(ctx, "w", "alice", false))
		res, err := eng.EndStage(ctx, "w", "alice")
		if err != nil {
			t.Fatal(err)
		}
		all, _ := untilLive(t, eng.Watch(ctx, "w", res.Version))
		last := all[len(all)-1]
		if last.Type != projections.StagePhaseUpdate || last.Phase.String() != "Ended" {
			t.Fatalf("last notification %+v", last)
		}
		types := func(ns []projections.Notification) []string {
			var out []string
			for _, n := range notLive(ns) {
				out = append(out, string(n.Type))
			}
			return out
		}
		for u, want := range map[string][]string{
			projections.Everyone: {"stageRosterUpdate", "stageRequestsClosed", "stagePhaseUpdate"},
			"bob": {"stageRoleUpdate", "stageRosterUpdate", "newStageRequest", "stageAccessRequestUpdate",
				"stageRequestsClosed", "stageAccessRequestUpdate", "stagePhaseUpdate"},
			"carol": {"stageRosterUpdate", "stageStatusUpdate", "stageRequestsClosed", "stageStatusUpdate", "stagePhaseUpdate"},
		} {
			if got := types(read(t, subs[u], last.ID)); !slices.Equal(got, want) {
				t.Errorf("%q: %v, want %v", u, got, want)
			}
		}
	})
}
