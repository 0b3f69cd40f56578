package stage_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

// TestEngine_properties drives the Engine on a memory store with random
// commands from random actors in three meetings, runs each command on a
// plain model of stage-rules.md too, and after every step checks that the
// two agree and that the eight invariants of stage-rules.md hold:
//
//  1. a participant has exactly one status; a non-participant has none;
//  2. no NotAllowed participant is requested, accepted or on stage;
//  3. nobody reaches OnStage except by Join, from AcceptedToJoinStage or
//     OffStage with Allowed access;
//  4. the queue is exactly the requested participants, ordered by the time
//     of their latest request (read from the stored log);
//  5. a non-host's command changes no one's status but the actor's own;
//  6. a rejected command (rules or bad input) appends nothing;
//  7. folding the stored events from scratch gives the live roster, twice
//     alike; versions are 1..n with no gap; the hash chain holds;
//  8. re-executing with a used idempotency key, however many commands came
//     between, stores nothing and reports Duplicate with the original
//     version and rejections, for the key retention (LongWait jumps past
//     it); the key is the actor's own, and the same key with a different
//     command fails with ErrKeyReused;
//  9. membership commands with a user's actor fail with ErrPermissionDenied;
//  10. every rejection is the model's, though the commands go to two
//     Engines with independent caches on one store (the one not asked
//     holds a stale cache);
//  11. commands of several users that arrive at once (Burst) are grouped
//     into shared appends (the Engines group whatever appends cost, and
//     the store is slow while they run), with conflicts between the two
//     Engines: each outcome is the model's, in the order of the versions
//     stored;
//
// and, at the end of every sequence, replay.Verify finds the log clean (no
// command key stored twice within the retention).
//
// The default run is 100 random sequences of ~90 steps; more with
// -rapid.checks=N, longer ones with -rapid.steps=N (a third of the steps).
func TestEngine_properties(t *testing.T) {
	rapid.Check(t, engineProperties)
}

// FuzzEngine feeds the same state machine to Go's fuzzer:
//
//	go test -run '^$' -fuzz FuzzEngine -fuzztime 5m
func FuzzEngine(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(engineProperties))
}

func engineProperties(t *rapid.T) {
	m := &machine{}
	m.init(t)
	// Three rounds of rapid's ~30 steps each: stages need a few dozen
	// commands to fill up.
	for range 3 {
		t.Repeat(m.actions())
	}
	if m.storeLen(t) == 0 {
		// Nothing was stored (no participant drawn, every command refused
		// with ErrNoMeeting): verify rightly finds nothing to verify.
		return
	}
	rep, err := replay.Verify(m.ctx, m.store.ReadAll(m.ctx, 1))
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v, findings %v", err, rep.Findings)
	}
}

// actions are the machine's actions, requests weighted up so that queues grow.
func (m *machine) actions() map[string]func(*rapid.T) {
	a := rapid.StateMachineActions(m)
	a["RequestAccess (again)"] = m.RequestAccess
	a["RequestAccess (and again)"] = m.RequestAccess
	return a
}

var (
	meetings = []string{"m1", "m2", "m3"}
	pool     = []string{"ann", "bob", "cat", "dan", "eve"}
)

// invalidIDs are ids that must be refused before anything is stored.
var invalidIDs = []string{"", strings.Repeat("x", events.MaxIDLen+1), "a\x00b", "a\tb", "a\nb", "\xff", "a\u0085"}

type machine struct {
	slow  *slowStore
	ctx   context.Context
	clock *fakeClock
	store *eventstore.Memory
	eng   *stage.Engine
	// engines are eng and a second Engine on the same store, with a cache
	// of its own: commands go to either.
	engines []*stage.Engine
	model   map[string]*modelMeeting
	// used lists commands executed with a known key, for retries.
	used []usedKey
	n    int
	// stored counts the events in the store, up to Seq lastSeq.
	stored  int
	lastSeq uint64
	// hashes holds the hash of each stored command's event, by meeting/key.
	hashes map[string]events.Hash
	// verified is checkMeeting's record of the hashes it has recomputed.
	verified map[string]uint64
}

type usedKey struct {
	meeting, key string
	op           op
}

