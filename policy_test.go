package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

// polClock is a test clock that moves only when told.
type polClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *polClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *polClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var polT0 = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)

// polWorld is an engine on a memory store with a test clock, a meeting, a
// host "h" and helpers that fail the test on unexpected errors.
type polWorld struct {
	t     *testing.T
	ctx   context.Context
	store *eventstore.Memory
	eng   *stage.Engine
	clock *polClock
	m     string
}

var (
	polHost    = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	polAllowed = aggregate.Permissions{StageAccess: aggregate.Allowed}
	polViewer  = aggregate.Permissions{StageAccess: aggregate.CanRequest}
)

func newPolWorld(t *testing.T, s aggregate.Settings) *polWorld {
	t.Helper()
	w := &polWorld{t: t, ctx: context.Background(), store: eventstore.NewMemory(), clock: &polClock{t: polT0}, m: "m1"}
	eng, err := stage.New(w.store, stage.WithClock(w.clock.Now), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	w.eng = eng
	w.ok(eng.AddParticipant(w.ctx, w.m, aggregate.Participant{UserID: "h", Permissions: polHost}))
	if s != (aggregate.Settings{}) {
		w.ok(eng.Configure(w.ctx, w.m, "h", s))
	}
	return w
}

func (w *polWorld) add(perm aggregate.Permissions, users ...string) {
	w.t.Helper()
	for _, u := range users {
		w.ok(w.eng.AddParticipant(w.ctx, w.m, aggregate.Participant{UserID: u, Permissions: perm}))
	}
}

func (w *polWorld) ok(r stage.Result, err error) stage.Result {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("unexpected error: %v", err)
	}
	return r
}

// fails checks that err wraps want and that the log did not grow.
func (w *polWorld) fails(want error, f func() (stage.Result, error)) *aggregate.Error {
	w.t.Helper()
	before := w.version()
	_, err := f()
	if !errors.Is(err, want) {
		w.t.Fatalf("error %v, want %v", err, want)
	}
	if v := w.version(); v != before {
		w.t.Fatalf("a rejected command appended: version %d -> %d", before, v)
	}
	var ae *aggregate.Error
	if !errors.As(err, &ae) {
		w.t.Fatalf("error %v is not an *aggregate.Error", err)
	}
	return ae
}

func (w *polWorld) version() uint64 {
	w.t.Helper()
	evs := w.log()
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Version
}

