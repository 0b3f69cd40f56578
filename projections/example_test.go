package projections_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

func ExampleRunner() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := eventstore.NewMemory()
	eng, _ := stage.New(store)

	// Forward notifications as the runner applies events.
	hook := projections.WithEventHook(func(before *aggregate.State, e *events.Envelope) {
		for _, n := range projections.Notify(before, e) {
			if n.Type != projections.StageStatusUpdate {
				fmt.Println(strings.TrimSpace(fmt.Sprint("notify ", n.Recipient, ": ", n.Type, " ", n.UserID)))
			}
		}
	})
	r, _ := projections.NewRunner(store, hook)
	go r.Run(ctx)

	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}})
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob",
		Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}})
	res, _ := eng.RequestAccess(ctx, "w", "bob")

	// Read your own write.
	r.WaitFor(ctx, res.Seq)
	roster, _ := r.Roster(ctx, "w")
	fmt.Println("queue:", roster.Requests[0].UserID, "at version", roster.Version)
	// Output:
	// notify alice: newStageRequest bob
	// notify alice: stageAccessRequestUpdate
	// queue: bob at version 3
}
