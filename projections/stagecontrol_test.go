package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// pure is a meeting decided by the real rules (aggregate.Decide) and
// followed by NotifyStep, with no engine: each command a second after the
// one before.
type pure struct {
	t   testing.TB
	s   *aggregate.State
	now time.Time
	n   int
}

func newPure(t testing.TB, users map[string]aggregate.Permissions) *pure {
	p := &pure{t: t, s: aggregate.NewState("m"), now: t0}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	for _, u := range names {
		p.do("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: users[u]}})
	}
	return p
}

// decide decides the command at the meeting's clock, a second later than
// the last, and returns its events without applying them.
func (p *pure) decide(actor string, a aggregate.Action) []events.Envelope {
	p.t.Helper()
	p.n++
	p.now = p.now.Add(time.Second)
	d, err := aggregate.Decide(p.s, aggregate.Command{ID: fmt.Sprint("c", p.n), Actor: actor, Action: a}, p.now)
	if err != nil {
		p.t.Fatalf("%s by %q: %v", a.Name(), actor, err)
	}
	return d.Events
}

// step applies e with NotifyStep and renders its notifications.
func (p *pure) step(e *events.Envelope) []string { return renderAll(projections.NotifyStep(p.s, e)) }

func renderAll(ns []projections.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, render(n))
	}
	return out
}

// do decides the command, applies its events and renders their
// notifications.
func (p *pure) do(actor string, a aggregate.Action) []string {
	p.t.Helper()
	var out []string
	for _, e := range p.decide(actor, a) {
		out = append(out, p.step(&e)...)
	}
	return out
}

// render writes a notification as type>recipient, then what it carries
// besides the envelope: (user), =status, role, phase, invited, the queue's
// or the stage's changes.
func render(n projections.Notification) string {
	to := n.Recipient
	if to == projections.Everyone {
		to = "*"
	}
	s := string(n.Type) + ">" + to
	if n.UserID != "" && n.UserID != n.Recipient {
		s += "(" + n.UserID + ")"
	}
	if n.Status != 0 {
		s += "=" + n.Status.String()
	}
	if n.Role != "" {
		s += " role " + n.Role
	}
	if n.Phase != 0 {
		s += " " + n.Phase.String()
	}
	if n.Invited {
		s += " invited"
	}
	for _, c := range n.Queue {
		if c.Change == projections.QueueAdded {
			s += fmt.Sprintf(" +%s@%d", c.UserID, c.Position)
		} else {
			s += " -" + c.UserID
		}
	}
	if n.Type == projections.StageAccessRequestUpdate {
		s += fmt.Sprintf(" [%d]", n.QueueLength)
	}
	for _, c := range n.Stage {
		s += " " + c.Change + ":" + c.UserID
	}
	for _, r := range n.Roles {
		s += " " + r.UserID + ":" + r.Role
	}
	return s
}

