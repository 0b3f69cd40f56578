package aggregate_test

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// At shows a meeting as it is at a time, with the lapses due applied; a Tick
// decided at that time records them.
func ExampleAt() {
	start := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	s := aggregate.NewState("webinar-1")
	apply := func(now time.Time, actor string, a aggregate.Action) aggregate.Decision {
		d, err := aggregate.Decide(s, aggregate.Command{ID: uuid.NewString(), Actor: actor, Action: a}, now)
		if err != nil {
			panic(err)
		}
		for i := range d.Events {
			aggregate.Evolve(s, &d.Events[i])
		}
		return d
	}
	apply(start, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "alice",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}})
	apply(start, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "bob",
		Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}})
	apply(start, "alice", aggregate.Configure{Settings: aggregate.Settings{InvitationTTL: 2 * time.Minute}})
	apply(start, "alice", aggregate.GrantAccess{Users: []string{"bob"}})

	fmt.Println("next deadline:", aggregate.NextDeadline(s).Format("15:04:05"))
	later := start.Add(3 * time.Minute)
	fmt.Println("bob at 14:03:", aggregate.At(s, later).Status("bob"), "| recorded:", s.Status("bob"))

	d := apply(later, "", aggregate.Tick{})
	fmt.Println(d.Events[0].Payload.(*events.Lapsed).Lapses[0])
	fmt.Println("bob now:", s.Status("bob"))
	// Output:
	// next deadline: 14:02:00
	// bob at 14:03: OffStage | recorded: AcceptedToJoinStage
	// bob: invitation expired at 2026-11-29T14:02:00Z (InvitationTTL 2m0s, since 2026-11-29T14:00:00Z, was AcceptedToJoinStage)
	// bob now: OffStage
}
