package aggregate_test

import (
	"errors"
	"testing"

	"github.com/productdb/stage/aggregate"
)

// TestDecide_noMeeting: on a meeting with no events every command but
// AddParticipant (which starts it) and Tick (nothing due) fails with
// ErrNoMeeting, and so does listing its requests; invalid input is still
// ErrInvalidCommand, and a backend's command with an actor still
// ErrPermissionDenied. A meeting whose participants all left still exists.
func TestDecide_noMeeting(t *testing.T) {
	empty := newMeeting(t)
	for _, c := range []aggregate.Command{
		by("host", aggregate.RequestAccess{}),
		by("host", aggregate.CancelRequestAccess{}),
		by("host", aggregate.Join{}),
		by("host", aggregate.Leave{}),
		by("host", aggregate.GrantAccess{Users: users("bob")}),
		by("host", aggregate.DenyAccess{Users: users("bob"), Reason: "no"}),
		by("host", aggregate.Kick{Users: users("bob")}),
		by("host", aggregate.Configure{}),
		by("host", aggregate.BanFromStage{UserID: "bob"}),
		by("host", aggregate.LiftBan{UserID: "bob"}),
		{Action: aggregate.RemoveParticipant{UserID: "bob"}},
		{Action: aggregate.UpdatePermissions{UserID: "bob", Permissions: viewerPerms}},
		{Action: aggregate.Disconnect{UserID: "bob"}},
		{Action: aggregate.Reconnect{UserID: "bob"}},
	} {
		_, err := empty.apply(c)
		var ae *aggregate.Error
		if !errors.Is(err, aggregate.ErrNoMeeting) || !errors.As(err, &ae) || aggregate.ReasonCode(err) != "NoMeeting" {
			t.Errorf("%s on a meeting with no events: %v, want ErrNoMeeting", c.Action.Name(), err)
		}
		for _, other := range []error{aggregate.ErrNotParticipant, aggregate.ErrPermissionDenied, aggregate.ErrInvalidState} {
			if errors.Is(err, other) {
				t.Errorf("%s: %v is also %v", c.Action.Name(), err, other)
			}
		}
	}
	if err := aggregate.CanListRequests(empty.s, "host"); !errors.Is(err, aggregate.ErrNoMeeting) {
		t.Errorf("CanListRequests on a meeting with no events: %v, want ErrNoMeeting", err)
	}
	if d, err := aggregate.Decide(empty.s, aggregate.Command{ID: "t", Action: aggregate.Tick{}}, empty.now); err != nil || len(d.Events) != 0 {
		t.Errorf("Tick on a meeting with no events: %+v, %v; want nothing", d, err)
	}
	if _, err := empty.apply(by("a\tb", aggregate.Join{})); !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Errorf("a bad actor on a meeting with no events: %v, want ErrInvalidCommand", err)
	}
	if _, err := aggregate.Decide(empty.s, aggregate.Command{ID: "x", Actor: "host", Action: aggregate.RemoveParticipant{UserID: "bob"}}, empty.now); !errors.Is(err, aggregate.ErrPermissionDenied) {
		t.Errorf("a backend's command with an actor: %v, want ErrPermissionDenied", err)
	}
	if aggregate.ErrorForCode("NoMeeting") != aggregate.ErrNoMeeting {
		t.Error(`ErrorForCode("NoMeeting") is not ErrNoMeeting`)
	}
	// AddParticipant starts it; once everyone left, it still exists.
	m := newMeeting(t).do(add("host", hostPerms))
	m.do(aggregate.Command{Action: aggregate.RemoveParticipant{UserID: "host"}})
	if _, err := m.apply(by("host", aggregate.Join{})); !errors.Is(err, aggregate.ErrNotParticipant) {
		t.Errorf("Join after everyone left: %v, want ErrNotParticipant", err)
	}
	if err := aggregate.CanListRequests(m.s, "host"); !errors.Is(err, aggregate.ErrPermissionDenied) {
		t.Errorf("CanListRequests after everyone left: %v, want ErrPermissionDenied", err)
	}
}