func check(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// A grant tells its invitees from its approvals by AccessGranted.Invited;
// a grant recorded before that field existed (Invited empty) by the
// status before.
func TestNotify_grantInvitedField(t *testing.T) {
	p := newPure(t, map[string]aggregate.Permissions{"h": host, "o": viewer, "r": viewer})
	p.do("r", aggregate.RequestAccess{})
	evs := p.decide("h", aggregate.GrantAccess{Users: []string{"o", "r"}})
	g := evs[0].Payload.(*events.AccessGranted)
	if !slices.Equal(g.Invited, []string{"o"}) {
		t.Fatalf("invited %v", g.Invited)
	}
	want := []string{"stageStatusUpdate>o=AcceptedToJoinStage", "stageStatusUpdate>r=AcceptedToJoinStage",
		"stageInvitation>o", "stageRequestApproved>r", "stageAccessRequestUpdate>h -r [0]"}
	with := func(invited []string) []string {
		e := evs[0]
		e.Payload = &events.AccessGranted{Users: g.Users, Invited: invited}
		return renderAll(projections.NotifyStep(p.s.Clone(), &e))
	}
	check(t, "grant", with(g.Invited), want...)
	check(t, "grant recorded before invited", with(nil), want...)
	// The field, not the status before, decides: a log that says r was
	// invited (a verifier's concern) is notified as it says.
	check(t, "grant naming r invited", with([]string{"r"}),
		"stageStatusUpdate>o=AcceptedToJoinStage", "stageStatusUpdate>r=AcceptedToJoinStage",
		"stageRequestApproved>o", "stageInvitation>r", "stageAccessRequestUpdate>h -r [0]")
}

// Closing requests without denying them tells everyone and leaves the
// queue as it is; opening them tells everyone.
func TestNotify_requestsSwitch(t *testing.T) {
	p := newPure(t, map[string]aggregate.Permissions{"h": host, "r": viewer, "s": viewer})
	p.do("r", aggregate.RequestAccess{})
	check(t, "close", p.do("h", aggregate.CloseRequests{}), "stageRequestsClosed>*")
	if p.s.QueueLen() != 1 {
		t.Errorf("queue %d after closing without denying", p.s.QueueLen())
	}
	check(t, "open", p.do("h", aggregate.OpenRequests{}), "stageRequestsOpened>*")
	p.do("s", aggregate.RequestAccess{})
	check(t, "close denying", p.do("h", aggregate.CloseRequests{DenyPending: true}),
		"stageStatusUpdate>r=OffStage", "stageStatusUpdate>s=OffStage",
		"stageRequestRejected>r", "stageRequestRejected>s",
		"stageAccessRequestUpdate>h -r -s [0]", "stageRequestsClosed>*")
}

// The phase: a SettingsChanged that flips StartBackstage on a stage never
// started or ended, StartStage, EndStage (from live and from backstage)
// tell everyone, with the phase and its start; a setting that changes no
// phase tells nobody.
func TestNotify_phase(t *testing.T) {
	p := newPure(t, map[string]aggregate.Permissions{"h": host, "a": speaker, "r": viewer})
	phase := func(got []string, want aggregate.Phase) {
		t.Helper()
		last := got[len(got)-1]
		if last != "stagePhaseUpdate>* "+want.String() {
			t.Errorf("last notification %q, want the phase %s", last, want)
		}
	}
	evs := p.decide("h", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true}})
	ns := projections.NotifyStep(p.s, &evs[0])
	if len(ns) != 1 || ns[0].Type != projections.StagePhaseUpdate || ns[0].Recipient != projections.Everyone ||
		ns[0].Phase != aggregate.PhaseBackstage || !ns[0].Since.Equal(evs[0].Time) {
		t.Fatalf("backstage setting: %+v", ns)
	}
	check(t, "the same setting again", p.do("h", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true, MaxOnStage: 5}}))
	check(t, "join backstage", p.do("a", aggregate.Join{}), "stageStatusUpdate>a=OnStage", "stageRosterUpdate>* joined:a")
	evs = p.decide("h", aggregate.StartStage{})
	ns = projections.NotifyStep(p.s, &evs[0])
	if len(ns) != 1 || ns[0].Phase != aggregate.PhaseLive || !ns[0].Since.Equal(evs[0].Time) || ns[0].Event != events.TypeStageStarted {
		t.Fatalf("start: %+v", ns)
	}
	// Once started, the setting no longer moves the stage.
	check(t, "setting after the start", p.do("h", aggregate.Configure{Settings: aggregate.Settings{}}))
	check(t, "setting after the start", p.do("h", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true}}))
	p.do("r", aggregate.RequestAccess{})
	got := p.do("h", aggregate.EndStage{})
	check(t, "end", got, "stageStatusUpdate>a=OffStage", "stageStatusUpdate>r=OffStage",
		"stageAccessRequestUpdate>h -r [0]", "stageRosterUpdate>* left:a", "stagePhaseUpdate>* Ended")
	phase(p.do("h", aggregate.StartStage{}), aggregate.PhaseLive)

	q := newPure(t, map[string]aggregate.Permissions{"h": host})
	q.do("h", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true}})
	check(t, "end from backstage", q.do("h", aggregate.EndStage{}), "stagePhaseUpdate>* Ended")
}