func (w *polWorld) log() []events.Envelope {
	w.t.Helper()
	var out []events.Envelope
	for e, err := range w.store.Load(w.ctx, w.m, 1) {
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func (w *polWorld) status(u string) aggregate.Status {
	w.t.Helper()
	st, err := w.eng.Status(w.ctx, w.m, u)
	if err != nil && !errors.Is(err, aggregate.ErrNotParticipant) && !errors.Is(err, aggregate.ErrNoMeeting) {
		w.t.Fatal(err)
	}
	return st
}

func (w *polWorld) wantStatus(u string, want aggregate.Status) {
	w.t.Helper()
	if got := w.status(u); got != want {
		w.t.Fatalf("%s is %s, want %s", u, got, want)
	}
}

func (w *polWorld) roster() projections.Roster {
	w.t.Helper()
	r, err := w.eng.Roster(w.ctx, w.m)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *polWorld) waitlist() []string {
	var out []string
	for _, x := range w.roster().Waitlist {
		out = append(out, x.UserID)
	}
	return out
}

func (w *polWorld) offers() []projections.SeatOffer { return w.roster().SeatOffers }

// tick records the lapses due and returns them.
func (w *polWorld) tick() []events.Lapse {
	w.t.Helper()
	r := w.ok(w.eng.Tick(w.ctx, w.m))
	if len(r.Events) == 0 {
		return nil
	}
	if len(r.Events) != 1 {
		w.t.Fatalf("tick appended %d events, want 1", len(r.Events))
	}
	return r.Events[0].Payload.(*events.Lapsed).Lapses
}

// replayEqualsLive checks that the fold of the stored events gives the
// roster the engine shows.
func (w *polWorld) replayEqualsLive() {
	w.t.Helper()
	s, err := projections.Fold(w.m, w.store.Load(w.ctx, w.m, 1))
	if err != nil {
		w.t.Fatal(err)
	}
	got, want := projections.RosterAt(s, w.clock.Now()), w.roster()
	if !polRosterEqual(got, want) {
		w.t.Fatalf("replay roster\n%+v\nlive roster\n%+v", got, want)
	}
}

// polRosterEqual compares rosters by their JSON (times compare by instant).
func polRosterEqual(a, b projections.Roster) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestPolicy_OffByDefault(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{})
	w.add(polAllowed, "a", "b", "c")
	for _, u := range []string{"a", "b", "c"} {
		w.ok(w.eng.Join(w.ctx, w.m, u))
	}
	w.clock.Advance(1000 * time.Hour)
	for _, u := range []string{"a", "b", "c"} {
		w.wantStatus(u, aggregate.OnStage)
	}
	if l := w.tick(); l != nil {
		t.Fatalf("tick with policies off recorded %v", l)
	}
	r := w.roster()
	if !r.Settings.IsZero() || r.Waitlist != nil || r.SeatOffers != nil || r.Bans != nil || r.Disconnected != nil {
		t.Fatalf("policy fields set with policies off: %+v", r)
	}
}

func TestPolicy_Configure(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{})
	w.add(polAllowed, "a", "b")
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) {
		return w.eng.Configure(w.ctx, w.m, "a", aggregate.Settings{MaxOnStage: 1})
	})
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) {
		return w.eng.Configure(w.ctx, w.m, "nobody", aggregate.Settings{MaxOnStage: 1})
	})
	w.fails(aggregate.ErrInvalidCommand, func() (stage.Result, error) {
		return w.eng.Configure(w.ctx, w.m, "h", aggregate.Settings{InvitationTTL: -time.Second})
	})
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	w.ok(w.eng.Join(w.ctx, w.m, "b"))
	w.fails(aggregate.ErrInvalidState, func() (stage.Result, error) {
		return w.eng.Configure(w.ctx, w.m, "h", aggregate.Settings{MaxOnStage: 1})
	})
	s := aggregate.Settings{MaxOnStage: 2, SeatOfferTTL: time.Minute, RequestCooldown: time.Hour}
	r := w.ok(w.eng.Configure(w.ctx, w.m, "h", s))
	p := r.Events[0].Payload.(*events.SettingsChanged)
	if p.Settings != s || !p.Previous.IsZero() {
		t.Fatalf("SettingsChanged %+v", p)
	}
	if got := w.roster().Settings; got != s {
		t.Fatalf("roster settings %+v, want %+v", got, s)
	}
	w.replayEqualsLive()
}

