package aggregate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

var t0 = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)

// polLog is a meeting driven by Decide and Evolve alone, as the package
// documentation's loop says.
type polLog struct {
	t   *testing.T
	s   *aggregate.State
	n   int
	log []events.Envelope
}

func newPolLog(t *testing.T) *polLog {
	return &polLog{t: t, s: aggregate.NewState("m")}
}

// do decides and applies a command at now; it returns the decision's events
// and error (Decision.Err included).
func (l *polLog) do(now time.Time, actor string, a aggregate.Action) ([]events.Envelope, error) {
	l.t.Helper()
	l.n++
	d, err := aggregate.Decide(l.s, aggregate.Command{ID: fmt.Sprint("c", l.n), Actor: actor, Action: a}, now)
	if err != nil {
		return nil, err
	}
	for i := range d.Events {
		d.Events[i].ID = uuid.New()
		if err := d.Events[i].Seal(l.s.LastHash()); err != nil {
			l.t.Fatal(err)
		}
		aggregate.Evolve(l.s, &d.Events[i])
		l.log = append(l.log, d.Events[i])
	}
	return d.Events, d.Err
}

func (l *polLog) ok(now time.Time, actor string, a aggregate.Action) []events.Envelope {
	l.t.Helper()
	evs, err := l.do(now, actor, a)
	if err != nil {
		l.t.Fatalf("%s by %s: %v", a.Name(), actor, err)
	}
	return evs
}

func hostAndUsers(t *testing.T, s aggregate.Settings, users ...string) *polLog {
	l := newPolLog(t)
	l.ok(t0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "h",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}})
	for _, u := range users {
		l.ok(t0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u,
			Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed}}})
	}
	l.ok(t0, "h", aggregate.Configure{Settings: s})
	return l
}

func TestDecide_StageFullRecordsWaitlisting(t *testing.T) {
	l := hostAndUsers(t, aggregate.Settings{MaxOnStage: 1}, "a", "b")
	l.ok(t0, "a", aggregate.Join{})
	evs, err := l.do(t0, "b", aggregate.Join{})
	if !errors.Is(err, aggregate.ErrStageFull) || len(evs) != 1 || evs[0].Type != events.TypeSeatWaitlisted {
		t.Fatalf("events %v, err %v", evs, err)
	}
	if p := evs[0].Payload.(*events.SeatWaitlisted); p.Position != 1 || p.Status != "OffStage" || p.MaxOnStage != 1 {
		t.Fatalf("payload %+v", p)
	}
	if err := aggregate.ErrorOf(&evs[0]); !errors.Is(err, aggregate.ErrStageFull) {
		t.Fatalf("ErrorOf = %v", err)
	}
	// Once waitlisted, a second Join decides nothing.
	if evs, err := l.do(t0, "b", aggregate.Join{}); !errors.Is(err, aggregate.ErrStageFull) || evs != nil {
		t.Fatalf("events %v, err %v", evs, err)
	}
}

func TestDecide_TickExactlyAtDeadline(t *testing.T) {
	l := hostAndUsers(t, aggregate.Settings{InvitationTTL: time.Minute}, "a")
	l.ok(t0, "h", aggregate.GrantAccess{Users: []string{"a"}})
	deadline := t0.Add(time.Minute)
	if got := aggregate.NextDeadline(l.s); !got.Equal(deadline) {
		t.Fatalf("NextDeadline %v, want %v", got, deadline)
	}
	if evs := l.ok(deadline.Add(-time.Nanosecond), "", aggregate.Tick{}); len(evs) != 0 {
		t.Fatalf("tick before the deadline: %v", evs)
	}
	evs := l.ok(deadline, "", aggregate.Tick{})
	if len(evs) != 1 || evs[0].Actor != "" {
		t.Fatalf("tick at the deadline: %v", evs)
	}
	if got := l.s.Status("a"); got != aggregate.OffStage {
		t.Fatalf("a is %s", got)
	}
	if m, _ := l.s.Member("a"); !m.Since.Equal(deadline) {
		t.Fatalf("OffStage since %v, want the deadline %v", m.Since, deadline)
	}
	if !aggregate.NextDeadline(l.s).IsZero() {
		t.Fatal("a deadline is still pending")
	}
}

