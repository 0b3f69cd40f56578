package replay_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

// memSink keeps checkpoints in memory.
type memSink struct{ cps []checkpoint.Signed }

func (m *memSink) WriteCheckpoints(_ context.Context, cps []checkpoint.Signed) error {
	m.cps = append(m.cps, cps...)
	return nil
}

// signedWebinar runs a scenario with two hosts through two engines in turn,
// each signing a checkpoint on Close (at versions 6 and 14), and returns the
// log and the checkpoints.
func signedWebinar(t *testing.T) ([]events.Envelope, []checkpoint.Signed, ed25519.PublicKey) {
	t.Helper()
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	store := eventstore.NewMemory()
	sink := &memSink{}
	clock := steppingClock()
	const m = "w1"
	engine := func() *stage.Engine {
		eng, err := stage.New(store, stage.WithClock(clock), stage.WithSigningKey(priv), stage.WithCheckpoints(time.Hour, sink))
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	must := func(_ stage.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	eng := engine()
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: host}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "dave", Permissions: host}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: viewer}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "carol", Permissions: viewer}))
	must(eng.RequestAccess(ctx, m, "bob"))                  // 5
	must(eng.GrantAccess(ctx, m, "alice", []string{"bob"})) // 6
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	eng = engine()
	must(eng.Join(ctx, m, "bob"))                             // 7
	must(eng.RequestAccess(ctx, m, "carol"))                  // 8
	must(eng.DenyAccess(ctx, m, "dave", []string{"carol"}))   // 9
	must(eng.Kick(ctx, m, "alice", []string{"bob"}))          // 10
	must(eng.RequestAccess(ctx, m, "carol"))                  // 11
	must(eng.GrantAccess(ctx, m, "alice", []string{"carol"})) // 12
	must(eng.Join(ctx, m, "carol"))                           // 13
	must(eng.Leave(ctx, m, "carol"))                          // 14
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	var out []events.Envelope
	for e, err := range store.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if len(sink.cps) != 2 || sink.cps[0].Version != 6 || sink.cps[1].Version != 14 {
		t.Fatalf("checkpoints %+v, want versions 6 and 14", sink.cps)
	}
	return out, sink.cps, pub
}

func TestVerify_checkpointsProveCleanLog(t *testing.T) {
	log, cps, pub := signedWebinar(t)
	rep, err := replay.Verify(t.Context(), seq(log), replay.WithCheckpoints(pub, cps))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("findings on a clean log: %v", rep.Findings)
	}
	p := rep.Proof
	if p == nil || p.Valid != 2 || len(p.Meetings) != 1 || p.Meetings[0].Proven != 14 || p.Meetings[0].Last != 14 {
		t.Fatalf("proof %+v", p)
	}
	if proven, unproven := p.ProvenEvents(); proven != 14 || unproven != 0 {
		t.Errorf("proven %d, unproven %d; want 14, 0", proven, unproven)
	}
	// Without a key nothing is claimed.
	rep, _ = replay.Verify(t.Context(), seq(log))
	if rep.Proof != nil {
		t.Errorf("a proof without a key: %+v", rep.Proof)
	}
}