func TestPolicy_CapacityAndSeatOffers(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1, SeatOfferTTL: 30 * time.Second})
	w.add(polAllowed, "a", "b", "c", "d")
	w.add(polViewer, "v")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))

	// b joins a full stage: ErrStageFull, and the waitlisting is recorded.
	before := w.version()
	r, err := w.eng.Join(w.ctx, w.m, "b")
	if !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatalf("Join on a full stage: %v, want ErrStageFull", err)
	}
	if r.Version != before+1 || len(r.Events) != 1 || r.Events[0].Type != events.TypeSeatWaitlisted {
		t.Fatalf("waitlisting result %+v", r)
	}
	w.wantStatus("b", aggregate.AcceptedToJoinStage)
	// Again: already waitlisted, nothing recorded.
	w.fails(aggregate.ErrStageFull, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "b") })
	// A CanRequest viewer who was not accepted is not waitlisted.
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "v") })
	// An accepted viewer is.
	w.ok(w.eng.GrantAccess(w.ctx, w.m, "h", []string{"v"}))
	if _, err := w.eng.Join(w.ctx, w.m, "v"); !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatal(err)
	}
	if _, err := w.eng.Join(w.ctx, w.m, "c"); !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatal(err)
	}
	if got := w.waitlist(); !slices.Equal(got, []string{"b", "v", "c"}) {
		t.Fatalf("waitlist %v", got)
	}
	if o := w.offers(); o != nil {
		t.Fatalf("offers on a full stage: %v", o)
	}

	// a leaves: the seat is held for b for 30s.
	w.clock.Advance(time.Second)
	freedAt := w.clock.Now()
	w.ok(w.eng.Leave(w.ctx, w.m, "a"))
	o := w.offers()
	if len(o) != 1 || o[0].UserID != "b" || !o[0].Deadline.Equal(freedAt.Add(30*time.Second)) {
		t.Fatalf("offers %+v", o)
	}
	// Nobody else gets the held seat, not even someone new.
	w.fails(aggregate.ErrStageFull, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "c") })
	if _, err := w.eng.Join(w.ctx, w.m, "d"); !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatal(err)
	}
	// One nanosecond before the deadline b still holds it.
	w.clock.Advance(30*time.Second - time.Nanosecond)
	if o := w.offers(); len(o) != 1 || o[0].UserID != "b" {
		t.Fatalf("offers just before the deadline %+v", o)
	}
	// Exactly at the deadline it has passed to v (the next in order), whose
	// offer runs from b's deadline; b is OffStage and off the waitlist.
	w.clock.Advance(time.Nanosecond)
	o = w.offers()
	if len(o) != 1 || o[0].UserID != "v" || !o[0].Deadline.Equal(freedAt.Add(60*time.Second)) {
		t.Fatalf("offers at the deadline %+v", o)
	}
	w.wantStatus("b", aggregate.OffStage)
	// The log has not recorded it yet; c's Join fails on the effective state
	// (the seat is held for v) and records nothing.
	w.fails(aggregate.ErrStageFull, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "c") })
	// A late tick (after v's deadline too) records both lapses, each at its
	// deadline, and c holds the seat from v's deadline.
	w.clock.Advance(45 * time.Second)
	ls := w.tick()
	if len(ls) != 2 || ls[0].UserID != "b" || ls[1].UserID != "v" || ls[0].Kind != events.SeatOfferLapsed ||
		!ls[1].Deadline.Equal(freedAt.Add(60*time.Second)) || ls[1].Setting != "SeatOfferTTL" || ls[1].Limit != events.Duration(30*time.Second) {
		t.Fatalf("lapses %+v", ls)
	}
	if o := w.offers(); len(o) != 1 || o[0].UserID != "c" || !o[0].Deadline.Equal(freedAt.Add(90*time.Second)) {
		t.Fatalf("offers after the tick %+v", o)
	}
	if l := w.tick(); l != nil {
		t.Fatalf("second tick recorded %v", l)
	}
	w.ok(w.eng.Join(w.ctx, w.m, "c"))
	if got := w.waitlist(); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("waitlist %v", got)
	}
	w.replayEqualsLive()
}

func TestPolicy_SeatFreedWhileOfferOut(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 2, SeatOfferTTL: time.Minute})
	w.add(polAllowed, "a", "b", "c", "d", "e")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	w.ok(w.eng.Join(w.ctx, w.m, "b"))
	for _, u := range []string{"c", "d", "e"} {
		if _, err := w.eng.Join(w.ctx, w.m, u); !errors.Is(err, aggregate.ErrStageFull) {
			t.Fatal(err)
		}
	}
	w.ok(w.eng.Leave(w.ctx, w.m, "a"))
	w.clock.Advance(10 * time.Second)
	// A second seat frees while c's offer is out: d gets it too, e waits.
	w.ok(w.eng.Kick(w.ctx, w.m, "h", []string{"b"}))
	o := w.offers()
	if len(o) != 2 || o[0].UserID != "c" || o[1].UserID != "d" || !o[1].Deadline.Equal(o[0].Deadline.Add(10*time.Second)) {
		t.Fatalf("offers %+v", o)
	}
	w.fails(aggregate.ErrStageFull, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "e") })
	w.ok(w.eng.Join(w.ctx, w.m, "d"))
	// c declines: the seat passes to e at once.
	w.ok(w.eng.Leave(w.ctx, w.m, "c"))
	if o := w.offers(); len(o) != 1 || o[0].UserID != "e" {
		t.Fatalf("offers %+v", o)
	}
	w.ok(w.eng.Join(w.ctx, w.m, "e"))
	if r := w.roster(); len(r.OnStage) != 2 || r.Waitlist != nil {
		t.Fatalf("roster %+v", r)
	}
	w.replayEqualsLive()
}