// A co-host gets the hosts' notifications while the role holds, and a
// grant, deny or bring decided by a co-host notifies as a host's does.
func TestNotify_coHostModerates(t *testing.T) {
	p := newPure(t, map[string]aggregate.Permissions{"h": host, "c": viewer, "r": viewer, "s": viewer})
	check(t, "promote", p.do("h", aggregate.PromoteCoHost{UserID: "c"}),
		"stageRoleUpdate>c role coHost", "stageRosterUpdate>* c:coHost")
	check(t, "request", p.do("r", aggregate.RequestAccess{}),
		"stageStatusUpdate>r=RequestedToJoinStage", "newStageRequest>c(r)", "newStageRequest>h(r)",
		"stageAccessRequestUpdate>c +r@1 [1]", "stageAccessRequestUpdate>h +r@1 [1]")
	check(t, "co-host denies", p.do("c", aggregate.DenyAccess{Users: []string{"r"}}),
		"stageStatusUpdate>r=OffStage", "stageRequestRejected>r",
		"stageAccessRequestUpdate>c -r [0]", "stageAccessRequestUpdate>h -r [0]")
	check(t, "co-host invites", p.do("c", aggregate.GrantAccess{Users: []string{"s"}}),
		"stageStatusUpdate>s=AcceptedToJoinStage", "stageInvitation>s")
	check(t, "invitee declines", p.do("s", aggregate.DeclineInvitation{}),
		"stageStatusUpdate>s=OffStage", "stageInvitationDeclined>c(s) invited", "stageInvitationDeclined>h(s) invited")
	check(t, "demote", p.do("h", aggregate.DemoteCoHost{UserID: "c"}),
		"stageRoleUpdate>c role participant", "stageRosterUpdate>* c:participant")
	check(t, "request after the demotion", p.do("r", aggregate.RequestAccess{}),
		"stageStatusUpdate>r=RequestedToJoinStage", "newStageRequest>h(r)", "stageAccessRequestUpdate>h +r@1 [1]")
	// A host who also holds the co-host role stays a host when demoted.
	p.do("h", aggregate.PromoteCoHost{UserID: "s"})
	p.do("", aggregate.UpdatePermissions{UserID: "s", Permissions: host})
	check(t, "demote a host", p.do("h", aggregate.DemoteCoHost{UserID: "s"}),
		"stageRoleUpdate>s role host", "stageRosterUpdate>* s:host")
}

// Bringing a user on stage from the queue: their status, broughtOnStage,
// the queue's change for the moderators, the roster; no rejection.
func TestNotify_bringFromQueue(t *testing.T) {
	p := newPure(t, map[string]aggregate.Permissions{"h": host, "r": viewer})
	p.do("h", aggregate.Configure{Settings: aggregate.Settings{AllowBringOnStage: true}})
	p.do("r", aggregate.RequestAccess{})
	check(t, "bring", p.do("h", aggregate.BringOnStage{UserID: "r"}),
		"stageStatusUpdate>r=OnStage", "broughtOnStage>r", "stageAccessRequestUpdate>h -r [0]", "stageRosterUpdate>* joined:r")
	// A Join is not a bring.
	p.do("h", aggregate.Kick{Users: []string{"r"}})
	p.do("h", aggregate.GrantAccess{Users: []string{"r"}})
	check(t, "join", p.do("r", aggregate.Join{}), "stageStatusUpdate>r=OnStage", "stageRosterUpdate>* joined:r")
	// A host bringing themselves is not told they were brought.
	check(t, "bring oneself", p.do("h", aggregate.BringOnStage{UserID: "h"}), "stageStatusUpdate>h=OnStage", "stageRosterUpdate>* joined:h")
}

