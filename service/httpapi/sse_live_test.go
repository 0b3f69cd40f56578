package httpapi

import (
	"fmt"
	"testing"
)

// TestEvents_liveAfterBroadcast: a stream opened right after a roster
// update starts with a live event whose id is that update's; its data is
// the live notification, not the roster update's JSON that the meeting's
// broadcast cache holds under the same id.
func TestEvents_liveAfterBroadcast(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	bob, _ := f.openStream(m, "user:bob", "")
	bob.until(t, "live")
	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
	f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
	f.ok("POST", mpath(m, "/stage/join"), "user:bob", nil)
	roster, _ := bob.until(t, "stageRosterUpdate") // marshalled, and cached, for bob's stream
	carol, _ := f.openStream(m, "user:carol", "")
	live := carol.next(t)
	if live.Event != "live" || live.ID != roster.ID {
		t.Fatalf("carol's first event %+v, want live with id %s", live, roster.ID)
	}
	if n := decodeNote(t, live); n.Type != "live" {
		t.Fatalf("live event's data %s", live.Data)
	}
}

// TestEvents_resumeMidVersion: a client whose stream dropped between two
// of its notifications of one event (it has v.0, not v.1) resumes on an
// instance whose router has just started at v (the meeting's head: no
// stream of the meeting was open there). It gets v.1, then live.
func TestEvents_resumeMidVersion(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
	res := f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
	v := res.Version
	// bob's notifications of the grant: v.0 his status, v.1 the approval.
	bob, r := f.openStream(m, "user:bob", fmt.Sprintf("%d.0", v))
	if bob == nil {
		t.Fatalf("stream: %d %s", r.status, r.body)
	}
	e := bob.next(t)
	if e.Event == "live" {
		t.Fatalf("resumed after %d.0: live %s at once, without bob's %d.1 (stageRequestApproved)", v, e.ID, v)
	}
	if n := decodeNote(t, e); e.ID != fmt.Sprintf("%d.1", v) || n.Type != "stageRequestApproved" {
		t.Fatalf("resumed after %d.0: first event %+v, want %d.1 stageRequestApproved", v, e, v)
	}
	if live := bob.next(t); live.Event != "live" {
		t.Fatalf("after %d.1: %+v, want live", v, live)
	}
}

// TestEvents_resumeLiveIDNotBehind: a client resuming with an id past
// the router's position (this instance's router lags the one the client
// came from) is not handed, as its live event's id, a point before its
// Last-Event-ID: an EventSource would resume from that older id next
// time, and get again what it already had.
func TestEvents_resumeLiveIDNotBehind(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
	res := f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
	carol, _ := f.openStream(m, "user:carol", "") // the router, at version v
	carol.until(t, "live")
	for _, c := range []struct{ last, live string }{
		{fmt.Sprintf("%d.0", res.Version+1), fmt.Sprintf("%d.0", res.Version+1)}, // ahead: its own id
		{fmt.Sprintf("%d", res.Version+1), fmt.Sprintf("%d", res.Version+1)},
		{fmt.Sprintf("%d", res.Version), fmt.Sprintf("%d", res.Version)}, // at the router
	} {
		bob, _ := f.openStream(m, "user:bob", c.last)
		live := bob.next(t)
		if n := decodeNote(t, live); n.Type != "live" || live.ID != c.live {
			t.Fatalf("resumed after %s: first event %+v, want live %s", c.last, live, c.live)
		}
		bob.close()
	}
	bob, _ := f.openStream(m, "user:bob", fmt.Sprintf("%d.0", res.Version+1))
	bob.until(t, "live")
	f.ok("POST", mpath(m, "/stage/join"), "user:bob", nil) // version v+1: bob's status (skipped), the roster
	if e := bob.next(t); e.ID != fmt.Sprintf("%d.1", res.Version+1) {
		t.Fatalf("after live: %+v, want %d.1", e, res.Version+1)
	}
}
