package projections_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/projections"
)

// A client holding the queue and applying each StageAccessRequestUpdate's
// changes, as QueueChange's doc says, holds the queue after every event:
// random commands on a meeting of two hosts and six viewers, decided by
// the rules.
func TestQueueChanges_rebuildTheQueue(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := aggregate.NewState("m")
		now := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
		var client []string // the queue as a host's client holds it
		users := []string{"h1", "h2", "v1", "v2", "v3", "v4", "v5", "v6"}
		step := func(cmd aggregate.Command) {
			d, err := aggregate.Decide(s, cmd, now)
			if err != nil {
				return
			}
			for i := range d.Events {
				e := &d.Events[i]
				e.ID[0], e.ID[1] = byte(s.Version()), byte(s.Version()>>8)
				if err := e.Seal(s.LastHash()); err != nil {
					t.Fatal(err)
				}
				updates := 0
				for _, n := range projections.NotifyStep(s, e) {
					if n.Type != projections.StageAccessRequestUpdate || n.Recipient != s.Hosts()[0] {
						continue
					}
					updates++
					for _, c := range n.Queue {
						if c.Change == projections.QueueRemoved {
							client = slices.DeleteFunc(client, func(u string) bool { return u == c.UserID })
						}
					}
					for _, c := range n.Queue {
						if c.Change == projections.QueueAdded {
							client = slices.Insert(client, c.Position-1, c.UserID)
						}
					}
					if len(client) != n.QueueLength {
						t.Fatalf("version %d: the client holds %d, QueueLength %d", e.Version, len(client), n.QueueLength)
					}
				}
				var want []string
				for _, r := range projections.Requests(s) {
					want = append(want, r.UserID)
				}
				if len(s.Hosts()) > 0 && !slices.Equal(client, want) {
					t.Fatalf("version %d (%s, %d updates): the client holds %v, the queue is %v", e.Version, e.Type, updates, client, want)
				}
			}
			now = now.Add(time.Duration(rapid.IntRange(0, 2).Draw(t, "tick")) * time.Second)
		}
		for i, u := range users {
			p := aggregate.Permissions{StageAccess: aggregate.CanRequest}
			if i < 2 {
				p = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
			}
			step(aggregate.Command{ID: fmt.Sprint("add-", u), Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: p}}})
		}
		for i := range rapid.IntRange(10, 60).Draw(t, "steps") {
			v := rapid.SampledFrom(users[2:]).Draw(t, "viewer")
			h := rapid.SampledFrom(users[:2]).Draw(t, "host")
			var a aggregate.Action
			actor := v
			switch rapid.IntRange(0, 5).Draw(t, "action") {
			case 0, 1:
				a = aggregate.RequestAccess{}
			case 2:
				a = aggregate.CancelRequestAccess{}
			case 3:
				actor, a = h, aggregate.GrantAccess{Users: []string{v}}
			case 4:
				actor, a = h, aggregate.DenyAccess{Users: []string{v}}
			case 5:
				actor, a = "", aggregate.RemoveParticipant{UserID: v}
			}
			step(aggregate.Command{ID: fmt.Sprint("c", i), Actor: actor, Action: a})
		}
	})
}
