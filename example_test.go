package stage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

func Example() {
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store)
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	const meeting = "webinar-1"
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "bob", Permissions: viewer})

	// bob cannot go on stage before a host accepts him.
	_, err = eng.Join(ctx, meeting, "bob")
	fmt.Println(errors.Is(err, aggregate.ErrPermissionDenied))

	eng.RequestAccess(ctx, meeting, "bob")
	reqs, _ := eng.GetAccessRequests(ctx, meeting, "alice")
	fmt.Println("requests:", reqs[0].UserID, "at position", reqs[0].Position)

	res, _ := eng.GrantAccess(ctx, meeting, "alice", "bob", "carol")
	fmt.Println("granted at version", res.Version, "rejected:", res.Rejected[0].UserID)

	eng.Join(ctx, meeting, "bob")
	st, _ := eng.Status(ctx, meeting, "bob")
	fmt.Println("bob is", st)

	roster, _ := eng.Roster(ctx, meeting)
	fmt.Println("on stage:", roster.OnStage)
	// Output:
	// true
	// requests: bob at position 1
	// granted at version 4 rejected: carol
	// bob is OnStage
	// on stage: [bob]
}