func (m *machine) init(t *rapid.T) {
	m.ctx = context.Background()
	m.clock = &fakeClock{now: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)}
	m.store = eventstore.NewMemory()
	// The Engines append through a store that takes a while during a
	// Burst, as one that syncs to disk does, so that commands queue up
	// behind an append; they group them whatever appends cost.
	slow := &slowStore{Memory: m.store}
	m.slow = slow
	// The first Engine, whose reads are checked against the model, serves
	// them from its cache while the store reports no newer event (the
	// second one writes too).
	eng, err := stage.New(slow, stage.WithClock(m.clock.Now), stage.WithCachedReads())
	if err != nil {
		t.Fatal(err)
	}
	eng2, err := stage.New(slow, stage.WithClock(m.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	m.eng, m.engines = eng, []*stage.Engine{eng, eng2}
	eng.GroupAlwaysForTest()
	eng2.GroupAlwaysForTest()
	m.model = map[string]*modelMeeting{}
	m.hashes = map[string]events.Hash{}
	m.verified = map[string]uint64{}
	for _, mt := range meetings {
		m.model[mt] = newModelMeeting()
	}
	// Start with a few participants in each meeting, so that short runs
	// reach crowded stages and long queues.
	for _, mt := range meetings {
		for _, u := range pool {
			if rapid.IntRange(0, 3).Draw(t, "present") > 0 {
				m.run(t, mt, op{name: "AddParticipant", user: u, perms: drawPerms(t)})
			}
		}
	}
	m.Check(t)
}

// Draws.

// drawMeeting picks the first meeting half of the time, so that it sees long
// runs of commands.
func drawMeeting(t *rapid.T) string {
	return rapid.SampledFrom(append([]string{meetings[0], meetings[0]}, meetings...)[1:]).Draw(t, "meeting")
}
func drawUser(t *rapid.T, label string) string {
	return rapid.SampledFrom(pool).Draw(t, label)
}
func drawUsers(t *rapid.T) []string {
	return rapid.SliceOfN(rapid.SampledFrom(pool), 1, 4).Draw(t, "users")
}
func drawPerms(t *rapid.T) aggregate.Permissions {
	return aggregate.Permissions{
		StageAccess: rapid.SampledFrom([]aggregate.StageAccess{
			aggregate.Allowed, aggregate.CanRequest, aggregate.CanRequest, aggregate.CanRequest, aggregate.NotAllowed,
		}).Draw(t, "access"),
		AcceptStageRequests: rapid.Float64Range(0, 1).Draw(t, "p") < 0.3,
	}
}

// The actions: one per command, plus retries, bad input and reads.

func (m *machine) AddParticipant(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "AddParticipant", user: drawUser(t, "user"), perms: drawPerms(t)})
}

func (m *machine) RemoveParticipant(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "RemoveParticipant", user: drawUser(t, "user")})
}

func (m *machine) UpdatePermissions(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "UpdatePermissions", user: drawUser(t, "user"), perms: drawPerms(t)})
}

func (m *machine) RequestAccess(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "RequestAccess", actor: drawUser(t, "actor")})
}

func (m *machine) CancelRequestAccess(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "CancelRequestAccess", actor: drawUser(t, "actor")})
}

func (m *machine) GrantAccess(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "GrantAccess", actor: drawUser(t, "actor"), users: drawUsers(t)})
}

func (m *machine) DenyAccess(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "DenyAccess", actor: drawUser(t, "actor"), users: drawUsers(t),
		reason: rapid.SampledFrom([]string{"", "not now"}).Draw(t, "reason")})
}

func (m *machine) Join(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "Join", actor: drawUser(t, "actor")})
}

func (m *machine) Leave(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "Leave", actor: drawUser(t, "actor")})
}

func (m *machine) Kick(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "Kick", actor: drawUser(t, "actor"), users: drawUsers(t),
		reason: rapid.SampledFrom([]string{"", "off topic"}).Draw(t, "reason")})
}

// The stage controls (docs/stage-controls.md), with no settings: the
// stage ended and started again, the requests switch, co-hosts, declines.
// The actors are drawn from the pool, so that co-hosts and non-hosts try
// the host's controls too.

func (m *machine) StartStage(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "StartStage", actor: drawUser(t, "actor")})
}

func (m *machine) EndStage(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "EndStage", actor: drawUser(t, "actor")})
}

func (m *machine) CloseRequests(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "CloseRequests", actor: drawUser(t, "actor"), deny: rapid.Bool().Draw(t, "deny")})
}

func (m *machine) OpenRequests(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "OpenRequests", actor: drawUser(t, "actor")})
}

func (m *machine) PromoteCoHost(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "PromoteCoHost", actor: drawUser(t, "actor"), user: drawUser(t, "user")})
}

func (m *machine) DemoteCoHost(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "DemoteCoHost", actor: drawUser(t, "actor"), user: drawUser(t, "user")})
}

func (m *machine) DeclineInvitation(t *rapid.T) {
	m.run(t, drawMeeting(t), op{name: "DeclineInvitation", actor: drawUser(t, "actor")})
}

