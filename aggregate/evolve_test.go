package aggregate_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

func TestEvolve_participantLeftClearsStatus(t *testing.T) {
	for _, user := range []string{"viewer", "early", "invited", "onstage"} {
		t.Run(user, func(t *testing.T) {
			m := scene(t)
			m.do(by("", aggregate.RemoveParticipant{UserID: user}))
			if st := m.s.Status(user); st != none {
				t.Errorf("status %v after leaving the meeting", st)
			}
			if _, ok := m.s.Member(user); ok {
				t.Error("still a member")
			}
			if slices.Contains(queue(m.s), user) {
				t.Errorf("still in the queue %v", queue(m.s))
			}
			// Coming back starts afresh: OffStage, no request, end of any queue.
			m.do(add(user, viewerPerms), by(user, aggregate.RequestAccess{}))
			if q := queue(m.s); q[len(q)-1] != user {
				t.Errorf("queue %v: a returning user's request goes last", q)
			}
		})
	}
}

func TestEvolve_notAllowedMovesOffStage(t *testing.T) {
	for _, user := range []string{"early", "invited", "onstage", "viewer"} {
		t.Run(user, func(t *testing.T) {
			m := scene(t)
			before, _ := m.s.Member(user)
			d, err := m.apply(by("", aggregate.UpdatePermissions{UserID: user, Permissions: bannedPerms}))
			if err != nil {
				t.Fatal(err)
			}
			p := d.Events[0].Payload.(*events.PermissionsChanged)
			if p.Status != "OffStage" {
				t.Errorf("event records status %q, want OffStage", p.Status)
			}
			after, _ := m.s.Member(user)
			if after.Status != off || after.Permissions != bannedPerms || !after.RequestedAt.IsZero() {
				t.Errorf("member after the change: %+v", after)
			}
			if before.Status == off && !after.Since.Equal(before.Since) {
				t.Errorf("an OffStage user's Since moved from %v to %v", before.Since, after.Since)
			}
			if before.Status != off && !after.Since.Equal(d.Events[0].Time) {
				t.Errorf("Since %v, want the event time %v", after.Since, d.Events[0].Time)
			}
			if slices.Contains(queue(m.s), user) {
				t.Errorf("still in the queue %v", queue(m.s))
			}
			// While NotAllowed they cannot come back by any path.
			for _, c := range []aggregate.Command{
				by(user, aggregate.RequestAccess{}),
				by(user, aggregate.Join{}),
				by("host", aggregate.GrantAccess{Users: users(user)}),
			} {
				if _, err := m.apply(c); err == nil {
					t.Errorf("%s succeeded for a NotAllowed user", c.Action.Name())
				}
			}
		})
	}
}

func TestEvolve_permissionsKeepStatus(t *testing.T) {
	m := scene(t)
	m.do(by("", aggregate.UpdatePermissions{UserID: "onstage", Permissions: hostPerms}))
	if st := m.s.Status("onstage"); st != on {
		t.Errorf("status %v, want OnStage", st)
	}
	// The new host privilege applies at once.
	if _, err := m.apply(by("onstage", aggregate.DenyAccess{Users: users("early")})); err != nil {
		t.Errorf("new host denying: %v", err)
	}
	// And a revoked one too.
	m.do(by("", aggregate.UpdatePermissions{UserID: "host", Permissions: speakerPerms}))
	if _, err := m.apply(by("host", aggregate.Kick{Users: users("onstage")})); err == nil {
		t.Error("a former host kicked")
	}
}

func TestEvolve_queueOrder(t *testing.T) {
	m := newMeeting(t).do(add("h", hostPerms), add("a", viewerPerms), add("b", viewerPerms), add("c", viewerPerms))
	m.do(by("a", aggregate.RequestAccess{}), by("b", aggregate.RequestAccess{}), by("c", aggregate.RequestAccess{}))
	if q := queue(m.s); !slices.Equal(q, users("a", "b", "c")) {
		t.Fatalf("queue %v", q)
	}
	// A user who cancels and requests again goes to the end.
	m.do(by("a", aggregate.CancelRequestAccess{}), by("a", aggregate.RequestAccess{}))
	if q := queue(m.s); !slices.Equal(q, users("b", "c", "a")) {
		t.Errorf("queue %v after a re-request", q)
	}
	// So does a denied user who asks again.
	m.do(by("h", aggregate.DenyAccess{Users: users("b")}), by("b", aggregate.RequestAccess{}))
	if q := queue(m.s); !slices.Equal(q, users("c", "a", "b")) {
		t.Errorf("queue %v after deny and re-request", q)
	}
	for i, r := range m.s.Queue() {
		if r.RequestedAt.IsZero() || (i > 0 && r.RequestedAt.Before(m.s.Queue()[i-1].RequestedAt)) {
			t.Errorf("queue times out of order: %v", m.s.Queue())
		}
	}
}

