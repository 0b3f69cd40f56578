package stage_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// A stage with one seat, seat offers of 30 seconds and speaking slots of 5
// minutes, on a test clock.
func ExampleEngine_Configure() {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	eng, err := stage.New(eventstore.NewMemory(), stage.WithClock(clock), stage.WithAutoTick(false))
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	const meeting = "webinar-1"
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	speaker := aggregate.Permissions{StageAccess: aggregate.Allowed}
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "bob", Permissions: speaker})
	eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: "carol", Permissions: speaker})
	eng.Configure(ctx, meeting, "alice", aggregate.Settings{
		MaxOnStage: 1, SeatOfferTTL: 30 * time.Second, SpeakingSlot: 5 * time.Minute})

	eng.Join(ctx, meeting, "bob")
	_, err = eng.Join(ctx, meeting, "carol")
	fmt.Println("carol:", errors.Is(err, aggregate.ErrStageFull))
	roster, _ := eng.Roster(ctx, meeting)
	fmt.Println("waitlist:", roster.Waitlist[0].UserID)

	// Five minutes later bob's slot has ended: the seat is held for carol.
	now = now.Add(5 * time.Minute)
	st, _ := eng.Status(ctx, meeting, "bob")
	roster, _ = eng.Roster(ctx, meeting)
	fmt.Println("bob:", st, "| offer:", roster.SeatOffers[0].UserID, "until", roster.SeatOffers[0].Deadline.Format("15:04:05"))

	// A tick records what lapsed, and why.
	res, _ := eng.Tick(ctx, meeting)
	for _, l := range res.Events[0].Payload.(*events.Lapsed).Lapses {
		fmt.Println("lapsed:", l.UserID, l.Kind, "at", l.Deadline.Format("15:04:05"), "under", l.Setting, l.Limit)
	}
	eng.Join(ctx, meeting, "carol")
	st, _ = eng.Status(ctx, meeting, "carol")
	fmt.Println("carol:", st)
	// Output:
	// carol: true
	// waitlist: carol
	// bob: OffStage | offer: carol until 14:05:30
	// lapsed: bob SlotEnded at 14:05:00 under SpeakingSlot 5m0s
	// carol: OnStage
}