// A request that lapses gets stageRequestExpired, not a rejection; a
// decline by Leave tells the moderators as DeclineInvitation does.
func TestNotify_requestExpiredAndLeaveDecline(t *testing.T) {
	p := newPure(t, map[string]aggregate.Permissions{"h": host, "r": viewer, "s": viewer})
	p.do("h", aggregate.Configure{Settings: aggregate.Settings{RequestTTL: time.Minute}})
	p.do("r", aggregate.RequestAccess{})
	p.now = p.now.Add(time.Minute)
	check(t, "expired", p.do("", aggregate.Tick{}),
		"stageStatusUpdate>r=OffStage", "stageRequestExpired>r", "stageAccessRequestUpdate>h -r [0]")
	p.do("r", aggregate.RequestAccess{})
	p.do("h", aggregate.GrantAccess{Users: []string{"r"}})
	check(t, "approved, then left", p.do("r", aggregate.Leave{}),
		"stageStatusUpdate>r=OffStage", "stageInvitationDeclined>h(r)")
}

// The roster shows the stage's phase and the requests switch, each with
// its start, and per participant the co-host role and an invitation; the
// Runner's roster is the offline fold's, byte for byte.
func TestRoster_stageControls(t *testing.T) {
	f := newFixture(t)
	r, err := projections.NewRunner(f.store)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRunner(t, r)
	defer stop()
	f.add("m", "alice", host)
	f.add("m", "bob", viewer)
	f.add("m", "carol", viewer)
	f.add("m", "dave", viewer)
	f.do(time.Second, "m", "dave", aggregate.RequestAccess{})
	backstage := f.do(time.Second, "m", "alice", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true}})
	f.do(time.Second, "m", "alice", aggregate.PromoteCoHost{UserID: "bob"})
	f.do(time.Second, "m", "bob", aggregate.GrantAccess{Users: []string{"carol"}})
	closed := f.do(time.Second, "m", "alice", aggregate.CloseRequests{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.WaitFor(ctx, closed.Seq); err != nil {
		t.Fatal(err)
	}
	ro, err := r.Roster(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	want := projections.StageState{Phase: aggregate.PhaseBackstage, Since: backstage.Events[0].Time, RequestsSince: closed.Events[0].Time}
	if ro.Stage != want {
		t.Errorf("stage %+v, want %+v", ro.Stage, want)
	}
	entry := func(ro projections.Roster, u string) projections.RosterEntry {
		for _, e := range ro.Participants {
			if e.UserID == u {
				return e
			}
		}
		t.Fatalf("no %s in the roster", u)
		return projections.RosterEntry{}
	}
	if e := entry(ro, "bob"); !e.CoHost || e.Invited {
		t.Errorf("bob %+v", e)
	}
	if e := entry(ro, "carol"); e.CoHost || !e.Invited || e.Status != aggregate.AcceptedToJoinStage {
		t.Errorf("carol %+v", e)
	}
	if e := entry(ro, "alice"); e.CoHost || e.Invited {
		t.Errorf("alice %+v", e)
	}
	b, _ := json.Marshal(ro)
	for _, frag := range []string{
		`"stage":{"phase":"Backstage","since":"` + backstage.Events[0].Time.Format(time.RFC3339) + `","requestsOpen":false,"requestsSince":"` + closed.Events[0].Time.Format(time.RFC3339) + `"}`,
		`"user":"bob","status":"OffStage"`, `"coHost":true`, `"invited":true`,
	} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("roster JSON without %s:\n%s", frag, b)
		}
	}
	s, err := projections.Fold("m", f.store.Load(ctx, "m", 1))
	if err != nil {
		t.Fatal(err)
	}
	if off, _ := json.Marshal(projections.RosterOf(s)); string(off) != string(b) {
		t.Errorf("runner %s\noffline %s", b, off)
	}

	// Ended: carol's invitation went with it, and the phase began then;
	// requests stay closed.
	f.do(time.Second, "m", "alice", aggregate.StartStage{})
	end := f.do(time.Second, "m", "alice", aggregate.EndStage{})
	if err := r.WaitFor(ctx, end.Seq); err != nil {
		t.Fatal(err)
	}
	ro, err = r.Roster(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	want = projections.StageState{Phase: aggregate.PhaseEnded, Since: end.Events[0].Time, RequestsSince: closed.Events[0].Time}
	if ro.Stage != want || len(ro.Accepted) != 0 || len(ro.Requests) != 0 {
		t.Errorf("after the end: stage %+v (want %+v), accepted %v, requests %v", ro.Stage, want, ro.Accepted, ro.Requests)
	}
	if e := entry(ro, "carol"); e.Invited || e.Status != aggregate.OffStage {
		t.Errorf("carol after the end %+v", e)
	}
	// A meeting that never used the controls is live, requests open.
	f.add("m2", "zoe", host)
	s2, err := projections.Fold("m2", f.store.Load(ctx, "m2", 1))
	if err != nil {
		t.Fatal(err)
	}
	first := f.events("m2")[0].Time
	if got := projections.RosterOf(s2).Stage; got != (projections.StageState{Phase: aggregate.PhaseLive, Since: first, RequestsOpen: true}) {
		t.Errorf("default stage %+v", got)
	}
	b, _ = json.Marshal(projections.RosterOf(s2))
	if !strings.Contains(string(b), `"stage":{"phase":"Live","since":"`+first.Format(time.RFC3339)+`","requestsOpen":true}`) {
		t.Errorf("default roster JSON %s", b)
	}
}

// NotifyStep of each stage-control event costs the same in a meeting of
// 200 or 20,000 participants (the bytes it allocates; comparing every
// participant, as for an unknown event type, allocates megabytes).
func TestNotifyStep_costIndependentOfAudience(t *testing.T) {
	script := func(audience int) (names []string, bytes []uint64) {
		users := map[string]aggregate.Permissions{"h1": host, "h2": host, "a": speaker}
		for i := range audience {
			users[fmt.Sprint("v", i)] = viewer
		}
		p := newPure(t, users)
		p.do("h1", aggregate.Configure{Settings: aggregate.Settings{AllowBringOnStage: true, RequestTTL: time.Hour}})
		var ms runtime.MemStats
		run := func(actor string, a aggregate.Action) {
			for _, e := range p.decide(actor, a) {
				runtime.ReadMemStats(&ms)
				before := ms.TotalAlloc
				projections.NotifyStep(p.s, &e)
				runtime.ReadMemStats(&ms)
				names = append(names, string(e.Type))
				bytes = append(bytes, ms.TotalAlloc-before)
			}
		}
		run("h1", aggregate.PromoteCoHost{UserID: "v0"})
		run("v1", aggregate.RequestAccess{})
		run("v2", aggregate.RequestAccess{})
		run("v0", aggregate.GrantAccess{Users: []string{"v1", "v3"}})
		run("v3", aggregate.DeclineInvitation{})
		run("h1", aggregate.CloseRequests{DenyPending: true})
		run("h1", aggregate.OpenRequests{})
		run("h1", aggregate.BringOnStage{UserID: "v4"})
		run("a", aggregate.Join{})
		run("v5", aggregate.RequestAccess{})
		p.now = p.now.Add(time.Hour)
		run("", aggregate.Tick{})
		run("v6", aggregate.RequestAccess{})
		run("h1", aggregate.DemoteCoHost{UserID: "v0"})
		run("h1", aggregate.EndStage{})
		run("h1", aggregate.StartStage{})
		run("h1", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true}})
		return names, bytes
	}
	names, small := script(200)
	names2, large := script(20_000)
	if !slices.Equal(names, names2) {
		t.Fatalf("the scripts differ: %v, %v", names, names2)
	}
	for i := range names {
		if large[i] > 2*small[i]+16<<10 {
			t.Errorf("%s: %d bytes with 20,000 participants, %d with 200", names[i], large[i], small[i])
		}
	}
}