func TestPolicy_InvitationExpires(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{InvitationTTL: time.Minute})
	w.add(polViewer, "v")
	w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	w.ok(w.eng.GrantAccess(w.ctx, w.m, "h", []string{"v"}))
	grantedAt := w.clock.Now()
	if r := w.roster(); !r.Participants[1].Deadline.Equal(grantedAt.Add(time.Minute)) {
		t.Fatalf("deadline %v", r.Participants[1])
	}
	w.clock.Advance(time.Minute - time.Nanosecond)
	w.wantStatus("v", aggregate.AcceptedToJoinStage)
	w.clock.Advance(time.Nanosecond)
	// Exactly at the deadline the invitation has lapsed, for reads and commands.
	w.wantStatus("v", aggregate.OffStage)
	if r := w.roster(); len(r.Accepted) != 0 {
		t.Fatalf("accepted %v after the deadline", r.Accepted)
	}
	before := len(w.log())
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "v") })
	if len(w.log()) != before {
		t.Fatal("rejected Join recorded the lapse")
	}
	// A command that succeeds records the lapse with it, first.
	w.clock.Advance(time.Second)
	r := w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	if len(r.Events) != 2 || r.Events[0].Type != events.TypeLapsed || r.Events[1].Type != events.TypeAccessRequested {
		t.Fatalf("events %+v", r.Events)
	}
	l := r.Events[0].Payload.(*events.Lapsed).Lapses
	want := events.Lapse{UserID: "v", Kind: events.InvitationExpired, Since: grantedAt, Deadline: grantedAt.Add(time.Minute),
		Setting: "InvitationTTL", Limit: events.Duration(time.Minute), Status: "AcceptedToJoinStage"}
	if len(l) != 1 || !polLapseEqual(l[0], want) {
		t.Fatalf("lapses %+v, want %+v", l, want)
	}
	if r.Events[0].Actor != "" || r.Events[0].CommandID != r.Events[1].CommandID {
		t.Fatalf("lapsed envelope %+v", r.Events[0])
	}
	w.wantStatus("v", aggregate.RequestedToJoinStage)
	w.replayEqualsLive()
}

func polLapseEqual(a, b events.Lapse) bool {
	return a.UserID == b.UserID && a.Kind == b.Kind && a.Since.Equal(b.Since) && a.Deadline.Equal(b.Deadline) &&
		a.Setting == b.Setting && a.Limit == b.Limit && a.Status == b.Status
}

func TestPolicy_SpeakingSlotFreesSeat(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1, SpeakingSlot: 5 * time.Minute, SeatOfferTTL: time.Minute})
	w.add(polAllowed, "a", "b")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	joined := w.clock.Now()
	if _, err := w.eng.Join(w.ctx, w.m, "b"); !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatal(err)
	}
	w.clock.Advance(5 * time.Minute)
	w.wantStatus("a", aggregate.OffStage)
	o := w.offers()
	if len(o) != 1 || o[0].UserID != "b" || !o[0].OfferedAt.Equal(joined.Add(5*time.Minute)) {
		t.Fatalf("offers %+v", o)
	}
	// b's Join records the slot's end first, then b's join.
	r := w.ok(w.eng.Join(w.ctx, w.m, "b"))
	if len(r.Events) != 2 || r.Events[0].Payload.(*events.Lapsed).Lapses[0].Kind != events.SlotEnded {
		t.Fatalf("events %+v", r.Events)
	}
	w.wantStatus("b", aggregate.OnStage)
	w.replayEqualsLive()
}

func TestPolicy_Cooldown(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{RequestCooldown: 10 * time.Minute})
	w.add(polViewer, "v")
	w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	w.ok(w.eng.DenyAccess(w.ctx, w.m, "h", []string{"v"}))
	deniedAt := w.clock.Now()
	w.clock.Advance(10*time.Minute - time.Nanosecond)
	e := w.fails(aggregate.ErrCooldown, func() (stage.Result, error) { return w.eng.RequestAccess(w.ctx, w.m, "v") })
	if !e.Until.Equal(deniedAt.Add(10 * time.Minute)) {
		t.Fatalf("cooldown until %v", e.Until)
	}
	// A host may still invite a user in cooldown.
	w.ok(w.eng.GrantAccess(w.ctx, w.m, "h", []string{"v"}))
	w.ok(w.eng.Leave(w.ctx, w.m, "v"))
	w.clock.Advance(time.Nanosecond)
	w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	w.replayEqualsLive()
}

