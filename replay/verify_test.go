package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
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

var (
	host   = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer = aggregate.Permissions{StageAccess: aggregate.CanRequest}
)

// steppingClock returns a clock that moves one second per call from a fixed start.
func steppingClock() func() time.Time {
	t := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// webinar runs a small legal scenario through the engine and returns its log.
func webinar(t testing.TB) []events.Envelope {
	t.Helper()
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store, stage.WithClock(steppingClock()))
	if err != nil {
		t.Fatal(err)
	}
	const m = "w1"
	must := func(_ stage.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: host}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: viewer}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "carol", Permissions: viewer}))
	must(eng.RequestAccess(ctx, m, "bob"))                    // 4
	must(eng.GrantAccess(ctx, m, "alice", []string{"bob"}))   // 5
	must(eng.Join(ctx, m, "bob"))                             // 6
	must(eng.RequestAccess(ctx, m, "carol"))                  // 7
	must(eng.DenyAccess(ctx, m, "alice", []string{"carol"}))  // 8
	must(eng.Kick(ctx, m, "alice", []string{"bob"}))          // 9
	must(eng.RequestAccess(ctx, m, "carol"))                  // 10
	must(eng.GrantAccess(ctx, m, "alice", []string{"carol"})) // 11
	must(eng.Join(ctx, m, "carol"))                           // 12
	must(eng.Leave(ctx, m, "carol"))                          // 13
	var out []events.Envelope
	for e, err := range store.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func seq(evs []events.Envelope) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for _, e := range evs {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// reseal recomputes the hash chain from index i on, as a forger who knows
// the algorithm would.
func reseal(t *testing.T, evs []events.Envelope, i int) {
	t.Helper()
	for j := i; j < len(evs); j++ {
		var prev events.Hash
		if j > 0 {
			prev = evs[j-1].Hash
		}
		if err := evs[j].Seal(prev); err != nil {
			t.Fatal(err)
		}
	}
}

// clone deep-copies the log (payloads are pointers).
func clone(t *testing.T, evs []events.Envelope) []events.Envelope {
	out := make([]events.Envelope, len(evs))
	for i := range evs {
		b, err := events.Marshal(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = events.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestVerify_clean(t *testing.T) {
	rep, err := replay.Verify(context.Background(), seq(webinar(t)))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != 13 || rep.Meetings != 1 || len(rep.Unchecked) != 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerify_tampering(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, evs []events.Envelope) []events.Envelope
		// want is the kind of the first finding; only, if set, lists every
		// kind the report may hold.
		want    replay.FindingKind
		version uint64
		only    []replay.FindingKind
	}{
		{"edited payload", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[7].Payload.(*events.AccessDenied).Users = []string{"bob"} // version 8 denied carol
			return evs
		}, replay.HashMismatch, 8, nil},
		{"deleted event", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			return slices.Delete(evs, 4, 5) // version 5, bob's grant
		}, replay.VersionGap, 6, nil},
		{"swapped events", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[4], evs[5] = evs[5], evs[4]
			return evs
		}, replay.VersionGap, 6, nil},
		{"swapped and resequenced", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[4], evs[5] = evs[5], evs[4]
			evs[4].Seq, evs[5].Seq = evs[5].Seq, evs[4].Seq
			return evs
		}, replay.VersionGap, 6, nil},
		{"unprivileged actor", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[8].Actor = "carol" // version 9: alice kicked bob; carol is no host
			reseal(t, evs, 8)
			return evs
		}, replay.Illegal, 9, []replay.FindingKind{replay.Illegal}},
		{"forged hash", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[5].Hash[0] ^= 0xff
			return evs
		}, replay.HashMismatch, 6, nil},
		{"edited and re-hashed", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[7].Payload.(*events.AccessDenied).Reason = "rude"
			if err := evs[7].Seal(evs[7].PrevHash); err != nil {
				t.Fatal(err)
			}
			return evs
		}, replay.ChainBroken, 9, []replay.FindingKind{replay.ChainBroken}},
		{"inserted event", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs = slices.Insert(evs, 6, evs[5]) // bob joins twice
			return evs
		}, replay.SequenceOrder, 6, nil},
		{"impossible payload", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[3].Payload = &events.AccessRequested{AutoAccepted: true} // bob is a CanRequest viewer
			reseal(t, evs, 3)
			return evs
		}, replay.Mismatch, 4, nil},
		{"retry stored twice", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[12].CommandID = evs[11].CommandID // carol's leave reuses her join's command id
			reseal(t, evs, 12)
			return evs
		}, replay.DuplicateKey, 13, []replay.FindingKind{replay.DuplicateKey}},
		{"time runs backwards", func(t *testing.T, evs []events.Envelope) []events.Envelope {
			evs[6].Time = evs[2].Time
			reseal(t, evs, 6)
			return evs
		}, replay.TimeReversed, 7, []replay.FindingKind{replay.TimeReversed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := c.edit(t, clone(t, webinar(t)))
			rep, err := replay.Verify(context.Background(), seq(evs))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("tampering not found")
			}
			f := rep.Findings[0]
			if f.Kind != c.want || f.Version != c.version || f.MeetingID != "w1" || f.Reason == "" {
				t.Errorf("first finding %v, want %s at version %d", f, c.want, c.version)
			}
			if f.Seq == 0 {
				t.Errorf("finding without stream sequence: %v", f)
			}
			if c.only != nil && !slices.Equal(rep.Kinds(), c.only) {
				t.Errorf("kinds %v, want only %v: %v", rep.Kinds(), c.only, rep.Findings)
			}
		})
	}
}