// Retry re-executes an earlier command with its idempotency key: the same
// command, or another one under the same key (by the same actor: the key
// is reused; by another: the key is theirs and new), or the same command
// in another meeting (where the key is new).
func (m *machine) Retry(t *rapid.T) {
	if len(m.used) == 0 {
		t.Skip("no command yet")
	}
	u := rapid.SampledFrom(m.used).Draw(t, "retry")
	o, meeting := u.op, u.meeting
	switch rapid.IntRange(0, 4).Draw(t, "variant") {
	case 0:
		o = op{name: "Join", actor: drawUser(t, "actor")}
	case 1:
		o = op{name: "Leave", actor: o.actor}
		if o.actor == "" {
			o.actor = drawUser(t, "actor")
		}
	case 2:
		meeting = drawMeeting(t)
	}
	m.exec(t, meeting, o, u.key)
}

// Burst has several users each request or cancel at once, on either
// Engine, so that commands of one meeting arrive while another is being
// appended and go out together (grouped appends), with conflicts between
// the two Engines. The commands are each user's own and commute; each
// outcome must be the model's, in the order of the versions stored.
func (m *machine) Burst(t *rapid.T) {
	meeting := drawMeeting(t)
	users := rapid.SliceOfNDistinct(rapid.SampledFrom(pool), 2, len(pool), rapid.ID[string]).Draw(t, "users")
	mm := m.model[meeting]
	ops := make([]op, len(users))
	engs := make([]*stage.Engine, len(users))
	one := rapid.Bool().Draw(t, "one engine") // all on one Engine: the most grouping
	for i, u := range users {
		// Mostly what the user may do now, so that most are accepted.
		name := "RequestAccess"
		if mu := mm.users[u]; mu != nil && mu.status == aggregate.RequestedToJoinStage {
			name = "CancelRequestAccess"
		}
		if rapid.IntRange(0, 4).Draw(t, "burst odd") == 0 {
			name = map[string]string{"RequestAccess": "CancelRequestAccess", "CancelRequestAccess": "RequestAccess"}[name]
		}
		ops[i] = op{name: name, actor: u}
		engs[i] = m.engines[0]
		if !one {
			engs[i] = rapid.SampledFrom(m.engines).Draw(t, "burst engine")
		}
	}
	now := m.clock.Now()
	if now.Before(mm.lastTime) {
		now = mm.lastTime
	}
	m.storeLen(t)
	type result struct {
		res stage.Result
		err error
	}
	results := make([]result, len(users))
	m.slow.extra.Store(int64(300 * time.Microsecond))
	defer m.slow.extra.Store(0)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r result
			if ops[i].name == "RequestAccess" {
				r.res, r.err = engs[i].RequestAccess(m.ctx, meeting, ops[i].actor)
			} else {
				r.res, r.err = engs[i].CancelRequestAccess(m.ctx, meeting, ops[i].actor)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	// The accepted ones, in version order, on the model; then the
	// rejected ones, which no other user's command could change.
	order := make([]int, len(users))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(results[a].res.Version, results[b].res.Version) })
	for _, i := range order {
		r, o := results[i], ops[i]
		if r.err != nil {
			continue
		}
		if len(r.res.Events) != 1 {
			t.Fatalf("burst %s by %s: %d events", o.name, o.actor, len(r.res.Events))
		}
		e := r.res.Events[0]
		want := mm.decide(o, e.CommandID, now, false)
		if want.err != nil || want.version != r.res.Version || e.Version != r.res.Version || !e.Time.Equal(now) || e.Actor != o.actor {
			t.Fatalf("burst %s by %s: stored at version %d (time %v); model: %v at version %d", o.name, o.actor, r.res.Version, e.Time, want.err, want.version)
		}
		m.hashes[meeting+"/"+scoped(o.actor, e.CommandID)] = e.Hash
		m.used = append(m.used, usedKey{meeting: meeting, key: e.CommandID, op: o})
		mm.lastTime = now
	}
	for _, i := range order {
		r, o := results[i], ops[i]
		if r.err == nil {
			continue
		}
		want := mm.decide(o, "", now, false)
		if want.err == nil || !errors.Is(r.err, want.err) {
			t.Fatalf("burst %s by %s: %v; model: %v", o.name, o.actor, r.err, want.err)
		}
	}
	m.storeLen(t)
}

// Flood stores a window's worth of commands on one meeting (zed, who is
// not in the pool, enters and leaves), so that the retries after it are
// older than the state's recent window: only the command index knows them.
func (m *machine) Flood(t *rapid.T) {
	meeting := drawMeeting(t)
	for i := range aggregate.CommandWindow + 1 {
		o := op{name: "AddParticipant", user: "zed", perms: aggregate.Permissions{StageAccess: aggregate.CanRequest}}
		if i%2 == 1 {
			o = op{name: "RemoveParticipant", user: "zed"}
		}
		m.run(t, meeting, o)
	}
}