func TestPolicy_Ban(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{})
	w.add(polAllowed, "a")
	w.add(polViewer, "v")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) {
		return w.eng.BanFromStage(w.ctx, w.m, "a", "v", time.Time{})
	})
	w.fails(aggregate.ErrInvalidCommand, func() (stage.Result, error) {
		return w.eng.BanFromStage(w.ctx, w.m, "h", "v", w.clock.Now())
	})
	until := w.clock.Now().Add(time.Hour)
	w.ok(w.eng.BanFromStage(w.ctx, w.m, "h", "a", until))
	w.ok(w.eng.BanFromStage(w.ctx, w.m, "h", "v", time.Time{}))
	w.wantStatus("a", aggregate.OffStage)
	w.wantStatus("v", aggregate.OffStage)
	if r := w.roster(); len(r.Requests) != 0 || len(r.Bans) != 2 {
		t.Fatalf("roster %+v", r)
	}
	e := w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "a") })
	if !e.Until.Equal(until) {
		t.Fatalf("ban until %v", e.Until)
	}
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.RequestAccess(w.ctx, w.m, "a") })
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.GrantAccess(w.ctx, w.m, "h", []string{"v"}) })
	// A ban outlives leaving and re-entering the meeting.
	w.ok(w.eng.RemoveParticipant(w.ctx, w.m, "a"))
	w.add(polAllowed, "a")
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "a") })
	// Lifting ends v's ban; a's ends at its time.
	w.ok(w.eng.LiftBan(w.ctx, w.m, "h", "v"))
	w.fails(aggregate.ErrInvalidState, func() (stage.Result, error) { return w.eng.LiftBan(w.ctx, w.m, "h", "v") })
	w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	w.clock.Advance(time.Hour)
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	ls := w.log()
	var found bool
	for _, ev := range ls {
		if p, ok := ev.Payload.(*events.Lapsed); ok && p.Lapses[0].Kind == events.BanExpired && p.Lapses[0].UserID == "a" {
			found = true
		}
	}
	if !found {
		t.Fatal("ban expiry not recorded")
	}
	w.replayEqualsLive()
}

func TestPolicy_BanDuringPendingOffer(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1, SeatOfferTTL: time.Minute})
	w.add(polAllowed, "a", "b", "c")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	for _, u := range []string{"b", "c"} {
		if _, err := w.eng.Join(w.ctx, w.m, u); !errors.Is(err, aggregate.ErrStageFull) {
			t.Fatal(err)
		}
	}
	w.ok(w.eng.Leave(w.ctx, w.m, "a"))
	w.clock.Advance(20 * time.Second)
	w.ok(w.eng.BanFromStage(w.ctx, w.m, "h", "b", time.Time{}))
	o := w.offers()
	if len(o) != 1 || o[0].UserID != "c" || !o[0].OfferedAt.Equal(w.clock.Now()) {
		t.Fatalf("offers after banning the offer holder %+v", o)
	}
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.Join(w.ctx, w.m, "b") })
	w.ok(w.eng.Join(w.ctx, w.m, "c"))
	w.replayEqualsLive()
}

func TestPolicy_ReconnectGraceOnlyHost(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{ReconnectGrace: time.Minute})
	w.add(polViewer, "v")
	w.ok(w.eng.RequestAccess(w.ctx, w.m, "v"))
	w.ok(w.eng.Join(w.ctx, w.m, "h"))
	// The only host drops: within the grace they keep the stage and the privilege.
	w.ok(w.eng.Disconnect(w.ctx, w.m, "h"))
	w.fails(aggregate.ErrInvalidState, func() (stage.Result, error) { return w.eng.Disconnect(w.ctx, w.m, "h") })
	w.clock.Advance(59 * time.Second)
	w.wantStatus("h", aggregate.OnStage)
	if r := w.roster(); len(r.Disconnected) != 1 || r.Disconnected[0].UserID != "h" {
		t.Fatalf("roster %+v", r)
	}
	w.ok(w.eng.Reconnect(w.ctx, w.m, "h"))
	w.fails(aggregate.ErrInvalidState, func() (stage.Result, error) { return w.eng.Reconnect(w.ctx, w.m, "h") })
	w.ok(w.eng.Disconnect(w.ctx, w.m, "h"))
	w.clock.Advance(time.Minute)
	// Exactly at the end of the grace the host has left the meeting.
	w.wantStatus("h", 0)
	w.fails(aggregate.ErrNotParticipant, func() (stage.Result, error) { return w.eng.Reconnect(w.ctx, w.m, "h") })
	if _, err := w.eng.GetAccessRequests(w.ctx, w.m, "h"); !errors.Is(err, aggregate.ErrPermissionDenied) {
		t.Fatalf("GetAccessRequests by the departed host: %v", err)
	}
	// Nobody may grant any more; v's request stays queued.
	w.fails(aggregate.ErrPermissionDenied, func() (stage.Result, error) { return w.eng.GrantAccess(w.ctx, w.m, "h", []string{"v"}) })
	if r := w.roster(); len(r.Requests) != 1 || len(r.OnStage) != 0 {
		t.Fatalf("roster %+v", r)
	}
	ls := w.tick()
	if len(ls) != 1 || ls[0].Kind != events.GraceExpired || ls[0].Status != "OnStage" {
		t.Fatalf("lapses %+v", ls)
	}
	// The host comes back as a new participant.
	w.add(polHost, "h")
	w.ok(w.eng.GrantAccess(w.ctx, w.m, "h", []string{"v"}))
	w.replayEqualsLive()
}

