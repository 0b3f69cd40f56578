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
	host, viewer := aggregate.PresetHost.Permissions(), aggregate.PresetViewer.Permissions()
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "alice@example.com", Permissions: host})
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "bob.b", Permissions: viewer})

	// bob cannot go on stage before a host accepts him.
	_, err = eng.Join(ctx, meeting, "bob.b")
	fmt.Println(errors.Is(err, aggregate.ErrPermissionDenied))

	eng.RequestAccess(ctx, meeting, "bob.b")
	reqs, _ := eng.GetAccessRequests(ctx, meeting, "alice@example.com")
	fmt.Println("requests:", reqs[0].UserID, "at position", reqs[0].Position)

	res, _ := eng.GrantAccess(ctx, meeting, "alice@example.com", []string{"bob.b", "carol"})
	fmt.Println("granted at version", res.Version, "rejected:", res.Rejected[0].UserID)

	// A command that may be retried carries the caller's idempotency key:
	// the retry appends nothing and reports the first outcome.
	res, _ = eng.Join(ctx, meeting, "bob.b", stage.WithIdempotencyKey("req-7f3a"))
	again, _ := eng.Join(ctx, meeting, "bob.b", stage.WithIdempotencyKey("req-7f3a"))
	fmt.Println("joined at version", res.Version, "retry duplicate:", again.Duplicate, "at version", again.Version)
	st, _ := eng.Status(ctx, meeting, "bob.b")
	fmt.Println("bob is", st)

	roster, _ := eng.Roster(ctx, meeting)
	fmt.Println("on stage:", roster.OnStage)

	// A kick (or a deny) with a reason, recorded in the event.
	res, _ = eng.Kick(ctx, meeting, "alice@example.com", []string{"bob.b"}, stage.WithReason("off topic"))
	fmt.Println("kicked at version", res.Version)

	// A meeting nobody started is no meeting.
	_, err = eng.Roster(ctx, "webinar-2")
	fmt.Println(errors.Is(err, aggregate.ErrNoMeeting))
	// Output:
	// true
	// requests: bob.b at position 1
	// granted at version 4 rejected: carol
	// joined at version 5 retry duplicate: true at version 5
	// bob is OnStage
	// on stage: [bob.b]
	// kicked at version 6
	// true
}
