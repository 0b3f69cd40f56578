package stage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

// policyMachine drives an Engine (memory store, test clock, no scheduler)
// with random commands, random settings and a clock that advances by random
// steps (sometimes exactly to the next deadline), and checks the policies'
// invariants after every step, mostly against the stored log rather than
// the aggregate's own bookkeeping.
type policyMachine struct {
	ctx   context.Context
	store *eventstore.Memory
	eng   *stage.Engine
	clock *polClock
	users []string
	steps int
	stats map[string]int // what the run covered: event types, lapse kinds, errors

	snapEvery int // the engine snapshots the meeting every so many events
}

// start starts an engine on the store: one that loads the meeting from
// its latest snapshot.
func (m *policyMachine) start(t *rapid.T) {
	eng, err := stage.New(m.store, stage.WithClock(m.clock.Now), stage.WithAutoTick(false), stage.WithSnapshotEvery(m.snapEvery))
	if err != nil {
		t.Fatal(err)
	}
	m.eng = eng
}

// Restart replaces the engine with a new one, which loads the meeting from
// the snapshot the old one wrote last (Close waits for it) and the events
// after it; Check compares its state with a fold of the whole log.
func (m *policyMachine) Restart(t *rapid.T) {
	m.eng.Close()
	m.start(t)
	m.stats["restart"]++
	if _, err := m.eng.Roster(m.ctx, polMeeting); err != nil {
		t.Fatal(err)
	}
	if live, raw := m.eng.CachedStateForTest(polMeeting), m.fold(t); !live.Equal(raw) {
		t.Fatalf("after a restart, the loaded state differs from a fold of the log at version %d", raw.Version())
	}
}

const polMeeting = "prop"