// The re-hashed forgeries of the issue: each passes a keyless verify (the
// chain has no key), and each fails against the signed checkpoints.
func TestVerify_checkpointsCatchRehashedForgeries(t *testing.T) {
	log, cps, pub := signedWebinar(t)
	byVersion := func(evs []events.Envelope, v uint64) int {
		return slices.IndexFunc(evs, func(e events.Envelope) bool { return e.Version == v })
	}
	forgeries := map[string]struct {
		forge  func([]events.Envelope) []events.Envelope
		proven uint64 // what the checkpoints still prove
	}{
		"a backend event making bob a host": {func(evs []events.Envelope) []events.Envelope {
			// After bob was kicked (version 10), so the rest stays legal.
			i := byVersion(evs, 11)
			ev := evs[i]
			ev.Type, ev.Actor, ev.Payload = events.TypePermissionsChanged, "", &events.PermissionsChanged{UserID: "bob",
				Permissions: events.Permissions{StageAccess: events.Allowed, AcceptStageRequests: true}, Status: "OffStage"}
			ev.ID[15]++
			evs = slices.Insert(evs, i, ev)
			for j := i + 1; j < len(evs); j++ {
				evs[j].Version++
				evs[j].Seq++
			}
			reseal(t, evs, i)
			return evs
		}, 6},
		"a grant's actor swapped to the other host": {func(evs []events.Envelope) []events.Envelope {
			i := byVersion(evs, 12)
			evs[i].Actor = "dave"
			reseal(t, evs, i)
			return evs
		}, 6},
		"one event deleted": {func(evs []events.Envelope) []events.Envelope {
			// The first event after the checkpoint at 6 whose deletion
			// leaves a legal log.
			for v := uint64(7); v < 14; v++ {
				out := clone(t, evs)
				i := byVersion(out, v)
				out = slices.Delete(out, i, i+1)
				for j := i; j < len(out); j++ {
					out[j].Version--
				}
				reseal(t, out, i)
				if rep, err := replay.Verify(t.Context(), seq(out)); err == nil && rep.OK() {
					return out
				}
			}
			t.Fatal("no event can be deleted legally")
			return nil
		}, 6},
		"every event back-dated an hour": {func(evs []events.Envelope) []events.Envelope {
			for i := range evs {
				evs[i].Time = evs[i].Time.Add(-time.Hour)
			}
			reseal(t, evs, 0)
			return evs
		}, 0},
		"the tail cut": {func(evs []events.Envelope) []events.Envelope {
			return evs[:11]
		}, 6},
	}
	for name, f := range forgeries {
		t.Run(name, func(t *testing.T) {
			evs := f.forge(clone(t, log))
			rep, err := replay.Verify(t.Context(), seq(evs))
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("without a key the forgery shows (%v): the test no longer forges undetectably", rep.Findings)
			}
			rep, err = replay.Verify(t.Context(), seq(evs), replay.WithCheckpoints(pub, cps))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(rep.Kinds(), replay.CheckpointFailed) {
				t.Fatalf("with the key: findings %v, want a %s finding", rep.Findings, replay.CheckpointFailed)
			}
			if got := rep.Proof.Meetings[0].Proven; got != f.proven {
				t.Errorf("proven up to version %d, want %d", got, f.proven)
			}
		})
	}
}

func TestVerify_forgedCheckpoints(t *testing.T) {
	log, cps, pub := signedWebinar(t)
	// A forger without the key signs checkpoints of a rewritten log with
	// their own key: reported, and they prove nothing.
	_, forgerKey, _ := ed25519.GenerateKey(nil)
	fake, err := checkpoint.Sign(forgerKey, checkpoint.Checkpoint{MeetingID: "w1", Version: 14, Hash: events.Hash{9}, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	edited := cps[1]
	edited.Hash[0] ^= 1
	rep, err := replay.Verify(t.Context(), seq(log), replay.WithCheckpoints(pub, []checkpoint.Signed{fake, edited}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range rep.Findings {
		if f.Kind == replay.BadSignature {
			n++
			if !errors.Is(f.Err, checkpoint.ErrBadSignature) {
				t.Errorf("finding %v does not carry ErrBadSignature", f)
			}
		}
	}
	if n != 2 || rep.Proof.Valid != 0 || rep.Proof.Meetings[0].Proven != 0 {
		t.Fatalf("findings %v, proof %+v: want 2 bad signatures and nothing proven", rep.Findings, rep.Proof)
	}
}

// A meeting whose whole log is gone is still named by its checkpoint.
func TestVerify_checkpointOfMissingMeeting(t *testing.T) {
	_, cps, pub := signedWebinar(t)
	rep, err := replay.Verify(t.Context(), seq(webinar(t)), replay.WithCheckpoints(pub, cps))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range rep.Findings {
		if f.Kind == replay.CheckpointFailed && f.MeetingID == "w1" {
			found = true
		}
	}
	if !found {
		t.Fatalf("findings %v: want the lost meeting w1 reported", rep.Findings)
	}
}