// LongWait lets more than the key retention pass: retries of the commands
// before it are no longer recognised, unless the state's window still
// holds them.
func (m *machine) LongWait(t *rapid.T) {
	m.clock.Advance(keyRetention + time.Hour)
}

// UserMembership has a user issue one of the backend's membership
// commands: ErrPermissionDenied, nothing stored.
func (m *machine) UserMembership(t *rapid.T) {
	o := op{name: rapid.SampledFrom([]string{"AddParticipant", "RemoveParticipant", "UpdatePermissions"}).Draw(t, "membership"),
		actor: drawUser(t, "actor"), user: drawUser(t, "user"), perms: drawPerms(t)}
	if rapid.Bool().Draw(t, "self") {
		o.user, o.perms = o.actor, aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	}
	m.n++
	m.exec(t, drawMeeting(t), o, fmt.Sprintf("key-%d", m.n))
}

// BadInput sends a command with a malformed id or list: ErrInvalidCommand,
// nothing stored.
func (m *machine) BadInput(t *rapid.T) {
	bad := rapid.SampledFrom(invalidIDs).Draw(t, "bad id")
	meeting := drawMeeting(t)
	var o op
	switch rapid.IntRange(0, 6).Draw(t, "where") {
	case 0:
		meeting = bad
		o = op{name: "Join", actor: drawUser(t, "actor")}
	case 1:
		o = op{name: "RequestAccess", actor: bad}
	case 2:
		o = op{name: "GrantAccess", actor: drawUser(t, "actor"), users: append(drawUsers(t), bad)}
	case 3:
		o = op{name: "AddParticipant", user: bad, perms: drawPerms(t)}
	case 4:
		o = op{name: "Kick", actor: drawUser(t, "actor")} // empty list
	case 5:
		o = op{name: "UpdatePermissions", user: drawUser(t, "user"), perms: aggregate.Permissions{StageAccess: "Maybe"}}
	case 6:
		if bad == "" {
			bad = "a\tb" // the backend's membership commands need no actor
		}
		o = op{name: "RemoveParticipant", actor: bad, user: drawUser(t, "user")}
	}
	before := m.storeLen(t)
	_, err := m.eng.Execute(m.ctx, meeting, o.command())
	if !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Fatalf("%s with bad input %q: error %v, want ErrInvalidCommand", o.name, bad, err)
	}
	if after := m.storeLen(t); after != before {
		t.Fatalf("invariant 6: bad input stored %d events", after-before)
	}
}

