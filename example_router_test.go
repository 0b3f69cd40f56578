package stage_test

import (
	"context"
	"fmt"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

// A Router watches a meeting once and serves each user's stream: here the
// stream of viewer bob. An SSE handler writes each notification as
// "id: <n.ID>" and "data: <its JSON>"; the browser sends the last id back
// as Last-Event-ID when it reconnects, and the handler passes it to
// Subscribe.
func ExampleEngine_NewRouter() {
	ctx := context.Background()
	eng, _ := stage.New(eventstore.NewMemory())
	defer eng.Close()
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob", Permissions: viewer})

	r, _ := eng.NewRouter("w")
	defer r.Close()
	sub, _ := r.Subscribe(ctx, "bob", "") // from now on
	defer sub.Close()
	live := <-sub.C() // caught up: act now, nothing is missed
	fmt.Println(live.ID, live.Type)

	eng.RequestAccess(ctx, "w", "bob")
	eng.GrantAccess(ctx, "w", "alice", []string{"bob"})
	eng.Join(ctx, "w", "bob")
	eng.Kick(ctx, "w", "alice", []string{"bob"})
	for n := range sub.C() {
		switch n.Type {
		case projections.StageStatusUpdate:
			fmt.Println(n.ID, n.Type, n.Status)
		case projections.StageRosterUpdate:
			fmt.Println(n.ID, n.Type, n.Stage, "to everyone:", n.Recipient == projections.Everyone)
		default:
			fmt.Println(n.ID, n.Type)
		}
		if n.Version == 6 && n.Type == projections.StageRosterUpdate {
			break
		}
	}
	// Output:
	// 2 live
	// 3.0 stageStatusUpdate RequestedToJoinStage
	// 4.0 stageStatusUpdate AcceptedToJoinStage
	// 4.1 stageRequestApproved
	// 5.0 stageStatusUpdate OnStage
	// 5.1 stageRosterUpdate [{bob joined}] to everyone: true
	// 6.0 stageStatusUpdate OffStage
	// 6.1 stageRosterUpdate [{bob left}] to everyone: true
}
