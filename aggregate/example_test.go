package aggregate_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// The caller's loop: decide a command against the state, persist the events
// (here: only seal them), then evolve the state with them. Decide is pure:
// time and ids come in with the command.
func ExampleDecide() {
	s := aggregate.NewState("webinar-1")
	now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	run := func(id, actor string, a aggregate.Action) error {
		d, err := aggregate.Decide(s, aggregate.Command{ID: id, Actor: actor, Action: a}, now)
		if err != nil {
			return err
		}
		for i := range d.Events {
			e := &d.Events[i]
			e.ID = uuid.Must(uuid.NewV7())
			if err := e.Seal(s.LastHash()); err != nil {
				return err
			}
			// ... append e to the store here ...
			aggregate.Evolve(s, e)
			fmt.Printf("v%d %s by %q\n", e.Version, e.Type, e.Actor)
		}
		for _, r := range d.Rejected {
			fmt.Println("  rejected:", r.UserID, aggregate.ReasonCode(r.Err))
		}
		return nil
	}

	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	run("c1", "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "alice", Permissions: host}})
	run("c2", "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "bob", Permissions: viewer}})
	run("c3", "bob", aggregate.RequestAccess{})
	run("c4", "alice", aggregate.GrantAccess{Users: []string{"bob", "carol"}})

	err := run("c5", "bob", aggregate.GrantAccess{Users: []string{"bob"}})
	fmt.Println("bob granting:", errors.Is(err, aggregate.ErrPermissionDenied))

	run("c6", "bob", aggregate.Join{})
	fmt.Println("bob is", s.Status("bob"))

	// A retry of c6 is recognised: no new events.
	d, _ := aggregate.Decide(s, aggregate.Command{ID: "c6", Actor: "bob", Action: aggregate.Join{}}, now)
	fmt.Println("retry of c6: duplicate", d.Duplicate, "of version", d.First)
	// Output:
	// v1 ParticipantJoined by ""
	// v2 ParticipantJoined by ""
	// v3 AccessRequested by "bob"
	// v4 AccessGranted by "alice"
	//   rejected: carol NotParticipant
	// bob granting: true
	// v5 StageJoined by "bob"
	// bob is OnStage
	// retry of c6: duplicate true of version 5
}

// A snapshot restores the whole state; the caller checks it against the
// log (the event at its version must have its hash) and folds the events
// after it.
func ExampleUnmarshalState() {
	s := aggregate.NewState("webinar-1")
	e := events.Envelope{ID: uuid.Must(uuid.NewV7()), MeetingID: "webinar-1", Version: 1, Type: events.TypeParticipantJoined,
		Time: time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC), CommandID: "c1", Schema: events.SchemaVersion,
		Payload: &events.ParticipantJoined{UserID: "alice", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed}}}
	if err := e.Seal(s.LastHash()); err != nil {
		panic(err)
	}
	aggregate.Evolve(s, &e)

	data, _ := s.MarshalBinary()
	restored, err := aggregate.UnmarshalState("webinar-1", data)
	if err != nil {
		panic(err)
	}
	fmt.Println(restored.Version(), restored.LastHash() == e.Hash, restored.Status("alice"), restored.Equal(s))

	_, err = aggregate.UnmarshalState("webinar-1", data[:len(data)-1])
	fmt.Println(errors.Is(err, aggregate.ErrBadSnapshot))
	// Output:
	// 1 true OffStage true
	// true
}