// GetAccessRequests reads the queue: hosts see the model's queue, anyone
// else is refused.
func (m *machine) GetAccessRequests(t *rapid.T) {
	meeting, actor := drawMeeting(t), drawUser(t, "actor")
	mm := m.model[meeting]
	reqs, err := m.eng.GetAccessRequests(m.ctx, meeting, actor)
	if mm.version == 0 {
		if !errors.Is(err, aggregate.ErrNoMeeting) {
			t.Fatalf("GetAccessRequests in a meeting with no events: %v, want ErrNoMeeting", err)
		}
		return
	}
	if !isModerator(mm.users[actor]) {
		if !errors.Is(err, aggregate.ErrPermissionDenied) {
			t.Fatalf("GetAccessRequests by non-host %s: %v", actor, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("GetAccessRequests by host %s: %v", actor, err)
	}
	var got []string
	for _, r := range reqs {
		got = append(got, r.UserID)
	}
	if want := mm.queue(); !slices.Equal(got, want) {
		t.Fatalf("GetAccessRequests = %v, model queue %v", got, want)
	}
}

// run executes o with a fresh key; a quarter of the time through the
// convenience methods, which make up their own key.
func (m *machine) run(t *rapid.T, meeting string, o op) {
	m.n++
	key := fmt.Sprintf("key-%d", m.n)
	if rapid.IntRange(0, 3).Draw(t, "convenience") == 0 {
		key = ""
	}
	m.exec(t, meeting, o, key)
}

// exec runs o on the engine and the model and compares the outcomes. An
// empty key means: call the convenience method.
func (m *machine) exec(t *rapid.T, meeting string, o op, key string) {
	// The clock often stands still, so that requests tie on time, and
	// sometimes goes back (a clock step): a meeting's time never does.
	m.clock.Advance(rapid.SampledFrom([]time.Duration{0, 0, 0, time.Millisecond, time.Minute, -time.Second}).Draw(t, "tick"))
	mm := m.model[meeting]
	now := m.clock.Now()
	if now.Before(mm.lastTime) {
		now = mm.lastTime
	}
	lenBefore := m.storeLen(t)
	before := m.statuses(t, meeting)
	actorWasModerator := isModerator(mm.users[o.actor])
	actorWasAllowed := mm.users[o.actor] != nil && mm.users[o.actor].perms.StageAccess == aggregate.Allowed

	keyed := key != ""
	res, err := m.call(t, meeting, o, key)
	if err == nil && key == "" && len(res.Events) > 0 {
		key = res.Events[0].CommandID
	}

	// What the model expects: a key the actor used before is a duplicate
	// of the same command, ErrKeyReused for another.
	var want outcome
	sk := scoped(o.actor, key)
	duplicate := false
	prev, applied := mm.outcomes[sk]
	switch {
	case key != "" && !mm.remembered(sk, now) && applied && err == nil && res.Duplicate && prev.op.same(o):
		// Past the window, a made-up key is guaranteed no more, but an
		// Engine whose cache is stale may still hold it in its window: a
		// duplicate is right too (nothing is stored twice either way).
		duplicate, want = true, prev
	case key != "" && !mm.remembered(sk, now) && applied && errors.Is(err, aggregate.ErrKeyReused) && !prev.op.same(o):
		want = outcome{err: aggregate.ErrKeyReused}
	case key == "" || !mm.remembered(sk, now):
		want = mm.decide(o, key, now, keyed)
	case mm.outcomes[sk].op.same(o):
		duplicate, want = true, mm.outcomes[sk]
	default:
		want = outcome{err: aggregate.ErrKeyReused}
	}

	lenAfter := m.storeLen(t)
	switch {
	case want.err != nil:
		if !errors.Is(err, want.err) {
			t.Fatalf("%s %+v: error %v, model says %v", o.name, o, err, want.err)
		}
		var ae *aggregate.Error
		if !errors.As(err, &ae) {
			t.Fatalf("%s: error %T is not an *aggregate.Error", o.name, err)
		}
		if lenAfter != lenBefore {
			t.Fatalf("invariant 6: rejected %s stored %d events", o.name, lenAfter-lenBefore)
		}
		return
	case err != nil:
		t.Fatalf("%s %+v: %v, model accepts it", o.name, o, err)
	case duplicate:
		if len(res.Events) > 0 && res.Events[0].Hash != m.hashes[meeting+"/"+sk] {
			t.Fatalf("invariant 8: retry of %q reports another event than the one stored", key)
		}
		if !res.Duplicate || res.Version != want.version || lenAfter != lenBefore {
			t.Fatalf("invariant 8: retry of %q: duplicate %v version %d (original %d), stored %d events",
				key, res.Duplicate, res.Version, want.version, lenAfter-lenBefore)
		}
		if len(res.Events) != 1 || res.Events[0].Version != want.version || res.Events[0].CommandID != key {
			t.Fatalf("invariant 8: retry of %q reports events %+v", key, res.Events)
		}
	default:
		if res.Duplicate || res.Version != want.version || lenAfter != lenBefore+1 || len(res.Events) != 1 {
			t.Fatalf("%s: result %+v, stored %d events; model: version %d", o.name, res, lenAfter-lenBefore, want.version)
		}
		if e := res.Events[0]; e.Version != want.version || e.CommandID != key || e.Actor != o.actor || !e.Time.Equal(now) {
			t.Fatalf("%s: event %+v (key %q, now %v)", o.name, e, key, now)
		}
		if e := res.Events[0]; res.Seq != m.lastSeq || e.Seq != m.lastSeq {
			t.Fatalf("%s: position %d, event seq %d; the store's last event is at %d", o.name, res.Seq, e.Seq, m.lastSeq)
		}
		m.hashes[meeting+"/"+sk] = res.Events[0].Hash
		mm.lastTime = now
	}
	if len(res.Rejected) != len(want.rejected) {
		t.Fatalf("%s: rejected %v, model %v", o.name, res.Rejected, want.rejected)
	}
	for i, r := range res.Rejected {
		if r.UserID != want.rejected[i].user || !errors.Is(r.Err, want.rejected[i].kind) {
			t.Fatalf("%s: rejected[%d] = %s %v, model %s %v", o.name, i, r.UserID, r.Err, want.rejected[i].user, want.rejected[i].kind)
		}
	}
	if key != "" {
		m.used = append(m.used, usedKey{meeting: meeting, key: key, op: o})
	}
	if duplicate {
		return
	}

	// Invariants 3 and 5 are about moves: compare statuses before and after.
	after := m.statuses(t, meeting)
	for _, u := range pool {
		if before[u] == after[u] {
			continue
		}
		if !o.membership() && !actorWasModerator && u != o.actor {
			t.Fatalf("invariant 5: %s, neither host nor co-host, moved %s from %v to %v by %s", o.actor, u, before[u], after[u], o.name)
		}
		if after[u] == aggregate.OnStage {
			if o.name != "Join" || u != o.actor ||
				!(before[u] == aggregate.AcceptedToJoinStage || before[u] == aggregate.OffStage && actorWasAllowed) {
				t.Fatalf("invariant 3: %s reached OnStage from %v by %s of %s", u, before[u], o.name, o.actor)
			}
		}
	}
}

// call runs o on one of the engines: with Execute and an idempotency key,
// or, for an empty key, with the convenience method.
func (m *machine) call(t *rapid.T, meeting string, o op, key string) (stage.Result, error) {
	ctx := m.ctx
	eng := rapid.SampledFrom(m.engines).Draw(t, "engine")
	if key != "" {
		return eng.Execute(ctx, meeting, o.command(), stage.WithIdempotencyKey(key))
	}
	switch o.name {
	case "AddParticipant":
		return eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: o.user, Permissions: o.perms})
	case "RemoveParticipant":
		return eng.RemoveParticipant(ctx, meeting, o.user)
	case "UpdatePermissions":
		return eng.UpdatePermissions(ctx, meeting, o.user, o.perms)
	case "RequestAccess":
		return eng.RequestAccess(ctx, meeting, o.actor)
	case "CancelRequestAccess":
		return eng.CancelRequestAccess(ctx, meeting, o.actor)
	case "GrantAccess":
		return eng.GrantAccess(ctx, meeting, o.actor, o.users)
	case "DenyAccess":
		if o.reason != "" {
			return eng.Execute(ctx, meeting, o.command())
		}
		return eng.DenyAccess(ctx, meeting, o.actor, o.users)
	case "Join":
		return eng.Join(ctx, meeting, o.actor)
	case "Leave":
		return eng.Leave(ctx, meeting, o.actor)
	case "Kick":
		if o.reason != "" {
			return eng.Execute(ctx, meeting, o.command())
		}
		return eng.Kick(ctx, meeting, o.actor, o.users)
	case "StartStage":
		return eng.StartStage(ctx, meeting, o.actor)
	case "EndStage":
		return eng.EndStage(ctx, meeting, o.actor)
	case "CloseRequests":
		return eng.CloseRequests(ctx, meeting, o.actor, o.deny)
	case "OpenRequests":
		return eng.OpenRequests(ctx, meeting, o.actor)
	case "PromoteCoHost":
		return eng.PromoteCoHost(ctx, meeting, o.actor, o.user)
	case "DemoteCoHost":
		return eng.DemoteCoHost(ctx, meeting, o.actor, o.user)
	case "DeclineInvitation":
		return eng.DeclineInvitation(ctx, meeting, o.actor)
	}
	panic("unknown op " + o.name)
}

