package replay_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// step is one command of a scripted meeting: at an offset from its start,
// by an actor ("" for the backend).
type step struct {
	at     time.Duration
	actor  string
	action aggregate.Action
}

// scriptStart is when every scripted meeting starts.
var scriptStart = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)

// scripted decides each step with aggregate.Decide at its time, as the
// engine would, and returns the sealed log. A step the rules reject fails
// the test, except a Join on a full stage, whose SeatWaitlisted event is
// recorded as the engine records it. Ids are derived from the meeting and
// version, so a script always gives the same log.
func scripted(t testing.TB, meeting string, steps []step) []events.Envelope {
	t.Helper()
	s := aggregate.NewState(meeting)
	var out []events.Envelope
	for i, st := range steps {
		cmd := aggregate.Command{ID: fmt.Sprintf("cmd-%d", i+1), Actor: st.actor, Action: st.action}
		d, err := aggregate.Decide(s, cmd, scriptStart.Add(st.at))
		if err != nil {
			t.Fatalf("step %d (%s by %q at %v): %v", i+1, st.action.Name(), st.actor, st.at, err)
		}
		if d.Err != nil && len(d.Events) == 0 {
			t.Fatalf("step %d: %v", i+1, d.Err)
		}
		for j := range d.Events {
			e := &d.Events[j]
			e.ID = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", meeting, e.Version))
			if err := e.Seal(s.LastHash()); err != nil {
				t.Fatal(err)
			}
			aggregate.Evolve(s, e)
			out = append(out, *e)
		}
	}
	return out
}

func join(user string, p aggregate.Permissions) step {
	return step{0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: user, Permissions: p}}}
}

var speaker = aggregate.Permissions{StageAccess: aggregate.Allowed}

// fifteenSeconds is a 15-second meeting with every kind of event: a
// request granted and one denied by a host who does nothing else (hassan),
// an invitation declined and one that expires, a Join on a full stage
// (waitlisted, then seated), a ban and its lifting, a dropped and restored
// connection, a kick, a request withdrawn, settings and permissions changed.
func fifteenSeconds(t testing.TB) []events.Envelope {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	return scripted(t, "short", []step{
		join("alice", host), join("hassan", host), join("bob", viewer), join("carol", viewer),
		join("frank", viewer), join("dave", viewer), join("erin", viewer), join("gina", speaker),
		{ms(500), "alice", aggregate.Join{}},
		{ms(1000), "alice", aggregate.Configure{Settings: aggregate.Settings{MaxOnStage: 2, InvitationTTL: 3 * time.Second, ReconnectGrace: 10 * time.Second}}},
		{ms(1500), "bob", aggregate.RequestAccess{}},
		{ms(2000), "carol", aggregate.RequestAccess{}},
		{ms(3000), "hassan", aggregate.GrantAccess{Users: []string{"bob"}}},
		{ms(3500), "hassan", aggregate.DenyAccess{Users: []string{"carol"}, Reason: "off topic"}},
		{ms(4500), "bob", aggregate.Join{}},
		{ms(5000), "alice", aggregate.GrantAccess{Users: []string{"frank"}}},
		{ms(6000), "frank", aggregate.Leave{}},
		{ms(6500), "alice", aggregate.GrantAccess{Users: []string{"dave"}}},
		{ms(7000), "gina", aggregate.Join{}},
		{ms(7500), "erin", aggregate.RequestAccess{}},
		{ms(8000), "erin", aggregate.CancelRequestAccess{}},
		{ms(8500), "alice", aggregate.BanFromStage{UserID: "erin"}},
		{ms(9000), "", aggregate.Disconnect{UserID: "carol"}},
		{ms(10000), "", aggregate.Reconnect{UserID: "carol"}},
		{ms(10500), "alice", aggregate.Kick{Users: []string{"bob"}, Reason: "time is up"}},
		{ms(11000), "gina", aggregate.Join{}},
		{ms(12000), "alice", aggregate.LiftBan{UserID: "erin"}},
		{ms(13000), "", aggregate.UpdatePermissions{UserID: "erin", Permissions: speaker}},
		{ms(14000), "gina", aggregate.Leave{}},
		{ms(15000), "", aggregate.RemoveParticipant{UserID: "frank"}},
	})
}
