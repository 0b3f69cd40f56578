package replay_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/replay"
)

// anyMeetings are meeting ids with '.', '*', '>', '@', spaces and non-ASCII,
// which the JetStream store escapes on their subjects (natsstore.SubjectToken).
var anyMeetings = []string{"bob@example.com", "user.123", "a b", "ünï.cödé", ">", "a*2Eb", "a.b"}

// TestJetStreamSource_anyMeetingIDs runs the webinar on an Engine over a
// real embedded JetStream store in meetings with such ids, then reads the
// stream as the replay tool does, by URL: every meeting is found by its id,
// verifies clean, folds to the engine's roster, exports and imports.
func TestJetStreamSource_anyMeetingIDs(t *testing.T) {
	ctx := context.Background()
	srv, err := natsstore.StartServer(t.TempDir(), natsstore.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store, err := natsstore.New(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	eng, err := stage.New(store, stage.WithClock(steppingClock()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	for _, m := range anyMeetings {
		for _, step := range []func() (stage.Result, error){
			func() (stage.Result, error) {
				return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice@example.com", Permissions: host})
			},
			func() (stage.Result, error) {
				return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "Bob B.", Permissions: viewer})
			},
			func() (stage.Result, error) { return eng.RequestAccess(ctx, m, "Bob B.") },
			func() (stage.Result, error) { return eng.GrantAccess(ctx, m, "alice@example.com", []string{"Bob B."}) },
			func() (stage.Result, error) { return eng.Join(ctx, m, "Bob B.") },
		} {
			if _, err := step(); err != nil {
				t.Fatalf("meeting %q: %v", m, err)
			}
		}
	}

	src, err := replay.Open(ctx, srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := replay.Verify(ctx, src.Events(ctx, ""))
	if err != nil || !rep.OK() || rep.Meetings != len(anyMeetings) || rep.Events != 5*len(anyMeetings) {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	ms, err := replay.Meetings(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if want := slices.Sorted(slices.Values(anyMeetings)); !slices.Equal(ids, want) {
		t.Fatalf("Meetings: %q, want %q", ids, want)
	}
	for _, m := range anyMeetings {
		n := 0
		for e, err := range src.Events(ctx, m) {
			if err != nil || e.MeetingID != m {
				t.Fatalf("Events(%q): %s, %v", m, e.MeetingID, err)
			}
			n++
		}
		if n != 5 {
			t.Errorf("Events(%q): %d events, want 5", m, n)
		}
		r, err := replay.Roster(ctx, src, replay.Filter{MeetingID: m})
		live, lerr := eng.Roster(ctx, m)
		if err != nil || lerr != nil || !slices.Equal(r.OnStage, live.OnStage) || r.Version != 5 {
			t.Errorf("Roster(%q): %+v, %v; engine %+v, %v", m, r, err, live, lerr)
		}
		rep, err := replay.Verify(ctx, src.Events(ctx, m))
		if err != nil || !rep.OK() || rep.Events != 5 {
			t.Errorf("Verify(%q): %+v, %v", m, rep, err)
		}
	}
	// Export, and import into another store: the same log.
	var buf bytes.Buffer
	if n, err := replay.WriteJSONL(&buf, src.Events(ctx, "")); err != nil || n != 5*len(anyMeetings) {
		t.Fatalf("WriteJSONL: %d, %v", n, err)
	}
	mem := eventstore.NewMemory()
	if _, err := replay.Import(ctx, mem, replay.ReadJSONL(bytes.NewReader(buf.Bytes()), "export")); err != nil {
		t.Fatal(err)
	}
	for _, m := range anyMeetings {
		got := contents(t, mem, m)[m]
		want := contents(t, store, m)[m]
		if len(got) != 5 || !slices.Equal(got, want) {
			t.Errorf("imported %q: %d events, want the %d of the stream", m, len(got), len(want))
		}
	}
}