// statuses asks the engine for every pool user's status (zero for none).
func (m *machine) statuses(t *rapid.T, meeting string) map[string]aggregate.Status {
	out := map[string]aggregate.Status{}
	for _, u := range pool {
		st, err := m.eng.Status(m.ctx, meeting, u)
		switch {
		case err == nil:
			out[u] = st
		case errors.Is(err, aggregate.ErrNotParticipant), errors.Is(err, aggregate.ErrNoMeeting):
			if st != 0 {
				t.Fatalf("invariant 1: non-participant %s has status %v", u, st)
			}
		default:
			t.Fatalf("Status(%s): %v", u, err)
		}
	}
	return out
}

// storeLen returns how many events the store holds, reading only those
// stored since the last call.
func (m *machine) storeLen(t *rapid.T) int {
	for e, err := range m.store.ReadAll(m.ctx, m.lastSeq+1) {
		if err != nil {
			t.Fatal(err)
		}
		m.stored++
		m.lastSeq = e.Seq
	}
	return m.stored
}

// Check runs after every step.
func (m *machine) Check(t *rapid.T) {
	for _, meeting := range meetings {
		checkMeeting(t, m.ctx, m.eng, m.store, meeting, m.verified)
		m.compareModel(t, meeting)
		for _, eng := range m.engines {
			checkIndexes(t, eng.CachedStateForTest(meeting))
		}
	}
}

