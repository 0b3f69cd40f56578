package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
)

var (
	host   = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer = aggregate.Permissions{StageAccess: aggregate.CanRequest}
	t0     = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
)

// fixture is an engine over a memory store with a clock the test moves.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store *eventstore.Memory
	eng   *stage.Engine
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, ctx: context.Background(), store: eventstore.NewMemory(), now: t0}
	var err error
	f.eng, err = stage.New(f.store, stage.WithClock(func() time.Time { return f.now }))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) do(after time.Duration, meeting, actor string, a aggregate.Action) stage.Result {
	f.t.Helper()
	f.now = f.now.Add(after)
	r, err := f.eng.Execute(f.ctx, meeting, aggregate.Command{Actor: actor, Action: a})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) add(meeting, user string, p aggregate.Permissions) stage.Result {
	return f.do(0, meeting, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: user, Permissions: p}})
}

func (f *fixture) events(meeting string) []events.Envelope {
	var out []events.Envelope
	for e, err := range f.store.Load(f.ctx, meeting, 1) {
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func startRunner(t *testing.T, r *projections.Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

func TestRunner_readYourWrites(t *testing.T) {
	f := newFixture(t)
	r, err := projections.NewRunner(f.store)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRunner(t, r)
	f.add("m1", "alice", host)
	f.add("m1", "bob", viewer)
	f.add("m2", "carol", host)
	res := f.do(time.Second, "m1", "bob", aggregate.RequestAccess{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.WaitFor(ctx, res.Position); err != nil {
		t.Fatal(err)
	}
	ro, err := r.Roster(ctx, "m1")
	if err != nil || len(ro.Requests) != 1 || ro.Requests[0].UserID != "bob" || ro.Version != res.Version {
		t.Fatalf("roster %+v", ro)
	}
	if got := r.Position(); got < res.Position {
		t.Errorf("position %d < %d", got, res.Position)
	}
	ms := r.Meetings()
	slices.Sort(ms)
	if !slices.Equal(ms, []string{"m1", "m2"}) {
		t.Errorf("meetings %v", ms)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	// After Run has returned, waiting for a later position fails at once.
	if err := r.WaitFor(ctx, res.Position+10); !errors.Is(err, projections.ErrRunnerStopped) {
		t.Errorf("WaitFor after stop: %v", err)
	}
	if err := r.Run(ctx); err == nil {
		t.Error("second Run succeeded")
	}
}

// TestRunner_checkpoint resumes from a position in the middle of the log and
// must still give the byte-for-byte roster of an offline fold.
func TestRunner_checkpoint(t *testing.T) {
	f := newFixture(t)
	f.add("m1", "alice", host)
	f.add("m1", "bob", viewer)
	f.add("m1", "dave", viewer)
	f.do(time.Second, "m1", "bob", aggregate.RequestAccess{})
	f.do(time.Second, "m1", "dave", aggregate.RequestAccess{})
	mid := f.do(time.Second, "m1", "alice", aggregate.GrantAccess{Users: []string{"bob"}})
	f.add("m2", "carol", host)
	f.do(time.Second, "m1", "bob", aggregate.Join{})
	last := f.do(time.Second, "m2", "carol", aggregate.Join{})

	for _, cp := range []uint64{0, 2, mid.Position, last.Position - 1} {
		t.Run(fmt.Sprint("from ", cp), func(t *testing.T) {
			r, err := projections.NewRunner(f.store, projections.WithCheckpoint(cp))
			if err != nil {
				t.Fatal(err)
			}
			stop := startRunner(t, r)
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := r.WaitFor(ctx, last.Position); err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"m1", "m2"} {
				got, err := r.Roster(ctx, m)
				if err != nil {
					t.Fatal(err)
				}
				s, err := projections.Fold(m, f.store.Load(ctx, m, 1))
				if err != nil {
					t.Fatal(m, err)
				}
				a, _ := json.Marshal(got)
				b, _ := json.Marshal(projections.RosterOf(s))
				if string(a) != string(b) {
					t.Errorf("%s:\nlive    %s\noffline %s", m, a, b)
				}
			}
		})
	}
}

func TestRunner_corrupt(t *testing.T) {
	f := newFixture(t)
	f.add("m1", "alice", host)
	// A second store with a broken chain: version 2 does not link to 1.
	bad := eventstore.NewMemory()
	evs := f.events("m1")
	if _, err := bad.Append(context.Background(), "m1", 0, evs); err != nil {
		t.Fatal(err)
	}
	e2 := evs[0]
	e2.Version = 2
	e2.Payload = &events.ParticipantJoined{UserID: "bob", Permissions: viewer}
	if err := e2.Seal(events.Hash{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Append(context.Background(), "m1", 1, []events.Envelope{e2}); err != nil {
		t.Fatal(err)
	}
	r, _ := projections.NewRunner(bad)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, eventstore.ErrCorrupt) {
		t.Fatalf("Run: %v", err)
	}
}

func TestNotify(t *testing.T) {
	f := newFixture(t)
	f.add("m", "alice", host)
	f.add("m", "hank", host)
	f.add("m", "bob", viewer)
	f.add("m", "carol", viewer)
	steps := []struct {
		actor string
		a     aggregate.Action
		want  []string // type:recipient[:user][=status]
	}{
		{"bob", aggregate.RequestAccess{}, []string{
			"stageStatusUpdate:bob=RequestedToJoinStage",
			"newStageRequest:alice:bob", "newStageRequest:hank:bob",
			"stageAccessRequestUpdate:alice[+bob@1]1", "stageAccessRequestUpdate:hank[+bob@1]1"}},
		{"carol", aggregate.RequestAccess{}, []string{
			"stageStatusUpdate:carol=RequestedToJoinStage",
			"newStageRequest:alice:carol", "newStageRequest:hank:carol",
			"stageAccessRequestUpdate:alice[+carol@2]2", "stageAccessRequestUpdate:hank[+carol@2]2"}},
		{"alice", aggregate.GrantAccess{Users: []string{"bob"}}, []string{
			"stageStatusUpdate:bob=AcceptedToJoinStage", "stageRequestApproved:bob:bob",
			"stageAccessRequestUpdate:alice[-bob]1", "stageAccessRequestUpdate:hank[-bob]1"}},
		{"hank", aggregate.DenyAccess{Users: []string{"carol"}}, []string{
			"stageStatusUpdate:carol=OffStage", "stageRequestRejected:carol:carol",
			"stageAccessRequestUpdate:alice[-carol]0", "stageAccessRequestUpdate:hank[-carol]0"}},
		{"bob", aggregate.Join{}, []string{"stageStatusUpdate:bob=OnStage", "stageRosterUpdate::"}},
		{"alice", aggregate.Kick{Users: []string{"bob"}}, []string{"stageStatusUpdate:bob=OffStage", "stageRosterUpdate::"}},
		{"alice", aggregate.GrantAccess{Users: []string{"carol"}}, []string{ // an invitation
			"stageStatusUpdate:carol=AcceptedToJoinStage", "stageInvitation:carol:carol"}},
		{"alice", aggregate.RequestAccess{}, []string{"stageStatusUpdate:alice=AcceptedToJoinStage"}},
	}
	for _, st := range steps {
		res := f.do(time.Second, "m", st.actor, st.a)
		evs := f.events("m")
		before, _ := projections.Fold("m", func(yield func(events.Envelope, error) bool) {
			for _, e := range evs[:len(evs)-1] {
				if !yield(e, nil) {
					return
				}
			}
		})
		e := res.Events[0]
		var got []string
		for _, n := range projections.Notify(before, &e) {
			s := string(n.Type) + ":" + n.Recipient
			switch n.Type {
			case projections.StageStatusUpdate:
				s += "=" + n.Status.String()
			case projections.StageAccessRequestUpdate:
				var us []string
				for _, c := range n.Queue {
					if c.Change == projections.QueueAdded {
						us = append(us, fmt.Sprintf("+%s@%d", c.UserID, c.Position))
					} else {
						us = append(us, "-"+c.UserID)
					}
				}
				s += fmt.Sprintf("[%s]%d", strings.Join(us, " "), n.QueueLength)
			default:
				s += ":" + n.UserID
			}
			if n.Version != e.Version || n.MeetingID != "m" || !n.Time.Equal(e.Time) || n.Actor != st.actor {
				t.Errorf("%s: bad envelope %+v", st.a.Name(), n)
			}
			got = append(got, s)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("%s by %s:\n got %q\nwant %q", st.a.Name(), st.actor, got, st.want)
		}
	}
}

func TestHistory(t *testing.T) {
	f := newFixture(t)
	f.add("m", "alice", host)
	f.add("m", "bob", viewer)
	f.add("m", "carol", viewer)
	f.do(10*time.Second, "m", "bob", aggregate.RequestAccess{})
	f.do(42*time.Second, "m", "alice", aggregate.GrantAccess{Users: []string{"bob", "alice"}})
	f.do(3*time.Second, "m", "bob", aggregate.Join{})
	f.do(5*time.Second, "m", "carol", aggregate.RequestAccess{})
	f.do(7*time.Second, "m", "carol", aggregate.CancelRequestAccess{})
	f.do(2*time.Minute, "m", "alice", aggregate.Kick{Users: []string{"bob"}, Reason: "time"})
	f.do(time.Second, "m", "carol", aggregate.RequestAccess{})
	f.do(time.Second, "m", "alice", aggregate.DenyAccess{Users: []string{"carol"}})
	f.do(time.Second, "m", "bob", aggregate.RequestAccess{})
	f.do(time.Second, "m", "", aggregate.RemoveParticipant{UserID: "bob"})

	h := projections.HistoryOf("m", f.events("m"))
	var lines []string
	for _, e := range h.Entries {
		lines = append(lines, e.Time.Format("15:04:05")+" "+e.Text)
	}
	want := []string{
		"14:00:00 alice joined the meeting as host",
		"14:00:00 bob joined the meeting as viewer",
		"14:00:00 carol joined the meeting as viewer",
		"14:00:10 bob (viewer) requested to join the stage",
		"14:00:52 alice (host) granted bob's request after 42s and invited alice",
		"14:00:55 bob (viewer) joined the stage",
		"14:01:00 carol (viewer) requested to join the stage",
		"14:01:07 carol (viewer) cancelled their request after 7s",
		"14:03:07 alice (host) kicked bob off the stage after 2m12s (reason: \"time\")",
		"14:03:08 carol (viewer) requested to join the stage",
		"14:03:09 alice (host) denied carol's request after 1s",
		"14:03:10 bob (viewer) requested to join the stage",
		"14:03:11 bob left the meeting (was RequestedToJoinStage)",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if len(h.Stints) != 1 {
		t.Fatalf("stints %+v", h.Stints)
	}
	s := h.Stints[0]
	if s.UserID != "bob" || s.End != projections.EndKicked || s.By != "alice" || s.Reason != "time" || s.Duration(h.End) != 132*time.Second {
		t.Errorf("stint %+v", s)
	}
	type outcome struct {
		user, outcome, by string
		wait              time.Duration
	}
	var got []outcome
	for _, r := range h.Requests {
		got = append(got, outcome{r.UserID, r.Outcome, r.DecidedBy, r.Wait})
	}
	wantR := []outcome{
		{"bob", projections.OutcomeGranted, "alice", 42 * time.Second},
		{"carol", projections.OutcomeCanceled, "carol", 7 * time.Second},
		{"carol", projections.OutcomeDenied, "alice", time.Second},
		{"bob", projections.EndRemoved, "", time.Second},
	}
	if !slices.Equal(got, wantR) {
		t.Errorf("requests %v, want %v", got, wantR)
	}
	bob := h.ForUser("bob")
	if len(bob.Stints) != 1 || len(bob.Requests) != 2 || len(bob.Entries) != 7 {
		t.Errorf("bob's history: %d entries, %d stints, %d requests", len(bob.Entries), len(bob.Stints), len(bob.Requests))
	}
	if !slices.Equal(h.Users(), []string{"alice", "bob", "carol"}) {
		t.Errorf("users %v", h.Users())
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second: "42s", 192 * time.Second: "3m12s", time.Hour + 2*time.Minute + 5*time.Second: "1h02m05s",
		1500 * time.Millisecond: "2s", 250 * time.Millisecond: "250ms", -3 * time.Second: "-3s",
	} {
		if got := projections.FormatDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// seatOffered stands for an event type added later (a policy event):
// history, transitions and notifications must cope without a code change.
type seatOffered struct{ events.Payload }

func (seatOffered) EventType() events.Type { return "SeatOffered" }

func TestHistory_unknownEventType(t *testing.T) {
	f := newFixture(t)
	f.add("m", "alice", host)
	f.do(time.Second, "m", "alice", aggregate.Join{})
	evs := f.events("m")
	e := evs[1]
	e.Type, e.Version, e.Payload = "SeatOffered", 3, seatOffered{}
	h := projections.NewHistory("m")
	h.Apply(&evs[0])
	h.Apply(&evs[1])
	h.Apply(&e)
	if got := h.Entries[2].Text; got != "alice (host): SeatOffered" {
		t.Errorf("text %q", got)
	}
	if ns := projections.Notify(h.State(), &e); len(ns) != 0 {
		t.Errorf("notifications %+v", ns)
	}
}

// TestRunner_jetstream runs the live projection on the embedded JetStream
// store: read-your-writes by position, and the offline fold's roster.
func TestRunner_jetstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projections.NewRunner(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRunner(t, r)
	defer stop()
	eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "bob", Permissions: viewer})
	eng.RequestAccess(ctx, "m", "bob")
	res, err := eng.GrantAccess(ctx, "m", "alice", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WaitFor(ctx, res.Position); err != nil {
		t.Fatal(err)
	}
	live, err := r.Roster(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	s, err := projections.Fold("m", emb.Store.Load(ctx, "m", 1))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(live)
	b, _ := json.Marshal(projections.RosterOf(s))
	if string(a) != string(b) || len(live.Accepted) != 1 {
		t.Errorf("live %s\noffline %s", a, b)
	}
}