func (m *policyMachine) init(t *rapid.T) {
	m.ctx = context.Background()
	m.store = eventstore.NewMemory()
	m.clock = &polClock{t: polT0}
	m.snapEvery = rapid.IntRange(1, 8).Draw(t, "snapshotEvery")
	m.start(t)
	m.users = []string{"h1", "h2", "u1", "u2", "u3", "u4"}
	must := func(_ stage.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Two hosts, two users with Allowed access and a viewer to start with,
	// and a capacity, so that the stage fills up often.
	must(m.eng.AddParticipant(m.ctx, polMeeting, aggregate.Participant{UserID: "h1", Permissions: polHost}))
	must(m.eng.AddParticipant(m.ctx, polMeeting, aggregate.Participant{UserID: "h2", Permissions: polHost}))
	must(m.eng.AddParticipant(m.ctx, polMeeting, aggregate.Participant{UserID: "u1", Permissions: polAllowed}))
	must(m.eng.AddParticipant(m.ctx, polMeeting, aggregate.Participant{UserID: "u2", Permissions: polAllowed}))
	must(m.eng.AddParticipant(m.ctx, polMeeting, aggregate.Participant{UserID: "u3", Permissions: polViewer}))
	must(m.eng.Configure(m.ctx, polMeeting, "h1", drawSettings(t, 1)))
}

// polDurations: rapid draws the first elements most often.
var polDurations = []time.Duration{30 * time.Second, time.Minute, 10 * time.Second, 3 * time.Minute, time.Second, 0, 0}

func drawDuration(t *rapid.T, label string) time.Duration {
	return rapid.SampledFrom(polDurations).Draw(t, label)
}

func drawSettings(t *rapid.T, minCap int) aggregate.Settings {
	return aggregate.Settings{
		MaxOnStage:      rapid.SampledFrom([]int{1, 2, 1, 2, 3, max(minCap, 0)}).Draw(t, "maxOnStage"),
		SeatOfferTTL:    drawDuration(t, "seatOfferTTL"),
		InvitationTTL:   drawDuration(t, "invitationTTL"),
		SpeakingSlot:    drawDuration(t, "speakingSlot"),
		RequestCooldown: drawDuration(t, "requestCooldown"),
		ReconnectGrace:  drawDuration(t, "reconnectGrace"),
		RequestTTL:      drawDuration(t, "requestTTL"),
		// Backstage mostly off, so that runs reach a live stage.
		StartBackstage:    rapid.IntRange(0, 3).Draw(t, "backstage") == 0,
		AllowBringOnStage: rapid.Bool().Draw(t, "allowBring"),
	}
}

func (m *policyMachine) user(t *rapid.T, label string) string {
	return rapid.SampledFrom(m.users).Draw(t, label)
}

// host draws the actor of a host command: mostly a host, sometimes anyone.
func (m *policyMachine) host(t *rapid.T) string {
	if rapid.IntRange(0, 9).Draw(t, "anyActor") >= 8 {
		return m.user(t, "actor")
	}
	return rapid.SampledFrom([]string{"h1", "h2"}).Draw(t, "actor")
}

// inStatus returns the participants whose status (at now) is one of sts.
func (m *policyMachine) inStatus(t *rapid.T, sts ...aggregate.Status) []string {
	r, err := m.eng.Roster(m.ctx, polMeeting)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range r.Participants {
		if slices.Contains(sts, e.Status) {
			out = append(out, e.UserID)
		}
	}
	return out
}

// pick draws a user, mostly one whose status is one of sts (a command's
// likely target), sometimes anyone.
func (m *policyMachine) pick(t *rapid.T, label string, sts ...aggregate.Status) string {
	if c := m.inStatus(t, sts...); len(c) > 0 && rapid.IntRange(0, 9).Draw(t, label+"Any") < 8 {
		return rapid.SampledFrom(c).Draw(t, label)
	}
	return m.user(t, label)
}

// targets draws the targets of a list command, mostly among the users whose
// status is one of sts.
func (m *policyMachine) targets(t *rapid.T, sts ...aggregate.Status) []string {
	if c := m.inStatus(t, sts...); len(c) > 0 && rapid.IntRange(0, 9).Draw(t, "targetsAny") < 8 {
		return rapid.SliceOfNDistinct(rapid.SampledFrom(c), 1, 3, rapid.ID[string]).Draw(t, "targets")
	}
	return m.users3(t)
}

func (m *policyMachine) users3(t *rapid.T) []string {
	return rapid.SliceOfNDistinct(rapid.SampledFrom(m.users), 1, 3, rapid.ID[string]).Draw(t, "targets")
}

func (m *policyMachine) log(t *rapid.T) []events.Envelope {
	var out []events.Envelope
	for e, err := range m.store.Load(m.ctx, polMeeting, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// run executes one command and checks what it stored: nothing when it
// failed, except the waitlisting of a Join on a full stage.
func (m *policyMachine) run(t *rapid.T, name string, f func() (stage.Result, error)) {
	t.Helper()
	m.steps++
	before := len(m.log(t))
	r, err := f()
	after := m.log(t)
	for _, e := range after[before:] {
		m.stats[string(e.Type)]++
		if p, ok := e.Payload.(*events.Lapsed); ok {
			for _, l := range p.Lapses {
				m.stats["lapse:"+string(l.Kind)]++
			}
		}
	}
	if err != nil {
		m.stats["error:"+name+":"+aggregate.ReasonCode(err)]++
	}
	if err == nil {
		if len(r.Events) > 0 && r.Version != uint64(len(after)) {
			t.Fatalf("%s: result version %d, log has %d events", name, r.Version, len(after))
		}
		if name == "RequestAccess" {
			m.checkNoCooldown(t, r.Events[len(r.Events)-1].Actor)
		}
		return
	}
	if !isDomainError(err) {
		t.Fatalf("%s: unexpected error %v", name, err)
	}
	added := after[before:]
	if errors.Is(err, aggregate.ErrStageFull) && len(added) > 0 {
		last := added[len(added)-1]
		if last.Type != events.TypeSeatWaitlisted || len(added) > 2 || (len(added) == 2 && added[0].Type != events.TypeLapsed) {
			t.Fatalf("%s: ErrStageFull stored %v", name, typesOf(added))
		}
		return
	}
	if len(added) > 0 {
		t.Fatalf("%s failed (%v) and stored %v", name, err, typesOf(added))
	}
	if errors.Is(err, aggregate.ErrCooldown) {
		m.checkCooldownError(t, err)
	}
}

func typesOf(evs []events.Envelope) []events.Type {
	var out []events.Type
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func isDomainError(err error) bool {
	for _, s := range []error{aggregate.ErrPermissionDenied, aggregate.ErrInvalidState, aggregate.ErrNotParticipant,
		aggregate.ErrInvalidCommand, aggregate.ErrStageFull, aggregate.ErrCooldown, aggregate.ErrNoMeeting,
		aggregate.ErrBackstage, aggregate.ErrStageEnded, aggregate.ErrRequestsClosed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// checkCooldownError checks that a cooldown error says when, and that the
// time is the user's last recorded denial plus the cooldown in force.
func (m *policyMachine) checkCooldownError(t *rapid.T, err error) {
	var ae *aggregate.Error
	if !errors.As(err, &ae) || ae.Until.IsZero() {
		t.Fatalf("cooldown error without a time: %v", err)
	}
	s := m.fold(t)
	var denied time.Time
	for _, e := range m.log(t) {
		if deniedBy(&e, ae.UserID) {
			denied = e.Time
		}
	}
	want := denied.Add(s.Settings().RequestCooldown)
	if !ae.Until.Equal(want) || !m.clock.Now().Before(want) {
		t.Fatalf("cooldown until %v, want %v (now %v)", ae.Until, want, m.clock.Now())
	}
}

// deniedBy reports whether e denied user's request: an AccessDenied, or
// requests closed with their denial.
func deniedBy(e *events.Envelope, user string) bool {
	switch p := e.Payload.(type) {
	case *events.AccessDenied:
		return slices.Contains(p.Users, user)
	case *events.RequestsClosed:
		return slices.Contains(p.Denied, user)
	}
	return false
}

// checkNoCooldown checks that user, whose request was just recorded, was
// not denied within the cooldown in force.
func (m *policyMachine) checkNoCooldown(t *rapid.T, user string) {
	var denied time.Time
	for _, e := range m.log(t) {
		if deniedBy(&e, user) {
			denied = e.Time
		}
	}
	if cd := m.fold(t).Settings().RequestCooldown; cd > 0 && !denied.IsZero() && m.clock.Now().Before(denied.Add(cd)) {
		t.Fatalf("%s requested at %v, within the cooldown %v of the denial at %v", user, m.clock.Now(), cd, denied)
	}
}

func (m *policyMachine) fold(t *rapid.T) *aggregate.State {
	s, err := projections.Fold(polMeeting, m.store.Load(m.ctx, polMeeting, 1))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The actions.

func (m *policyMachine) Advance(t *rapid.T) {
	if rapid.Bool().Draw(t, "toDeadline") {
		if next := aggregate.NextDeadline(m.fold(t)); !next.IsZero() && next.After(m.clock.Now()) {
			m.clock.Advance(next.Sub(m.clock.Now()))
			return
		}
	}
	m.clock.Advance(time.Duration(rapid.IntRange(0, 90).Draw(t, "seconds")) * time.Second)
}

func (m *policyMachine) Tick(t *rapid.T) {
	m.run(t, "Tick", func() (stage.Result, error) { return m.eng.Tick(m.ctx, polMeeting) })
}

func (m *policyMachine) Configure(t *rapid.T) {
	a := m.host(t)
	s := drawSettings(t, 0)
	m.run(t, "Configure", func() (stage.Result, error) { return m.eng.Configure(m.ctx, polMeeting, a, s) })
}

func (m *policyMachine) Add(t *rapid.T) {
	u := m.user(t, "user")
	in := m.inStatus(t, aggregate.OffStage, aggregate.RequestedToJoinStage, aggregate.AcceptedToJoinStage, aggregate.OnStage)
	var out []string
	for _, x := range m.users {
		if !slices.Contains(in, x) {
			out = append(out, x)
		}
	}
	if len(out) > 0 && rapid.IntRange(0, 9).Draw(t, "addAny") < 8 {
		u = rapid.SampledFrom(out).Draw(t, "newUser")
	}
	p := rapid.SampledFrom([]aggregate.Permissions{polHost, polAllowed, polAllowed, polViewer, polViewer,
		{StageAccess: aggregate.NotAllowed}}).Draw(t, "perm")
	if u == "h1" || u == "h2" { // hosts come back as hosts
		p = polHost
	}
	m.run(t, "AddParticipant", func() (stage.Result, error) {
		return m.eng.AddParticipant(m.ctx, polMeeting, aggregate.Participant{UserID: u, Permissions: p})
	})
}

func (m *policyMachine) Remove(t *rapid.T) {
	u := m.user(t, "user")
	m.run(t, "RemoveParticipant", func() (stage.Result, error) { return m.eng.RemoveParticipant(m.ctx, polMeeting, u) })
}

func (m *policyMachine) UpdatePermissions(t *rapid.T) {
	u := m.user(t, "user")
	if u == "h1" {
		t.Skip("h1 stays a host")
	}
	p := rapid.SampledFrom([]aggregate.Permissions{polHost, polAllowed, polViewer,
		{StageAccess: aggregate.NotAllowed}}).Draw(t, "perm")
	m.run(t, "UpdatePermissions", func() (stage.Result, error) { return m.eng.UpdatePermissions(m.ctx, polMeeting, u, p) })
}

func (m *policyMachine) Request(t *rapid.T) {
	u := m.pick(t, "actor", aggregate.OffStage)
	m.run(t, "RequestAccess", func() (stage.Result, error) { return m.eng.RequestAccess(m.ctx, polMeeting, u) })
}

func (m *policyMachine) Cancel(t *rapid.T) {
	u := m.pick(t, "actor", aggregate.RequestedToJoinStage)
	m.run(t, "CancelRequestAccess", func() (stage.Result, error) { return m.eng.CancelRequestAccess(m.ctx, polMeeting, u) })
}

func (m *policyMachine) Grant(t *rapid.T) {
	a, us := m.host(t), m.targets(t, aggregate.RequestedToJoinStage, aggregate.OffStage)
	m.run(t, "GrantAccess", func() (stage.Result, error) { return m.eng.GrantAccess(m.ctx, polMeeting, a, us) })
}

func (m *policyMachine) Deny(t *rapid.T) {
	a, us := m.host(t), m.targets(t, aggregate.RequestedToJoinStage)
	m.run(t, "DenyAccess", func() (stage.Result, error) { return m.eng.DenyAccess(m.ctx, polMeeting, a, us) })
}

func (m *policyMachine) Join(t *rapid.T) {
	// Mostly someone who may join: accepted, or OffStage with Allowed access
	// and not banned.
	r, err := m.eng.Roster(m.ctx, polMeeting)
	if err != nil {
		t.Fatal(err)
	}
	var c []string
	for _, e := range r.Participants {
		banned := slices.ContainsFunc(r.Bans, func(b projections.StageBan) bool { return b.UserID == e.UserID })
		if e.Status == aggregate.AcceptedToJoinStage ||
			(e.Status == aggregate.OffStage && e.Permissions.StageAccess == aggregate.Allowed && !banned) {
			c = append(c, e.UserID)
		}
	}
	u := m.user(t, "actor")
	if len(c) > 0 && rapid.IntRange(0, 9).Draw(t, "joinAny") < 8 {
		u = rapid.SampledFrom(c).Draw(t, "joiner")
	}
	m.run(t, "Join", func() (stage.Result, error) { return m.eng.Join(m.ctx, polMeeting, u) })
}

// JoinAgain and RequestAgain double the weight of Join and RequestAccess,
// so that the stage fills up and hosts have requests to deny.
func (m *policyMachine) JoinAgain(t *rapid.T) { m.Join(t) }

// JoinThird: see JoinAgain.
func (m *policyMachine) JoinThird(t *rapid.T) { m.Join(t) }

// RequestAgain: see JoinAgain.
func (m *policyMachine) RequestAgain(t *rapid.T) { m.Request(t) }

// RequestThird weighs requests up again, so that requests live long
// enough for RequestTTL to lapse them.
func (m *policyMachine) RequestThird(t *rapid.T) { m.Request(t) }

func (m *policyMachine) Leave(t *rapid.T) {
	u := m.pick(t, "actor", aggregate.OnStage, aggregate.AcceptedToJoinStage)
	m.run(t, "Leave", func() (stage.Result, error) { return m.eng.Leave(m.ctx, polMeeting, u) })
}

func (m *policyMachine) Kick(t *rapid.T) {
	a, us := m.host(t), m.targets(t, aggregate.OnStage, aggregate.AcceptedToJoinStage)
	m.run(t, "Kick", func() (stage.Result, error) { return m.eng.Kick(m.ctx, polMeeting, a, us) })
}

func (m *policyMachine) Ban(t *rapid.T) {
	a, u := m.host(t), m.user(t, "user")
	var until time.Time
	if d := drawDuration(t, "banFor"); d > 0 {
		until = m.clock.Now().Add(d)
	}
	m.run(t, "BanFromStage", func() (stage.Result, error) { return m.eng.BanFromStage(m.ctx, polMeeting, a, u, until) })
}

func (m *policyMachine) LiftBan(t *rapid.T) {
	a, u := m.host(t), m.user(t, "user")
	m.run(t, "LiftBan", func() (stage.Result, error) { return m.eng.LiftBan(m.ctx, polMeeting, a, u) })
}

func (m *policyMachine) Disconnect(t *rapid.T) {
	u := m.user(t, "user")
	m.run(t, "Disconnect", func() (stage.Result, error) { return m.eng.Disconnect(m.ctx, polMeeting, u) })
}

func (m *policyMachine) Reconnect(t *rapid.T) {
	u := m.user(t, "user")
	m.run(t, "Reconnect", func() (stage.Result, error) { return m.eng.Reconnect(m.ctx, polMeeting, u) })
}

// The stage controls (docs/stage-controls.md). The actor is mostly a host,
// sometimes anyone (a co-host among them).

func (m *policyMachine) StartStage(t *rapid.T) {
	a := m.host(t)
	m.run(t, "StartStage", func() (stage.Result, error) { return m.eng.StartStage(m.ctx, polMeeting, a) })
}

func (m *policyMachine) EndStage(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "endNow") > 0 {
		t.Skip("the stage ends rarely, so that runs see it live")
	}
	a := m.host(t)
	m.run(t, "EndStage", func() (stage.Result, error) { return m.eng.EndStage(m.ctx, polMeeting, a) })
}

func (m *policyMachine) CloseRequests(t *rapid.T) {
	a, deny := m.host(t), rapid.Bool().Draw(t, "deny")
	m.run(t, "CloseRequests", func() (stage.Result, error) { return m.eng.CloseRequests(m.ctx, polMeeting, a, deny) })
}

func (m *policyMachine) OpenRequests(t *rapid.T) {
	a := m.host(t)
	m.run(t, "OpenRequests", func() (stage.Result, error) { return m.eng.OpenRequests(m.ctx, polMeeting, a) })
}

func (m *policyMachine) PromoteCoHost(t *rapid.T) {
	a, u := m.host(t), m.user(t, "user")
	m.run(t, "PromoteCoHost", func() (stage.Result, error) { return m.eng.PromoteCoHost(m.ctx, polMeeting, a, u) })
}

func (m *policyMachine) DemoteCoHost(t *rapid.T) {
	a, u := m.host(t), m.user(t, "user")
	m.run(t, "DemoteCoHost", func() (stage.Result, error) { return m.eng.DemoteCoHost(m.ctx, polMeeting, a, u) })
}

// CoHostKick: a co-host, if any, kicks anyone on stage or accepted.
func (m *policyMachine) CoHostKick(t *rapid.T) {
	cos := m.fold(t).CoHosts()
	if len(cos) == 0 {
		t.Skip("no co-host")
	}
	a, us := rapid.SampledFrom(cos).Draw(t, "cohost"), m.targets(t, aggregate.OnStage, aggregate.AcceptedToJoinStage)
	m.run(t, "Kick", func() (stage.Result, error) { return m.eng.Kick(m.ctx, polMeeting, a, us) })
}

func (m *policyMachine) Decline(t *rapid.T) {
	u := m.pick(t, "actor", aggregate.AcceptedToJoinStage)
	m.run(t, "DeclineInvitation", func() (stage.Result, error) { return m.eng.DeclineInvitation(m.ctx, polMeeting, u) })
}

func (m *policyMachine) Bring(t *rapid.T) {
	a, u := m.host(t), m.user(t, "user")
	m.run(t, "BringOnStage", func() (stage.Result, error) { return m.eng.BringOnStage(m.ctx, polMeeting, a, u) })
}

// Check verifies the invariants after every step.
func (m *policyMachine) Check(t *rapid.T) {
	now := m.clock.Now()
	log := m.log(t)

	// Versions 1, 2, 3, ... with an intact hash chain; replay equals live.
	var prev events.Hash
	for i := range log {
		if err := eventstore.CheckNext(&log[i], uint64(i), prev); err != nil {
			t.Fatal(err)
		}
		prev = log[i].Hash
	}
	raw := m.fold(t)
	if live := m.eng.CachedStateForTest(polMeeting); live != nil && !live.Equal(raw) {
		t.Fatalf("replay differs from the engine's state at version %d", raw.Version())
	}
	roster, err := m.eng.Roster(m.ctx, polMeeting)
	if err != nil {
		t.Fatal(err)
	}
	if want := projections.RosterAt(raw, now); !polRosterEqual(roster, want) {
		t.Fatalf("engine roster\n%+v\nreplayed roster at now\n%+v", roster, want)
	}

	set := raw.Settings()
	for _, s := range []*aggregate.State{raw, aggregate.At(raw, now)} {
		// Capacity, in the stored state and at now.
		if set.MaxOnStage > 0 && s.OnStageCount() > set.MaxOnStage {
			t.Fatalf("%d on stage, MaxOnStage %d", s.OnStageCount(), set.MaxOnStage)
		}
		if n := len(rosterOnStage(s)); n != s.OnStageCount() {
			t.Fatalf("on-stage count %d, members on stage %d", s.OnStageCount(), n)
		}
		// Offers: a prefix of the waitlist, one per free seat.
		wl := s.Waitlist()
		free := max(set.MaxOnStage-s.OnStageCount(), 0)
		offers := 0
		for i, w := range wl {
			if w.Offered {
				if i != offers {
					t.Fatalf("offer to %s at waitlist position %d skips earlier users", w.UserID, i+1)
				}
				offers++
			}
			if st := s.Status(w.UserID); st != aggregate.AcceptedToJoinStage {
				t.Fatalf("waitlisted %s is %s", w.UserID, st)
			}
		}
		if set.MaxOnStage == 0 && len(wl) > 0 {
			t.Fatalf("waitlist %v with no capacity set", wl)
		}
		if offers != min(free, len(wl)) {
			t.Fatalf("%d offers, %d free seats, %d waiting", offers, free, len(wl))
		}
		// Invariant 2 still holds.
		for _, mem := range s.Members() {
			if mem.Permissions.StageAccess == aggregate.NotAllowed && mem.Status != aggregate.OffStage {
				t.Fatalf("NotAllowed %s is %s", mem.UserID, mem.Status)
			}
		}
	}
	m.checkDeadlines(t, aggregate.At(raw, now), log, now)
	m.checkBans(t, aggregate.At(raw, now), log)
	m.checkWaitlistOrder(t, aggregate.At(raw, now), log)
	m.checkJoins(t, log)
	m.checkControls(t, log)
}

// checkControls replays the log with a bookkeeping of its own (hosts,
// co-hosts, the phase, the requests switch, the settings) and checks every
// event against the stage controls' rules: who may do what, nothing
// queued backstage or while requests are closed, nothing moves up on an
// ended stage, BringOnStage only when allowed and never for a NotAllowed
// user, invitations named exactly, and an ended stage, or requests closed
// with their denial, left nobody behind.
func (m *policyMachine) checkControls(t *rapid.T, log []events.Envelope) {
	s := aggregate.NewState(polMeeting)
	hosts, cohosts := map[string]bool{}, map[string]bool{}
	var settings aggregate.Settings
	explicit, closed := "", false
	phase := func() string {
		switch {
		case explicit != "":
			return explicit
		case settings.StartBackstage:
			return "Backstage"
		}
		return "Live"
	}
	gone := func(u string) { delete(hosts, u); delete(cohosts, u) }
	for i := range log {
		e := &log[i]
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s by %q at version %d: %s", e.Type, e.Actor, e.Version, fmt.Sprintf(format, args...))
		}
		switch e.Type {
		case events.TypeSettingsChanged, events.TypeStageStarted, events.TypeStageEnded, events.TypeRequestsClosed,
			events.TypeRequestsOpened, events.TypeCoHostPromoted, events.TypeCoHostDemoted, events.TypeBroughtOnStage,
			events.TypeStageBanned, events.TypeBanLifted:
			if !hosts[e.Actor] {
				fail("only a host may")
			}
		case events.TypeAccessGranted, events.TypeAccessDenied, events.TypeKicked:
			if !hosts[e.Actor] && !cohosts[e.Actor] {
				fail("neither host nor co-host")
			}
			if !hosts[e.Actor] && e.Type != events.TypeAccessGranted {
				for _, u := range e.Users() {
					if u != e.Actor && (hosts[u] || cohosts[u]) {
						fail("a co-host acted on %s, a host or co-host", u)
					}
				}
			}
		}
		switch p := e.Payload.(type) {
		case *events.AccessRequested:
			if !p.AutoAccepted && (phase() != "Live" || closed) {
				fail("a request queued with the stage %s, requests closed %v", phase(), closed)
			}
		case *events.AccessGranted:
			for _, u := range p.Users {
				if invited, was := slices.Contains(p.Invited, u), s.Status(u); invited != (was == aggregate.OffStage) {
					fail("%s was %s, invited %v", u, was, invited)
				}
			}
		case *events.BroughtOnStage:
			if !settings.AllowBringOnStage {
				fail("AllowBringOnStage is off")
			}
			if mb, _ := s.Member(p.UserID); mb.Permissions.StageAccess == aggregate.NotAllowed {
				fail("%s is NotAllowed", p.UserID)
			}
		}
		switch e.Type {
		case events.TypeAccessRequested, events.TypeStageJoined, events.TypeAccessGranted, events.TypeBroughtOnStage, events.TypeSeatWaitlisted:
			if phase() == "Ended" {
				fail("the stage had ended")
			}
		}
		aggregate.Evolve(s, e)
		switch p := e.Payload.(type) {
		case *events.ParticipantJoined:
			gone(p.UserID)
			hosts[p.UserID] = p.Permissions.AcceptStageRequests
		case *events.PermissionsChanged:
			hosts[p.UserID] = p.Permissions.AcceptStageRequests
		case *events.ParticipantLeft:
			gone(p.UserID)
		case *events.Lapsed:
			for _, l := range p.Lapses {
				if l.Kind == events.GraceExpired {
					gone(l.UserID)
				}
			}
		case *events.CoHostPromoted:
			cohosts[p.UserID] = true
		case *events.CoHostDemoted:
			delete(cohosts, p.UserID)
		case *events.SettingsChanged:
			settings = p.Settings
		case *events.StageStarted:
			explicit = "Live"
		case *events.StageEnded:
			explicit = "Ended"
			for _, mb := range s.Members() {
				if mb.Status != aggregate.OffStage {
					fail("%s is still %s", mb.UserID, mb.Status)
				}
			}
		case *events.RequestsClosed:
			closed = true
			if p.DenyPending && s.QueueLen() > 0 {
				fail("requests denied, yet %d pending", s.QueueLen())
			}
		case *events.RequestsOpened:
			closed = false
		}
		if got := s.Phase().String(); got != phase() {
			fail("the state says the stage is %s, the log %s", got, phase())
		}
	}
}

// checkJoins replays the log and checks every event against the state just
// before it. Every command was decided on the state as it was at its time:
// no lapse was due and unrecorded before any other event, and a Lapsed event
// recorded every lapse due at its time. Every StageJoined under a capacity
// was by a seat-offer holder, or into a seat that was free and not held for
// anyone (nobody jumps the waitlist), and the stage was not full.
func (m *policyMachine) checkJoins(t *rapid.T, log []events.Envelope) {
	s := aggregate.NewState(polMeeting)
	for i := range log {
		e := &log[i]
		if e.Type != events.TypeLapsed {
			if due := aggregate.DueLapses(s, e.Time); len(due) > 0 {
				t.Fatalf("%s at version %d was decided with lapses due and unrecorded: %v", e.Type, e.Version, due)
			}
		}
		if e.Type == events.TypeStageJoined {
			if limit := s.Settings().MaxOnStage; limit > 0 {
				held := 0
				offered := false
				for _, w := range s.Waitlist() {
					if w.Offered {
						held++
						offered = offered || w.UserID == e.Actor
					}
				}
				if !offered && s.OnStageCount()+held >= limit {
					t.Fatalf("%s joined at version %d with %d on stage and %d seats held (MaxOnStage %d)",
						e.Actor, e.Version, s.OnStageCount(), held, limit)
				}
			}
		}
		aggregate.Evolve(s, e)
		if e.Type == events.TypeLapsed {
			if due := aggregate.DueLapses(s, e.Time); len(due) > 0 {
				t.Fatalf("Lapsed at version %d left lapses due: %v", e.Version, due)
			}
		}
	}
}

func rosterOnStage(s *aggregate.State) []string {
	var out []string
	for _, mem := range s.Members() {
		if mem.Status == aggregate.OnStage {
			out = append(out, mem.UserID)
		}
	}
	return out
}

// checkDeadlines: at now, nobody is on stage past their slot, accepted past
// the invitation's deadline, requested past RequestTTL, holding a lapsed offer or disconnected past
// the grace, measured from the log's own events.
func (m *policyMachine) checkDeadlines(t *rapid.T, s *aggregate.State, log []events.Envelope, now time.Time) {
	set := s.Settings()
	joined, accepted, disconnected := map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	requested := map[string]time.Time{}
	for _, e := range log {
		switch p := e.Payload.(type) {
		case *events.StageJoined:
			joined[e.Actor] = e.Time
		case *events.BroughtOnStage:
			joined[p.UserID] = e.Time
		case *events.AccessRequested:
			if p.AutoAccepted {
				accepted[e.Actor] = e.Time
			} else {
				requested[e.Actor] = e.Time
			}
		case *events.AccessGranted:
			for _, u := range p.Users {
				accepted[u] = e.Time
			}
		case *events.SeatWaitlisted:
			if p.Status != aggregate.AcceptedToJoinStage.String() {
				accepted[e.Actor] = e.Time
			}
		case *events.Disconnected:
			disconnected[p.UserID] = e.Time
		}
	}
	waiting := map[string]bool{}
	for _, w := range s.Waitlist() {
		waiting[w.UserID] = true
		if w.Offered && set.SeatOfferTTL > 0 && !now.Before(w.OfferedAt.Add(set.SeatOfferTTL)) {
			t.Fatalf("%s holds a seat offer made at %v past its TTL %v (now %v)", w.UserID, w.OfferedAt, set.SeatOfferTTL, now)
		}
	}
	for _, mem := range s.Members() {
		switch {
		case mem.Status == aggregate.OnStage && set.SpeakingSlot > 0:
			if !now.Before(joined[mem.UserID].Add(set.SpeakingSlot)) {
				t.Fatalf("%s on stage since %v past the slot %v (now %v)", mem.UserID, joined[mem.UserID], set.SpeakingSlot, now)
			}
		case mem.Status == aggregate.AcceptedToJoinStage && set.InvitationTTL > 0 && !waiting[mem.UserID]:
			if !now.Before(accepted[mem.UserID].Add(set.InvitationTTL)) {
				t.Fatalf("%s accepted since %v past the TTL %v (now %v)", mem.UserID, accepted[mem.UserID], set.InvitationTTL, now)
			}
		case mem.Status == aggregate.RequestedToJoinStage && set.RequestTTL > 0:
			if !now.Before(requested[mem.UserID].Add(set.RequestTTL)) {
				t.Fatalf("%s requested at %v, past RequestTTL %v (now %v)", mem.UserID, requested[mem.UserID], set.RequestTTL, now)
			}
		}
		if !mem.DisconnectedAt.IsZero() {
			if !now.Before(disconnected[mem.UserID].Add(set.ReconnectGrace)) {
				t.Fatalf("%s disconnected since %v past the grace %v (now %v)", mem.UserID, disconnected[mem.UserID], set.ReconnectGrace, now)
			}
		}
	}
}

// checkBans: replaying the log's bans, no banned user was ever requested,
// accepted, waitlisted or put on stage during the ban; at now, banned users
// are OffStage.
func (m *policyMachine) checkBans(t *rapid.T, s *aggregate.State, log []events.Envelope) {
	type ban struct{ until time.Time }
	bans := map[string]ban{}
	active := func(u string, at time.Time) bool {
		b, ok := bans[u]
		return ok && (b.until.IsZero() || at.Before(b.until))
	}
	for _, e := range log {
		var moved []string
		switch p := e.Payload.(type) {
		case *events.StageBanned:
			bans[p.UserID] = ban{p.Until}
		case *events.BanLifted:
			delete(bans, p.UserID)
		case *events.AccessRequested, *events.StageJoined, *events.SeatWaitlisted:
			moved = []string{e.Actor}
		case *events.AccessGranted:
			moved = p.Users
		}
		for _, u := range moved {
			if active(u, e.Time) {
				t.Fatalf("banned %s moved up by %s at version %d", u, e.Type, e.Version)
			}
		}
	}
	for _, b := range s.Bans() {
		if st := s.Status(b.UserID); st != 0 && st != aggregate.OffStage {
			t.Fatalf("banned %s is %s", b.UserID, st)
		}
	}
}

// checkWaitlistOrder: the waitlist is in the order of the users' latest
// SeatWaitlisted events.
func (m *policyMachine) checkWaitlistOrder(t *rapid.T, s *aggregate.State, log []events.Envelope) {
	at := map[string]uint64{}
	for _, e := range log {
		if e.Type == events.TypeSeatWaitlisted {
			at[e.Actor] = e.Version
		}
	}
	var last uint64
	for _, w := range s.Waitlist() {
		v, ok := at[w.UserID]
		if !ok || v <= last {
			t.Fatalf("waitlist %v out of the order of the log", s.Waitlist())
		}
		last = v
	}
}

func TestPolicyProperties(t *testing.T) {
	total, stats := 0, map[string]int{}
	rapid.Check(t, func(t *rapid.T) { total += runPolicyMachine(t, stats) })
	t.Logf("%d commands checked; covered: %v", total, stats)
}

// FuzzPolicyProperties feeds the same state machine to the Go fuzzer:
// go test -fuzz FuzzPolicyProperties -run '^$' .
func FuzzPolicyProperties(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(func(t *rapid.T) { runPolicyMachine(t, map[string]int{}) }))
}

// runPolicyMachine runs one random sequence of steps and returns how many
// commands it ran.
func runPolicyMachine(t *rapid.T, stats map[string]int) int {
	m := &policyMachine{stats: stats}
	m.init(t)
	defer func() { m.eng.Close() }()
	t.Repeat(rapid.StateMachineActions(m))
	return m.steps
}
