package httpapi

import "testing"

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
