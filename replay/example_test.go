package replay_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

func Example() {
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, _ := stage.New(store, stage.WithClock(steppingClock()))
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob", Permissions: viewer})
	eng.RequestAccess(ctx, "w", "bob")
	eng.GrantAccess(ctx, "w", "alice", []string{"bob"})
	eng.Join(ctx, "w", "bob")

	src := replay.StoreSource(store) // or replay.Open(ctx, "nats://…" | dir | file.jsonl)

	// The stage as it was at version 3, and now.
	r, _ := replay.Roster(ctx, src, replay.Filter{MeetingID: "w", UpToVersion: 3})
	fmt.Println("v3 requests:", r.Requests[0].UserID)
	r, _ = replay.Roster(ctx, src, replay.Filter{MeetingID: "w"})
	fmt.Println("v5 on stage:", r.OnStage)

	// The audit trail.
	h, _ := replay.History(ctx, src, replay.Filter{MeetingID: "w"})
	for _, e := range h.Entries[2:] {
		fmt.Println(e.Time.Format("15:04:05"), e.Text)
	}

	// Verify: clean, then with a forged kick.
	rep, _ := replay.Verify(ctx, src.Events(ctx, ""))
	fmt.Println("clean:", rep.OK())
	var log []events.Envelope
	for e := range store.ReadAll(ctx, 1) {
		log = append(log, e)
	}
	forged := events.Envelope{ID: uuid.New(), MeetingID: "w", Version: 6, Type: events.TypeKicked,
		Time: log[4].Time, Actor: "bob", CommandID: "c-forged", Schema: events.SchemaVersion,
		Payload: &events.Kicked{Users: []string{"bob"}}}
	forged.Seal(log[4].Hash)
	forged.Seq = 6
	rep, _ = replay.Verify(ctx, seq(append(log, forged)))
	for _, f := range rep.Findings {
		fmt.Println(f)
	}
	// Output:
	// v3 requests: bob
	// v5 on stage: [bob]
	// 14:00:03 bob (viewer) requested to join the stage
	// 14:00:04 alice (host) granted bob's request after 1s
	// 14:00:05 bob (viewer) joined the stage
	// clean: true
	// seq 6 meeting w version 6: illegal: Kicked by bob was not allowed: stage: Kick bob: permission denied: the actor is neither host nor co-host
}