func TestPolicy_DisconnectWithoutGrace(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{})
	w.add(polViewer, "v")
	r := w.ok(w.eng.Disconnect(w.ctx, w.m, "v"))
	p, ok := r.Events[0].Payload.(*events.ParticipantLeft)
	if !ok || p.Reason != "Disconnected" {
		t.Fatalf("events %+v", r.Events)
	}
	w.wantStatus("v", 0)
}

func TestPolicy_WaitlistRetryReportsStageFull(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1})
	w.add(polAllowed, "a", "b")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	cmd := aggregate.Command{Actor: "b", Action: aggregate.Join{}}
	r1, err1 := w.eng.Execute(w.ctx, w.m, cmd, stage.WithIdempotencyKey("k1"))
	r2, err2 := w.eng.Execute(w.ctx, w.m, cmd, stage.WithIdempotencyKey("k1"))
	if !errors.Is(err1, aggregate.ErrStageFull) || !errors.Is(err2, aggregate.ErrStageFull) || !r2.Duplicate || r1.Version != r2.Version {
		t.Fatalf("first %+v %v, retry %+v %v", r1, err1, r2, err2)
	}
}

func TestPolicy_LapsedEventsRoundTrip(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1, SeatOfferTTL: time.Second, InvitationTTL: time.Minute,
		SpeakingSlot: time.Hour, RequestCooldown: time.Minute, ReconnectGrace: time.Second})
	w.add(polAllowed, "a", "b")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	w.eng.Join(w.ctx, w.m, "b")
	w.ok(w.eng.Disconnect(w.ctx, w.m, "a"))
	w.ok(w.eng.BanFromStage(w.ctx, w.m, "h", "x", w.clock.Now().Add(time.Second)))
	w.clock.Advance(time.Hour)
	w.tick()
	for _, ev := range w.log() {
		b, err := events.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := events.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if err := back.Verify(); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
}