func TestAt_DoesNotChangeTheState(t *testing.T) {
	l := hostAndUsers(t, aggregate.Settings{SpeakingSlot: time.Minute}, "a")
	l.ok(t0, "a", aggregate.Join{})
	if aggregate.At(l.s, t0) != l.s {
		t.Fatal("At with nothing due copied the state")
	}
	before := l.s.Clone()
	at := aggregate.At(l.s, t0.Add(time.Hour))
	if at.Status("a") != aggregate.OffStage || at.Version() != l.s.Version() {
		t.Fatalf("At: a is %s at version %d", at.Status("a"), at.Version())
	}
	if !l.s.Equal(before) || l.s.Status("a") != aggregate.OnStage {
		t.Fatal("At changed its argument")
	}
	// Recording the lapse gives the state At showed, at the next version.
	l.ok(t0.Add(time.Hour), "", aggregate.Tick{})
	if l.s.Status("a") != aggregate.OffStage || l.s.Version() != before.Version()+1 {
		t.Fatalf("after the tick: a is %s at version %d", l.s.Status("a"), l.s.Version())
	}
}

func TestDueLapses_CascadeInDeadlineOrder(t *testing.T) {
	// One seat, a slot of 1m and offers of 10s: when a's slot ends, b, c, d
	// are offered the seat in turn, each from the previous deadline.
	l := hostAndUsers(t, aggregate.Settings{MaxOnStage: 1, SpeakingSlot: time.Minute, SeatOfferTTL: 10 * time.Second}, "a", "b", "c", "d")
	l.ok(t0, "a", aggregate.Join{})
	for _, u := range []string{"b", "c", "d"} {
		if _, err := l.do(t0, u, aggregate.Join{}); !errors.Is(err, aggregate.ErrStageFull) {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Minute + 25*time.Second)
	ls := aggregate.DueLapses(l.s, now)
	want := []struct {
		user string
		kind events.LapseKind
		at   time.Duration
	}{
		{"a", events.SlotEnded, time.Minute},
		{"b", events.SeatOfferLapsed, time.Minute + 10*time.Second},
		{"c", events.SeatOfferLapsed, time.Minute + 20*time.Second},
	}
	if len(ls) != len(want) {
		t.Fatalf("lapses %+v", ls)
	}
	for i, w := range want {
		if ls[i].UserID != w.user || ls[i].Kind != w.kind || !ls[i].Deadline.Equal(t0.Add(w.at)) {
			t.Fatalf("lapse %d: %+v, want %v", i, ls[i], w)
		}
	}
	wl := aggregate.At(l.s, now).Waitlist()
	if len(wl) != 1 || wl[0].UserID != "d" || !wl[0].OfferDeadline.Equal(t0.Add(time.Minute+30*time.Second)) {
		t.Fatalf("waitlist at now %+v", wl)
	}
}

func TestDecide_CooldownSaysWhen(t *testing.T) {
	l := newPolLog(t)
	l.ok(t0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "h",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}})
	l.ok(t0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "v",
		Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}})
	l.ok(t0, "h", aggregate.Configure{Settings: aggregate.Settings{RequestCooldown: time.Minute}})
	l.ok(t0, "v", aggregate.RequestAccess{})
	l.ok(t0, "h", aggregate.DenyAccess{Users: []string{"v"}})
	_, err := l.do(t0.Add(59*time.Second), "v", aggregate.RequestAccess{})
	var ae *aggregate.Error
	if !errors.Is(err, aggregate.ErrCooldown) || !errors.As(err, &ae) || !ae.Until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("err %v", err)
	}
	l.ok(t0.Add(time.Minute), "v", aggregate.RequestAccess{})
}

func TestSettings_JSON(t *testing.T) {
	s := aggregate.Settings{MaxOnStage: 2, InvitationTTL: 90 * time.Second}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"maxOnStage":2,"invitationTTL":"1m30s"}` {
		t.Fatalf("JSON %s", b)
	}
	var back aggregate.Settings
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Fatalf("round trip %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"maxOnStage":2,"surprise":1}`), &back); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestEvolve_ReplayEqualsLive(t *testing.T) {
	l := hostAndUsers(t, aggregate.Settings{MaxOnStage: 1, SeatOfferTTL: time.Second, InvitationTTL: time.Minute,
		SpeakingSlot: time.Hour, RequestCooldown: time.Minute, ReconnectGrace: time.Second}, "a", "b", "c")
	l.ok(t0, "a", aggregate.Join{})
	l.do(t0, "b", aggregate.Join{})
	l.do(t0, "c", aggregate.Join{})
	l.ok(t0, "", aggregate.Disconnect{UserID: "a"})
	l.ok(t0, "h", aggregate.BanFromStage{UserID: "x", Until: t0.Add(time.Second)})
	l.ok(t0.Add(time.Hour), "", aggregate.Tick{})
	re := aggregate.NewState("m")
	for i := range l.log {
		b, err := events.Marshal(&l.log[i])
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		aggregate.Evolve(re, &e)
	}
	if !re.Equal(l.s) {
		t.Fatal("the state folded from the decoded log differs from the live one")
	}
}