// TestEvolve_sameTime checks that requests made at the same instant keep the
// order of their events.
func TestEvolve_sameTime(t *testing.T) {
	s := aggregate.NewState("m")
	for _, u := range []string{"z", "y", "x"} {
		applyAt(t, s, add(u, viewerPerms), meetingStart)
	}
	for _, u := range []string{"z", "x", "y"} {
		applyAt(t, s, by(u, aggregate.RequestAccess{}), meetingStart)
	}
	if q := queue(s); !slices.Equal(q, users("z", "x", "y")) {
		t.Errorf("queue %v, want the order of the requests", q)
	}
}

func applyAt(t *testing.T, s *aggregate.State, c aggregate.Command, now time.Time) {
	t.Helper()
	c.ID = uuid.NewString()
	d, err := aggregate.Decide(s, c, now)
	if err != nil {
		t.Fatal(err)
	}
	seal(t, &d.Events[0], s.LastHash())
	aggregate.Evolve(s, &d.Events[0])
}

func TestEvolve_bookkeeping(t *testing.T) {
	m := newMeeting(t)
	d, err := m.apply(aggregate.Command{ID: "c1", Action: aggregate.AddParticipant{
		Participant: aggregate.Participant{UserID: "a", Permissions: speakerPerms}}})
	if err != nil {
		t.Fatal(err)
	}
	e := d.Events[0]
	if m.s.Version() != 1 || m.s.LastHash() != e.Hash || !m.s.LastTime().Equal(e.Time) {
		t.Errorf("state version %d hash %s time %v after %+v", m.s.Version(), m.s.LastHash(), m.s.LastTime(), e)
	}
	if first, last, ok := m.s.Applied(events.KeyOf("", "c1")); !ok || first != 1 || last != 1 {
		t.Errorf("Applied(c1) = %d, %d, %v", first, last, ok)
	}
	mem, _ := m.s.Member("a")
	if mem.Status != off || !mem.Since.Equal(e.Time) || mem.Permissions != speakerPerms {
		t.Errorf("member %+v", mem)
	}
}

// TestEvolve_neverFails applies events the rules would not have produced:
// Evolve applies what makes sense and ignores the rest.
func TestEvolve_neverFails(t *testing.T) {
	s := aggregate.NewState("m")
	evs := []events.Envelope{
		{Version: 1, Type: events.TypeStageJoined, Actor: "nobody", CommandID: "1", Time: meetingStart, Payload: &events.StageJoined{}},
		{Version: 2, Type: events.TypeAccessGranted, Actor: "nobody", CommandID: "2", Time: meetingStart, Payload: &events.AccessGranted{Users: users("x", "y")}},
		{Version: 3, Type: events.TypeParticipantLeft, CommandID: "3", Time: meetingStart, Payload: &events.ParticipantLeft{UserID: "x"}},
		{Version: 4, Type: events.TypePermissionsChanged, CommandID: "4", Time: meetingStart, Payload: &events.PermissionsChanged{UserID: "y", Permissions: bannedPerms}},
	}
	for i := range evs {
		aggregate.Evolve(s, &evs[i])
	}
	if s.Len() != 0 || s.Version() != 4 {
		t.Errorf("state has %d members at version %d", s.Len(), s.Version())
	}
}

func TestState_CloneEqual(t *testing.T) {
	m := scene(t)
	c := m.s.Clone()
	if !c.Equal(m.s) || !m.s.Equal(c) {
		t.Fatal("a clone differs")
	}
	m.do(by("speaker", aggregate.Join{}))
	if c.Equal(m.s) {
		t.Error("the clone followed the original")
	}
	if c.Status("speaker") != off {
		t.Error("the clone shares members with the original")
	}
}

func TestStatus_String(t *testing.T) {
	for st, want := range map[aggregate.Status]string{
		none: "None", off: "OffStage", requested: "RequestedToJoinStage", accepted: "AcceptedToJoinStage", on: "OnStage",
	} {
		if st.String() != want {
			t.Errorf("%d.String() = %q, want %q", st, st.String(), want)
		}
		if st != none && aggregate.ParseStatus(want) != st {
			t.Errorf("ParseStatus(%q) = %v", want, aggregate.ParseStatus(want))
		}
	}
}