// TestPolicy_AutoTick runs the scheduler on the real clock, with two
// Engines on one store: each lapse is recorded once.
func TestPolicy_AutoTick(t *testing.T) {
	ctx := context.Background()
	store := eventstore.NewMemory()
	e1, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer e1.Close()
	e2, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	const m = "auto"
	must := func(_ stage.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e1.AddParticipant(ctx, m, aggregate.Participant{UserID: "h", Permissions: polHost}))
	must(e1.AddParticipant(ctx, m, aggregate.Participant{UserID: "v", Permissions: polViewer}))
	must(e1.Configure(ctx, m, "h", aggregate.Settings{InvitationTTL: 20 * time.Millisecond}))
	must(e1.GrantAccess(ctx, m, "h", []string{"v"}))
	// e2 holds the meeting too, so it schedules the same deadline.
	if _, err := e2.Roster(ctx, m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing assertion
	for {
		n := 0
		for ev, err := range store.Load(ctx, m, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == events.TypeLapsed {
				n++
			}
		}
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("%d Lapsed events", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Both engines' timers have fired or will find nothing due: still one.
	e1.Close()
	e2.Close()
	n := 0
	for ev := range store.Load(ctx, m, 1) {
		if ev.Type == events.TypeLapsed {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Lapsed events after Close", n)
	}
	if _, err := e1.Tick(ctx, m); !errors.Is(err, stage.ErrClosed) {
		t.Fatalf("Tick after Close: %v", err)
	}
}

func TestPolicy_GraceKeepsTheSeat(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1, ReconnectGrace: time.Minute, SeatOfferTTL: time.Minute})
	w.add(polAllowed, "a", "b")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	if _, err := w.eng.Join(w.ctx, w.m, "b"); !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatal(err)
	}
	w.ok(w.eng.Disconnect(w.ctx, w.m, "a"))
	droppedAt := w.clock.Now()
	w.clock.Advance(30 * time.Second)
	if o := w.offers(); o != nil {
		t.Fatalf("a's seat was offered during the grace: %+v", o)
	}
	w.wantStatus("a", aggregate.OnStage)
	w.clock.Advance(30 * time.Second)
	w.wantStatus("a", 0)
	o := w.offers()
	if len(o) != 1 || o[0].UserID != "b" || !o[0].OfferedAt.Equal(droppedAt.Add(time.Minute)) {
		t.Fatalf("offers after the grace %+v", o)
	}
	w.replayEqualsLive()
}

func TestPolicy_RaisingCapacityOffersSeats(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{MaxOnStage: 1})
	w.add(polAllowed, "a", "b", "c")
	w.ok(w.eng.Join(w.ctx, w.m, "a"))
	for _, u := range []string{"b", "c"} {
		if _, err := w.eng.Join(w.ctx, w.m, u); !errors.Is(err, aggregate.ErrStageFull) {
			t.Fatal(err)
		}
	}
	w.ok(w.eng.Configure(w.ctx, w.m, "h", aggregate.Settings{MaxOnStage: 2}))
	if o := w.offers(); len(o) != 1 || o[0].UserID != "b" || !o[0].Deadline.IsZero() {
		t.Fatalf("offers %+v", o)
	}
	// Turning the cap off dissolves the waitlist; c stays accepted and may join.
	w.ok(w.eng.Configure(w.ctx, w.m, "h", aggregate.Settings{}))
	if r := w.roster(); r.Waitlist != nil || r.SeatOffers != nil {
		t.Fatalf("roster %+v", r)
	}
	w.wantStatus("c", aggregate.AcceptedToJoinStage)
	w.ok(w.eng.Join(w.ctx, w.m, "c"))
	w.replayEqualsLive()
}

// TestPolicy_EnginesTickOnce has two Engines on one store tick one meeting
// concurrently, many times: each lapse is recorded once.
func TestPolicy_EnginesTickOnce(t *testing.T) {
	w := newPolWorld(t, aggregate.Settings{InvitationTTL: time.Second})
	other, err := stage.New(w.store, stage.WithClock(w.clock.Now), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	users := []string{"a", "b", "c", "d", "e", "f"}
	w.add(polViewer, users...)
	for i, u := range users {
		w.ok(w.eng.GrantAccess(w.ctx, w.m, "h", []string{u}))
		if i%2 == 1 {
			w.clock.Advance(time.Second / 2)
		}
	}
	w.clock.Advance(time.Hour)
	var wg sync.WaitGroup
	for _, e := range []*stage.Engine{w.eng, other, w.eng, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := e.Tick(w.ctx, w.m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, ev := range w.log() {
		if p, ok := ev.Payload.(*events.Lapsed); ok {
			for _, l := range p.Lapses {
				seen[l.UserID]++
			}
		}
	}
	for _, u := range users {
		if seen[u] != 1 {
			t.Fatalf("lapses recorded per user: %v", seen)
		}
	}
}

// TestPolicy_CloseStopsTicks: a deadline that falls after Close is not
// recorded by the closed Engine.
func TestPolicy_CloseStopsTicks(t *testing.T) {
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	const m = "closing"
	for _, f := range []func() (stage.Result, error){
		func() (stage.Result, error) {
			return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "h", Permissions: polHost})
		},
		func() (stage.Result, error) {
			return eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "v", Permissions: polViewer})
		},
		func() (stage.Result, error) {
			return eng.Configure(ctx, m, "h", aggregate.Settings{InvitationTTL: 30 * time.Millisecond})
		},
		func() (stage.Result, error) { return eng.GrantAccess(ctx, m, "h", []string{"v"}) },
	} {
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	eng.Close()
	time.Sleep(100 * time.Millisecond) // past the deadline: a live scheduler would have ticked
	for ev := range store.Load(ctx, m, 1) {
		if ev.Type == events.TypeLapsed {
			t.Fatal("a closed Engine recorded a lapse")
		}
	}
}