func TestVerify_illegalCarriesRule(t *testing.T) {
	evs := clone(t, webinar(t))
	evs[8].Actor = "carol"
	reseal(t, evs, 8)
	rep, _ := replay.Verify(context.Background(), seq(evs))
	var ae *aggregate.Error
	if len(rep.Findings) != 1 || !errors.As(rep.Findings[0].Err, &ae) || !errors.Is(ae, aggregate.ErrPermissionDenied) || ae.UserID != "carol" {
		t.Fatalf("findings %v", rep.Findings)
	}
}

func TestVerify_malformedGoesOn(t *testing.T) {
	bad := fmt.Errorf("line 3: %w", events.ErrMalformed)
	evs := webinar(t)
	it := func(yield func(events.Envelope, error) bool) {
		for i, e := range evs {
			if i == 2 {
				if !yield(events.Envelope{}, bad) {
					return
				}
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
	rep, err := replay.Verify(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != len(evs) || rep.Findings[0].Kind != replay.Malformed {
		t.Fatalf("%+v", rep)
	}
	// A store's corruption report is a finding too.
	corrupt := &eventstore.CorruptError{Seq: 9, MeetingID: "w1", Version: 9, Err: events.ErrHashMismatch}
	rep, err = replay.Verify(context.Background(), func(yield func(events.Envelope, error) bool) {
		yield(events.Envelope{}, corrupt)
	})
	if err != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != replay.HashMismatch || rep.Findings[0].Seq != 9 {
		t.Fatalf("%+v %v", rep, err)
	}
	// Any other error stops Verify.
	boom := errors.New("boom")
	_, err = replay.Verify(context.Background(), func(yield func(events.Envelope, error) bool) { yield(events.Envelope{}, boom) })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

// TestEngineLogs is the property: every log the engine writes verifies
// clean, and replaying it to any version gives the roster the engine served
// at that version.
func TestEngineLogs(t *testing.T) {
	users := []string{"h1", "h2", "s1", "v1", "v2", "v3", "n1"}
	perms := map[string]aggregate.Permissions{
		"h1": host, "h2": {StageAccess: aggregate.CanRequest, AcceptStageRequests: true},
		"s1": {StageAccess: aggregate.Allowed}, "v1": viewer, "v2": viewer, "v3": viewer,
		"n1": {StageAccess: aggregate.NotAllowed},
	}
	meetings := []string{"m1", "m2"}
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		store := eventstore.NewMemory()
		now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
		eng, err := stage.New(store, stage.WithClock(func() time.Time { return now }), stage.WithAutoTick(false))
		if err != nil {
			t.Fatal(err)
		}
		type read struct {
			at     time.Time
			roster []byte
		}
		live := map[string]map[uint64]read{"m1": {}, "m2": {}}
		user := rapid.SampledFrom(users)
		targets := rapid.SliceOfN(user, 1, 3)
		ttl := rapid.SampledFrom([]time.Duration{0, 0, 20 * time.Second, time.Minute})
		// Everyone starts in both meetings, so that most commands apply.
		for _, m := range meetings {
			for _, u := range users {
				if _, err := eng.AddParticipant(ctx, m, aggregate.Participant{UserID: u, Permissions: perms[u]}); err != nil {
					t.Fatal(err)
				}
			}
		}
		n := rapid.IntRange(1, 80).Draw(t, "commands")
		for i := 0; i < n; i++ {
			now = now.Add(time.Duration(rapid.IntRange(0, 40).Draw(t, "seconds")) * time.Second)
			m := rapid.SampledFrom(meetings).Draw(t, "meeting")
			actor := user.Draw(t, "actor")
			var a aggregate.Action
			switch rapid.IntRange(0, 17).Draw(t, "action") {
			case 0, 1:
				a = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: actor, Permissions: perms[actor]}}
				actor = ""
			case 2:
				a = aggregate.RemoveParticipant{UserID: actor}
				actor = ""
			case 3:
				a = aggregate.UpdatePermissions{UserID: actor, Permissions: perms[user.Draw(t, "as")]}
				actor = ""
			case 4:
				a = aggregate.RequestAccess{}
			case 5:
				a = aggregate.CancelRequestAccess{}
			case 6:
				a = aggregate.GrantAccess{Users: targets.Draw(t, "targets")}
			case 7:
				a = aggregate.DenyAccess{Users: targets.Draw(t, "targets"), Reason: "no"}
			case 8, 9:
				a = aggregate.Join{}
			case 10:
				a = aggregate.Leave{}
			case 11:
				a = aggregate.Kick{Users: targets.Draw(t, "targets")}
			case 12:
				a = aggregate.Configure{Settings: events.Settings{
					MaxOnStage:      rapid.IntRange(0, 2).Draw(t, "seats"),
					SeatOfferTTL:    ttl.Draw(t, "offer"),
					InvitationTTL:   ttl.Draw(t, "invitation"),
					SpeakingSlot:    ttl.Draw(t, "slot"),
					RequestCooldown: ttl.Draw(t, "cooldown"),
					ReconnectGrace:  ttl.Draw(t, "grace"),
				}}
			case 13:
				var until time.Time
				if rapid.Bool().Draw(t, "timed") {
					until = now.Add(30 * time.Second)
				}
				a = aggregate.BanFromStage{UserID: user.Draw(t, "banned"), Until: until}
			case 14:
				a = aggregate.LiftBan{UserID: user.Draw(t, "lifted")}
			case 15:
				a = aggregate.Disconnect{UserID: actor}
				actor = ""
			case 16:
				a = aggregate.Reconnect{UserID: actor}
				actor = ""
			default:
				a = aggregate.Tick{}
				actor = ""
			}
			if _, err := eng.Execute(ctx, m, aggregate.Command{Actor: actor, Action: a}); err != nil && !errors.Is(err, aggregate.ErrStageFull) {
				continue
			}
			r, err := eng.Roster(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if r.Version > 0 {
				b, _ := json.Marshal(r)
				live[m][r.Version] = read{now, b}
			}
		}
		src := replay.StoreSource(store)
		rep, err := replay.Verify(ctx, src.Events(ctx, ""))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("engine log has findings: %v", rep.Findings)
		}
		for m, byVersion := range live {
			for v, want := range byVersion {
				// The engine's reads count deadlines passed by their time.
				s, err := replay.State(ctx, src, replay.Filter{MeetingID: m, UpToVersion: v})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := json.Marshal(projections.RosterOf(aggregate.At(s, want.at)))
				if string(got) != string(want.roster) {
					t.Fatalf("meeting %s version %d: replayed roster\n%s\nlive roster\n%s", m, v, got, want.roster)
				}
			}
		}
		// The live projection, run over the whole log, agrees too.
		runner, _ := projections.NewRunner(store)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- runner.Run(rctx) }()
		if last := lastSeq(t, store); last > 0 {
			if err := runner.WaitFor(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		<-done
		for _, m := range meetings {
			a, err := runner.Roster(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			b, err := replay.Roster(ctx, src, replay.Filter{MeetingID: m})
			if errors.Is(err, replay.ErrUnknownMeeting) {
				if a.Version != 0 {
					t.Fatalf("runner has %s at version %d, replay knows none", m, a.Version)
				}
				continue
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("runner and replay differ on %s", m)
			}
		}
	})
}

func lastSeq(t *rapid.T, s eventstore.Store) uint64 {
	var last uint64
	for e, err := range s.ReadAll(context.Background(), 1) {
		if err != nil {
			t.Fatal(err)
		}
		last = e.Seq
	}
	return last
}

// TestVerify_mutations flips bytes of an exported log: Verify must never
// panic, and must report every mutation that changes what an event says.
func TestVerify_mutations(t *testing.T) {
	evs := webinar(t)
	var lines [][]byte
	for i := range evs {
		b, _ := events.Marshal(&evs[i])
		lines = append(lines, b)
	}
	rapid.Check(t, func(t *rapid.T) {
		i := rapid.IntRange(0, len(lines)-1).Draw(t, "line")
		mut := slices.Clone(lines[i])
		j := rapid.IntRange(0, len(mut)-1).Draw(t, "byte")
		mut[j] = rapid.Byte().Draw(t, "value")
		var buf []byte
		for k, l := range lines {
			if k == i {
				l = mut
			}
			buf = append(append(buf, l...), '\n')
		}
		rep, err := replay.Verify(context.Background(), replay.ReadJSONL(bytes.NewReader(buf), "log"))
		if err != nil {
			t.Fatal(err)
		}
		e, derr := events.Unmarshal(mut)
		if derr != nil {
			if rep.OK() {
				t.Fatal("malformed line not reported")
			}
			return
		}
		orig := evs[i]
		e.Seq, orig.Seq = 0, 0
		a, _ := events.Marshal(&e)
		b, _ := events.Marshal(&orig)
		if !bytes.Equal(a, b) && rep.OK() {
			t.Fatalf("mutation not found:\n%s\n%s", a, b)
		}
	})
}

// policyWebinar runs a scenario with stage policies through the engine: a
// seat limit, an invitation that lapses (recorded before the next command,
// with its id), a ban, a dropped connection.
func policyWebinar(t *testing.T) []events.Envelope {
	t.Helper()
	ctx := context.Background()
	store := eventstore.NewMemory()
	now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	eng, err := stage.New(store, stage.WithClock(func() time.Time { return now }), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	const m = "p1"
	step := func(d time.Duration, actor string, a aggregate.Action) {
		t.Helper()
		now = now.Add(d)
		if _, err := eng.Execute(ctx, m, aggregate.Command{Actor: actor, Action: a}); err != nil && !errors.Is(err, aggregate.ErrStageFull) {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		p := viewer
		if u == "alice" {
			p = host
		}
		step(0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: p}})
	}
	step(time.Second, "alice", aggregate.Configure{Settings: events.Settings{MaxOnStage: 1, InvitationTTL: time.Minute, ReconnectGrace: time.Minute}}) // 5
	step(time.Second, "bob", aggregate.RequestAccess{})                                                                                                // 6
	step(time.Second, "alice", aggregate.GrantAccess{Users: []string{"bob", "carol", "dave"}})                                                         // 7
	step(time.Second, "bob", aggregate.Join{})                                                                                                         // 8
	step(time.Second, "carol", aggregate.Join{})                                                                                                       // 9: full, waitlisted
	step(2*time.Minute, "alice", aggregate.BanFromStage{UserID: "dave"})                                                                               // 10: Lapsed, 11: banned
	step(time.Second, "", aggregate.Disconnect{UserID: "bob"})                                                                                         // 12
	step(time.Second, "", aggregate.Reconnect{UserID: "bob"})                                                                                          // 13
	step(time.Second, "alice", aggregate.LiftBan{UserID: "dave"})                                                                                      // 14
	var out []events.Envelope
	for e, err := range store.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestVerify_policies(t *testing.T) {
	log := policyWebinar(t)
	var types []events.Type
	for _, e := range log {
		types = append(types, e.Type)
	}
	for _, want := range []events.Type{events.TypeSettingsChanged, events.TypeSeatWaitlisted, events.TypeLapsed,
		events.TypeStageBanned, events.TypeDisconnected, events.TypeReconnected, events.TypeBanLifted} {
		if !slices.Contains(types, want) {
			t.Fatalf("scenario lacks %s: %v", want, types)
		}
	}
	rep, err := replay.Verify(context.Background(), seq(log))
	if err != nil || !rep.OK() || len(rep.Unchecked) != 0 {
		t.Fatalf("clean policy log: %+v %v", rep, err)
	}
	at := func(typ events.Type) int { return slices.Index(types, typ) }
	cases := []struct {
		name string
		edit func(evs []events.Envelope) []events.Envelope
		want replay.FindingKind
	}{
		{"ban by a viewer", func(evs []events.Envelope) []events.Envelope {
			evs[at(events.TypeStageBanned)].Actor = "carol"
			return evs
		}, replay.Illegal},
		{"policies set by a viewer", func(evs []events.Envelope) []events.Envelope {
			evs[at(events.TypeSettingsChanged)].Actor = "dave"
			return evs
		}, replay.Illegal},
		{"lapse not due yet", func(evs []events.Envelope) []events.Envelope {
			i := at(events.TypeLapsed)
			for j := i; j < len(evs); j++ {
				evs[j].Time = evs[j].Time.Add(-90 * time.Second) // the invitation had 1m
			}
			return evs
		}, replay.Illegal},
		{"lapse left out", func(evs []events.Envelope) []events.Envelope {
			i := at(events.TypeLapsed)
			evs = slices.Delete(evs, i, i+1)
			for j := i; j < len(evs); j++ {
				evs[j].Version--
			}
			return evs
		}, replay.Mismatch},
		{"waitlisted with room on stage", func(evs []events.Envelope) []events.Envelope {
			i := at(events.TypeSeatWaitlisted)
			evs[i].Payload.(*events.SeatWaitlisted).MaxOnStage = 2
			return evs
		}, replay.Mismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := c.edit(clone(t, log))
			reseal(t, evs, 0)
			rep, err := replay.Verify(context.Background(), seq(evs))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Findings[0].Kind != c.want {
				t.Fatalf("findings %v, want first %s", rep.Findings, c.want)
			}
		})
	}
}
