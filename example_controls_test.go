package stage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// A webinar that starts backstage: the host and a co-host prepare, the
// host starts the stage, closes requests for a while, and ends the stage
// for everyone in one event that says whose media to stop.
func Example_stageControls() {
	ctx := context.Background()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	const meeting = "webinar-9"
	for _, p := range []aggregate.Participant{
		{UserID: "host", Permissions: aggregate.PresetHost.Permissions()},
		{UserID: "mod", Permissions: aggregate.PresetViewer.Permissions()},
		{UserID: "speaker", Permissions: aggregate.PresetSpeaker.Permissions()},
		{UserID: "viewer", Permissions: aggregate.PresetViewer.Permissions()},
	} {
		eng.AddParticipant(ctx, meeting, p)
	}
	eng.Configure(ctx, meeting, "host", aggregate.Settings{StartBackstage: true})

	// Backstage: the speaker prepares on stage; a viewer cannot queue.
	eng.Join(ctx, meeting, "speaker")
	_, err = eng.RequestAccess(ctx, meeting, "viewer")
	fmt.Println("backstage:", errors.Is(err, aggregate.ErrBackstage))

	// A co-host moderates, but has none of the host's controls.
	eng.PromoteCoHost(ctx, meeting, "host", "mod")
	_, err = eng.EndStage(ctx, meeting, "mod")
	fmt.Println("co-host ends the stage:", errors.Is(err, aggregate.ErrPermissionDenied))

	eng.StartStage(ctx, meeting, "host")
	eng.RequestAccess(ctx, meeting, "viewer")
	res, _ := eng.GrantAccess(ctx, meeting, "mod", []string{"viewer"})
	fmt.Println("the co-host granted:", res.Events[0].Payload.(*events.AccessGranted).Users)
	eng.Join(ctx, meeting, "viewer")

	// Requests closed for the meeting: pending ones would stay.
	eng.CloseRequests(ctx, meeting, "host", false)
	eng.Kick(ctx, meeting, "mod", []string{"viewer"})
	_, err = eng.RequestAccess(ctx, meeting, "viewer")
	fmt.Println("requests closed:", errors.Is(err, aggregate.ErrRequestsClosed))

	// End the stage for everyone: one event.
	res, _ = eng.EndStage(ctx, meeting, "host")
	ended := res.Events[0].Payload.(*events.StageEnded)
	fmt.Println("ended; stop the media of:", ended.OnStage)
	_, err = eng.Join(ctx, meeting, "speaker")
	fmt.Println("join after the end:", errors.Is(err, aggregate.ErrStageEnded))
	// Output:
	// backstage: true
	// co-host ends the stage: true
	// the co-host granted: [viewer]
	// requests closed: true
	// ended; stop the media of: [speaker]
	// join after the end: true
}
