package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/eventstore/natsstore"
)

func newJetStreamFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() }) // after the fixture's cleanup
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureOn(t, eng, opts...)
}

// TestJetStream: the request-grant-join cycle, a retried key, and a
// resumed event stream on the embedded JetStream server.
func TestJetStream(t *testing.T) {
	f := newJetStreamFixture(t)
	m := "js1"
	f.addMeeting(m)
	s1, _ := f.openStream(m, "user:bob", "")
	live, _ := s1.until(t, "live")

	first := f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil, "Idempotency-Key", "r1")
	again := f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil, "Idempotency-Key", "r1")
	if !again.Duplicate || again.Version != first.Version || again.Seq != first.Seq {
		t.Fatalf("retry: %+v vs %+v", again, first)
	}
	f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
	e := s1.next(t)
	s1.close()
	f.ok("POST", mpath(m, "/stage/join"), "user:bob", nil)
	f.fail(403, CodeForbidden, "POST", mpath(m, "/participants"), "user:bob", ParticipantBody{User: "x", Permissions: requester})

	s2, _ := f.openStream(m, "user:bob", e.ID)
	var got []string
	for len(got) < 4 {
		n := decodeNote(t, s2.next(t))
		if n.Type != "live" {
			got = append(got, n.Type+"/"+n.Status)
		}
	}
	want := "stageStatusUpdate/AcceptedToJoinStage stageRequestApproved/ stageStatusUpdate/OnStage stageRosterUpdate/"
	if decodeNote(t, e).Status != "RequestedToJoinStage" || strings.Join(got, " ") != want {
		t.Fatalf("first %+v, resumed %v after %s (live %s)", e, got, e.ID, live.ID)
	}
	r := f.do("GET", mpath(m, "/stage"), "user:carol", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"onStage":["bob"]`) {
		t.Fatalf("roster: %d %s", r.status, r.body)
	}
}