// checkIndexes holds the state's indexes to what they index: Hosts to the
// members holding AcceptStageRequests, QueueLen to the queue.
func checkIndexes(t *rapid.T, s *aggregate.State) {
	if s == nil {
		return
	}
	var hosts []string
	for _, mb := range s.Members() {
		if mb.IsHost() {
			hosts = append(hosts, mb.UserID)
		}
	}
	if got := s.Hosts(); !slices.Equal(got, hosts) {
		t.Fatalf("Hosts() = %v, the members holding AcceptStageRequests are %v", got, hosts)
	}
	var cohosts []string
	for _, mb := range s.Members() {
		if mb.CoHost {
			cohosts = append(cohosts, mb.UserID)
		}
	}
	if got := s.CoHosts(); !slices.Equal(got, cohosts) {
		t.Fatalf("CoHosts() = %v, the members with CoHost are %v", got, cohosts)
	}
	mods := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(hosts), cohosts...))))
	if got := s.Moderators(); !slices.Equal(got, mods) {
		t.Fatalf("Moderators() = %v, the hosts and co-hosts are %v", got, mods)
	}
	if got, want := s.QueueLen(), len(s.Queue()); got != want {
		t.Fatalf("QueueLen() = %d, the queue holds %d", got, want)
	}
	if c, err := aggregate.UnmarshalState(s.MeetingID(), must(s.MarshalBinary())); err != nil || !slices.Equal(c.Hosts(), hosts) ||
		c.QueueLen() != s.QueueLen() || !slices.Equal(c.CoHosts(), cohosts) || !c.Equal(s) {
		t.Fatalf("a snapshot's state or indexes differ: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// compareModel checks the engine's roster against the model's.
func (m *machine) compareModel(t *rapid.T, meeting string) {
	mm := m.model[meeting]
	r, err := m.eng.Roster(m.ctx, meeting)
	if errors.Is(err, aggregate.ErrNoMeeting) && mm.version == 0 {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != mm.version {
		t.Fatalf("%s: engine at version %d, model at %d", meeting, r.Version, mm.version)
	}
	if len(r.Participants) != len(mm.users) {
		t.Fatalf("%s: engine has %d participants, model %d", meeting, len(r.Participants), len(mm.users))
	}
	var onStage, accepted []string
	for _, p := range r.Participants {
		u := mm.users[p.UserID]
		if u == nil {
			t.Fatalf("%s: %s is a participant, not in the model", meeting, p.UserID)
		}
		if p.Status != u.status || p.Permissions != u.perms || !p.Since.Equal(u.since) {
			t.Fatalf("%s: engine has %s %v %+v since %v; model %v %+v since %v",
				meeting, p.UserID, p.Status, p.Permissions, p.Since, u.status, u.perms, u.since)
		}
		switch u.status {
		case aggregate.OnStage:
			onStage = append(onStage, p.UserID)
		case aggregate.AcceptedToJoinStage:
			accepted = append(accepted, p.UserID)
		}
	}
	if !slices.Equal(r.OnStage, onStage) || !slices.Equal(r.Accepted, accepted) {
		t.Fatalf("%s: on stage %v accepted %v; model %v %v", meeting, r.OnStage, r.Accepted, onStage, accepted)
	}
	// The stage controls: the phase, the switch, the co-hosts; an ended
	// stage holds nobody on it, accepted or requested.
	if st := m.eng.CachedStateForTest(meeting); st != nil {
		wantPhase := aggregate.PhaseLive
		if mm.ended {
			wantPhase = aggregate.PhaseEnded
		}
		if open, _ := st.RequestsOpen(); st.Phase() != wantPhase || open == mm.closed {
			t.Fatalf("%s: stage %v, requests open %v; model ended %v, closed %v", meeting, st.Phase(), open, mm.ended, mm.closed)
		}
		for _, p := range r.Participants {
			if mb, _ := st.Member(p.UserID); mb.CoHost != mm.users[p.UserID].cohost {
				t.Fatalf("%s: %s co-host %v, model %v", meeting, p.UserID, mb.CoHost, mm.users[p.UserID].cohost)
			}
		}
	}
	if mm.ended && (len(r.OnStage) > 0 || len(r.Accepted) > 0 || len(r.Requests) > 0) {
		t.Fatalf("%s: the stage ended, yet on stage %v, accepted %v, requests %v", meeting, r.OnStage, r.Accepted, r.Requests)
	}
	q := mm.queue()
	if len(r.Requests) != len(q) {
		t.Fatalf("%s: requests %v, model queue %v", meeting, r.Requests, q)
	}
	for i, req := range r.Requests {
		if req.UserID != q[i] || req.Position != i+1 || !req.RequestedAt.Equal(mm.users[q[i]].requestedAt) {
			t.Fatalf("%s: request %d is %+v, model %s at %v", meeting, i, req, q[i], mm.users[q[i]].requestedAt)
		}
	}
}

// checkMeeting checks the invariants that hold of any meeting at rest,
// whoever wrote it: 1, 2, 4 and 7. The property and concurrency tests share it.
//
// verified, if not nil, remembers how far each meeting's events have had
// their hashes recomputed, so that a caller checking after every step
// recomputes only the new ones (links and versions are checked every time).
func checkMeeting(t failer, ctx context.Context, eng *stage.Engine, store eventstore.Store, meeting string, verified map[string]uint64) {
	t.Helper()
	live, err := eng.Roster(ctx, meeting)
	if errors.Is(err, aggregate.ErrNoMeeting) {
		// Only a meeting with no events is no meeting.
		for e, err := range store.Load(ctx, meeting, 1) {
			t.Fatalf("Roster(%s): no such meeting, but the store holds version %d (%v)", meeting, e.Version, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Roster(%s): %v", meeting, err)
	}

	// 7: versions 1..n without gap, the hash chain holds, and folding the
	// stored events from scratch gives the live roster, every time.
	var log []events.Envelope
	var prev events.Hash
	for e, err := range store.Load(ctx, meeting, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version <= verified[meeting] {
			if e.Version != uint64(len(log))+1 || e.PrevHash != prev {
				t.Fatalf("invariant 7: %s: version %d at position %d, or a broken link", meeting, e.Version, len(log)+1)
			}
		} else if err := eventstore.CheckNext(&e, uint64(len(log)), prev); err != nil {
			t.Fatalf("invariant 7: %s: %v", meeting, err)
		}
		prev = e.Hash
		log = append(log, e)
	}
	if verified != nil {
		verified[meeting] = uint64(len(log))
	}
	folded, err := projections.Fold(meeting, func(yield func(events.Envelope, error) bool) {
		for _, e := range log {
			if !yield(e, nil) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if folded.Version() != uint64(len(log)) || live.Version != folded.Version() {
		t.Fatalf("invariant 7: %s: %d events, folded version %d, live version %d", meeting, len(log), folded.Version(), live.Version)
	}
	if replayed := projections.RosterOf(folded); !sameRoster(replayed, live) {
		t.Fatalf("invariant 7: %s: replay gives %+v, live %+v", meeting, replayed, live)
	}

	// 1 and 2: one status per participant, never NotAllowed and off-stage-bound.
	seen := map[string]bool{}
	for _, p := range live.Participants {
		if seen[p.UserID] {
			t.Fatalf("invariant 1: %s: %s listed twice", meeting, p.UserID)
		}
		seen[p.UserID] = true
		if p.Status < aggregate.OffStage || p.Status > aggregate.OnStage {
			t.Fatalf("invariant 1: %s: %s has status %v", meeting, p.UserID, p.Status)
		}
		if p.Permissions.StageAccess == aggregate.NotAllowed && p.Status != aggregate.OffStage {
			t.Fatalf("invariant 2: %s: NotAllowed %s is %v", meeting, p.UserID, p.Status)
		}
	}

	// 4: the queue is the requested participants, ordered by the time of
	// their latest request as recorded in the log.
	lastRequest := map[string]events.Envelope{}
	for _, e := range log {
		if p, ok := e.Payload.(*events.AccessRequested); ok && !p.AutoAccepted {
			lastRequest[e.Actor] = e
		}
	}
	var requested []string
	for _, p := range live.Participants {
		if p.Status == aggregate.RequestedToJoinStage {
			requested = append(requested, p.UserID)
		}
	}
	slices.SortFunc(requested, func(a, b string) int {
		ea, eb := lastRequest[a], lastRequest[b]
		if c := ea.Time.Compare(eb.Time); c != 0 {
			return c
		}
		return int(ea.Version) - int(eb.Version)
	})
	if len(live.Requests) != len(requested) {
		t.Fatalf("invariant 4: %s: queue %+v, requested participants %v", meeting, live.Requests, requested)
	}
	for i, r := range live.Requests {
		if r.UserID != requested[i] || !r.RequestedAt.Equal(lastRequest[r.UserID].Time) || r.Position != i+1 {
			t.Fatalf("invariant 4: %s: queue %+v, requested participants by request time %v", meeting, live.Requests, requested)
		}
	}
}

// failer is what checkMeeting needs of a *testing.T or a *rapid.T.
type failer interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// sameRoster compares two rosters, times as instants.
func sameRoster(a, b projections.Roster) bool {
	if a.MeetingID != b.MeetingID || a.Version != b.Version || !slices.Equal(a.OnStage, b.OnStage) ||
		!slices.Equal(a.Accepted, b.Accepted) || len(a.Requests) != len(b.Requests) || len(a.Participants) != len(b.Participants) {
		return false
	}
	for i := range a.Requests {
		x, y := a.Requests[i], b.Requests[i]
		if x.UserID != y.UserID || x.Position != y.Position || !x.RequestedAt.Equal(y.RequestedAt) {
			return false
		}
	}
	for i := range a.Participants {
		x, y := a.Participants[i], b.Participants[i]
		if x.UserID != y.UserID || x.Status != y.Status || x.Permissions != y.Permissions || !x.Since.Equal(y.Since) {
			return false
		}
	}
	return true
}
