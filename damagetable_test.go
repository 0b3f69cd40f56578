package stage_test

// The damage table of issue 11 as tests: a store written through the
// embedded default, stopped, its block files damaged (damage_test.go), and
// then what verify and a new Engine make of it.
//
// Each row of the table is a test: TestDamage_bitFlips,
// TestDamage_onlyBlockLost, TestDamage_meetingLastEvent,
// TestDamage_truncatedTail, TestDamage_lastBlockLost (lost history:
// eventstore.ErrHistoryLost, and verify's bounded reads),
// TestDamage_forgedSnapshot (signed snapshots) and
// TestDamage_rehashedForgeries (signed checkpoints).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/replay"
)

// damageVerifyLimit bounds each verify of a damaged store: a verify still
// running then is a hang.
const damageVerifyLimit = 20 * time.Second

// damageEvents decodes the records of a block (taken before the damage)
// into their events, by stream sequence.
func damageEvents(t *testing.T, path string) (map[uint64]events.Envelope, []damageRecord) {
	t.Helper()
	recs := damageRecords(t, path)
	b := damageRead(t, path)
	out := map[uint64]events.Envelope{}
	for _, r := range recs {
		e, err := events.Unmarshal(b[r.MsgOff : r.MsgOff+r.MsgLen])
		if err != nil {
			t.Fatalf("record at %d (seq %d) before the damage: %v", r.Off, r.Seq, err)
		}
		out[r.Seq] = e
	}
	return out, recs
}

// TestDamage_bitFlips flips one bit in each of 30 events of the stream's
// block (in the event's bytes, none a meeting's last event: that row is
// TestDamage_meetingLastEvent). verify must report every one, by its
// sequence or as a gap where it was, without hanging; a new Engine must
// refuse every meeting: reads and appends fail with eventstore.ErrCorrupt.
func TestDamage_bitFlips(t *testing.T) {
	meetings := []string{"d0", "d1", "d2"}
	ds := newDamageStore(t, 40, meetings...)
	blk := damageBlocks(t, ds.Dir, natsstore.DefaultStream)[0]
	evs, recs := damageEvents(t, blk)
	if len(recs) != ds.Events {
		t.Fatalf("%d records in the block, %d events written", len(recs), ds.Events)
	}
	// Candidates: every event but each meeting's last.
	var cands []damageRecord
	for _, r := range recs {
		if e := evs[r.Seq]; e.Version < ds.Meetings[e.MeetingID] {
			cands = append(cands, r)
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	damaged := map[uint64]bool{}
	hit := map[string]bool{}
	for _, r := range cands[:30] {
		damageFlipBits(t, blk, 1, rng, [2]int{r.MsgOff, r.MsgLen})
		damaged[r.Seq] = true
		hit[evs[r.Seq].MeetingID] = true
	}

	rep, err, hung := damageVerify(t, ds.Dir, damageVerifyLimit)
	if hung {
		t.Fatalf("verify still running after %v", damageVerifyLimit)
	}
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	// A damaged event is found when a finding names its sequence, or names
	// a later event of its meeting at or before the next undamaged one (a
	// gap where the server dropped it).
	for seq := range damaged {
		e := evs[seq]
		next := e.Version + 1
		for s := seq + 1; ; s++ { // the meeting's next undamaged event
			n, ok := evs[s]
			if !ok {
				break
			}
			if n.MeetingID == e.MeetingID {
				if !damaged[s] {
					next = n.Version
					break
				}
			}
		}
		found := false
		for _, f := range rep.Findings {
			if f.Seq == seq || f.MeetingID == e.MeetingID && f.Version > e.Version && f.Version <= next {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("damaged event at seq %d (%s version %d) not reported", seq, e.MeetingID, e.Version)
		}
	}
	t.Logf("verify: %d events read, %d findings for %d damaged events", rep.Events, len(rep.Findings), len(damaged))

	run := damageEngine(t, ds)
	if run.OpenErr != nil {
		t.Fatal(run.OpenErr)
	}
	for m := range hit {
		if !errors.Is(run.ReadErrs[m], eventstore.ErrCorrupt) {
			t.Errorf("meeting %s read as version %d (%v), want ErrCorrupt", m, run.Versions[m], run.ReadErrs[m])
		}
		if !errors.Is(run.AppendErrs[m], eventstore.ErrCorrupt) {
			t.Errorf("meeting %s: a command on it returned %v (stored at %d), want ErrCorrupt", m, run.AppendErrs[m], run.Appended[m])
		}
	}
}

// damageWantLost checks the outcome the lost-history work brings: a
// command on each meeting in lost fails with an error of the store (not
// the rules'), and stores nothing; the other meetings work on.
func damageWantLost(t *testing.T, ds *damageStore, run damageRun, lost ...string) {
	t.Helper()
	if run.OpenErr != nil {
		t.Fatalf("opening the damaged store: %v", run.OpenErr)
	}
	isLost := map[string]bool{}
	for _, m := range lost {
		isLost[m] = true
	}
	for m, v := range ds.Meetings {
		err := run.AppendErrs[m]
		switch {
		case isLost[m] && err == nil:
			t.Errorf("meeting %s (version %d written, %d read: %v) lost history, and a command on it was stored at version %d", m, v, run.Versions[m], run.ReadErrs[m], run.Appended[m])
		case isLost[m] && !errors.Is(err, eventstore.ErrHistoryLost):
			t.Errorf("meeting %s (version %d written, %d read) lost history, and a command on it returned %v, want eventstore.ErrHistoryLost", m, v, run.Versions[m], err)
		case !isLost[m] && (err != nil || run.Appended[m] != v+1):
			t.Errorf("meeting %s lost nothing, but a command on it: %v (stored at version %d, want %d)", m, err, run.Appended[m], v+1)
		}
	}
}

// damageWantReported checks that verify ends in time and does not call
// the damaged log clean.
func damageWantReported(t *testing.T, dir string) {
	t.Helper()
	rep, err, hung := damageVerify(t, dir, damageVerifyLimit)
	switch {
	case hung:
		t.Errorf("verify still running after %v", damageVerifyLimit)
	case err == nil && rep.OK():
		t.Errorf("verify: ok, %d events: the loss went unreported", rep.Events)
	default:
		t.Logf("verify: %v; report %+v", err, rep)
	}
}

// TestDamage_onlyBlockLost: the stream's only block loses its first byte
// (flipped or zeroed), all its bytes, its whole length but 1 byte, or the
// file. nats-server recovers an empty stream: today verify says "ok: 0
// events" and the Engine serves version 0 and appends a new version 1.
func TestDamage_onlyBlockLost(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, blk string){
		"first byte flipped": func(t *testing.T, blk string) { damageFlipBit(t, blk, 0, 0) },
		"first byte zeroed":  func(t *testing.T, blk string) { damageZeroFirstByte(t, blk) },
		"zeroed":             func(t *testing.T, blk string) { damageZero(t, blk) },
		"cut to 1 byte":      func(t *testing.T, blk string) { damageTruncate(t, blk, 1) },
		"deleted":            func(t *testing.T, blk string) { damageRemove(t, blk) },
	} {
		t.Run(name, func(t *testing.T) {
			ds := newDamageStore(t, 10, "d0", "d1")
			blks := damageBlocks(t, ds.Dir, natsstore.DefaultStream)
			if len(blks) != 1 {
				t.Fatalf("%d blocks, want 1", len(blks))
			}
			damage(t, blks[0])
			damageWantReported(t, ds.Dir)
			damageWantLost(t, ds, damageEngine(t, ds), "d0", "d1")
		})
	}
}

// TestDamage_meetingLastEvent damages one meeting's last event (not the
// stream's last): nats-server drops it on recovery, and today the store
// answers "not found" for the meeting's last message: verify says ok, and
// the Engine serves the meeting as empty and stores a second version 1.
func TestDamage_meetingLastEvent(t *testing.T) {
	ds := newDamageStore(t, 10, "d0", "d1", "d2")
	ds.write(t, 2, "d0") // d1's last event is in the middle of the stream
	blk := damageBlocks(t, ds.Dir, natsstore.DefaultStream)[0]
	evs, recs := damageEvents(t, blk)
	var last damageRecord
	for _, r := range recs {
		if evs[r.Seq].MeetingID == "d1" {
			last = r
		}
	}
	damageFlipBit(t, blk, last.MsgOff+last.MsgLen/2, 3)
	damageWantReported(t, ds.Dir)
	damageWantLost(t, ds, damageEngine(t, ds), "d1")
}

// TestDamage_truncatedTail cuts 10 bytes off the stream's last block: its
// last event is gone. Today verify hangs (it waits for a last sequence
// that no longer exists) and the Engine serves the shorter meeting and
// appends on top.
func TestDamage_truncatedTail(t *testing.T) {
	ds := newDamageStore(t, 10, "d0", "d1")
	damageTruncateTail(t, ds.Dir, natsstore.DefaultStream, 10)
	damageWantReported(t, ds.Dir)
	damageWantLost(t, ds, damageEngine(t, ds), "d1") // d1 wrote last
}

// TestDamage_lastBlockLost loses the last block of a store of several
// (more than 8 MB of events: nats-server's block size) whole, or its
// second half. Today thousands of fsynced, acknowledged events are gone
// unnoticed: the Engine serves shorter meetings and appends.
func TestDamage_lastBlockLost(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, dir string){
		"deleted": func(t *testing.T, dir string) { damageDeleteLastBlock(t, dir, natsstore.DefaultStream) },
		"cut in half": func(t *testing.T, dir string) {
			blks := damageBlocks(t, dir, natsstore.DefaultStream)
			last := blks[len(blks)-1]
			damageTruncate(t, last, len(damageRead(t, last))/2)
		},
	} {
		t.Run(name, func(t *testing.T) {
			ds := newBigDamageStore(t, 9<<20, "b0", "b1", "b2")
			if n := len(damageBlocks(t, ds.Dir, natsstore.DefaultStream)); n < 2 {
				t.Fatalf("%d block(s), want several", n)
			}
			damage(t, ds.Dir)
			damageWantReported(t, ds.Dir)
			// Import appends meeting by meeting: the last block holds
			// b2's events only, and b0 and b1 lost nothing.
			damageWantLost(t, ds, damageEngine(t, ds), "b2")
		})
	}
}

// newBigDamageStore writes at least size bytes of legal events (carol's
// requests, each denied by alice with a long reason, under long keys)
// round the meetings, decided by an Engine on a memory store and imported
// into the embedded default's stream (meeting by meeting, in the order
// given), and stops it.
func newBigDamageStore(t *testing.T, size int, meetings ...string) *damageStore {
	t.Helper()
	ctx := context.Background()
	mem := eventstore.NewMemory()
	eng, err := stage.New(mem, stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	reason := strings.Repeat("r", aggregate.MaxReasonLen)
	key := strings.Repeat("k", aggregate.MaxCommandIDLen-12)
	ds := &damageStore{Dir: t.TempDir(), Meetings: map[string]uint64{}}
	for _, m := range meetings {
		eoSeed(t, eng, m)
	}
	for i, bytes := 0, 0; bytes < size; i++ {
		m := meetings[i%len(meetings)]
		req := aggregate.Command{Actor: "carol", Action: aggregate.RequestAccess{}}
		deny := aggregate.Command{Actor: "alice", Action: aggregate.DenyAccess{Users: []string{"carol"}, Reason: reason}}
		for j, c := range []aggregate.Command{req, deny} {
			if _, err := eng.Execute(ctx, m, c, stage.WithIdempotencyKey(fmt.Sprintf("%s%012d", key, 2*i+j))); err != nil {
				t.Fatal(err)
			}
		}
		bytes += 2*len(key) + len(reason) + 800
	}
	// Copied one event at a time without syncing each (an atomic batch
	// costs nats-server a store of its own): Shutdown flushes them all.
	srv, err := natsstore.StartServer(ds.Dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := natsstore.New(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := replay.Import(ctx, st, mem.ReadAll(ctx, 1))
	if err != nil {
		t.Fatal(err)
	}
	for e, err := range mem.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		ds.Meetings[e.MeetingID] = e.Version
	}
	ds.Events = n.Appended
	st.Close()
	nc.Close()
	srv.Shutdown()
	return ds
}

// TestDamage_forgedSnapshot stores a snapshot of a forged state (bob made
// a host) under the genuine version and hash of the meeting's last event.
// Today the Engine uses it: bob's grant is decided legal and stored. With
// a signing key configured, an unsigned (or wrongly signed) snapshot must
// not be used: bob's grant is refused.
func TestDamage_forgedSnapshot(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) { damageForgedSnapshot(t, signed) })
	}
}

// damageForgedSnapshot: without a key the forged snapshot decides (the
// threat, shown); with the deployment's key it is never used.
func damageForgedSnapshot(t *testing.T, signed bool) {
	ctx := context.Background()
	var opts []stage.Option
	if signed {
		priv, _ := signingKey(t)
		opts = append(opts, stage.WithSigningKey(priv))
	}
	dir := t.TempDir()
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	eoSeed(t, eng, "w")
	if _, err := eng.RequestAccess(ctx, "w", "carol"); err != nil {
		t.Fatal(err)
	}
	eng.Close()

	// The genuine state, folded from the log, with bob turned into a host.
	st, err := replay.State(ctx, replay.StoreSource(emb.Store), replay.Filter{MeetingID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	forged := damageForgeHost(t, data, "bob")
	if _, err := aggregate.UnmarshalState("w", forged); err != nil {
		t.Fatalf("the forgery does not decode: %v", err)
	}
	snap := eventstore.Snapshot{Version: st.Version(), Hash: st.LastHash(), Data: forged}
	if err := emb.Store.SaveSnapshot(ctx, "w", snap); err != nil {
		t.Fatal(err)
	}

	eng2, err := stage.New(emb.Store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	_, err = eng2.GrantAccess(ctx, "w", "bob", []string{"carol"})
	if !signed {
		if err != nil {
			t.Fatalf("without a key the forged snapshot was not used (%v): the test no longer shows the threat", err)
		}
		return
	}
	if !errors.Is(err, aggregate.ErrPermissionDenied) {
		t.Fatalf("viewer bob's grant with a forged snapshot in the store: %v, want ErrPermissionDenied", err)
	}
}

// damageRehash returns a copy of log (the events of an export, in stream
// order) edited by edit and sealed again: each meeting's versions
// renumbered 1, 2, 3 ... and its hash chain recomputed, stream sequences
// renumbered. Only a key can tell the result from a genuine log.
func damageRehash(t *testing.T, log []events.Envelope, edit func([]events.Envelope) []events.Envelope) []events.Envelope {
	t.Helper()
	out := edit(slices.Clone(log))
	type head struct {
		version uint64
		hash    events.Hash
	}
	heads := map[string]head{}
	for i := range out {
		e := &out[i]
		h := heads[e.MeetingID]
		e.Version, e.Seq = h.version+1, uint64(i+1)
		if err := e.Seal(h.hash); err != nil {
			t.Fatal(err)
		}
		heads[e.MeetingID] = head{e.Version, e.Hash}
	}
	return out
}

// TestDamage_rehashedForgeries edits an export and seals it again: a
// backend event making bob a host, a grant's actor swapped to the other
// host, an event deleted, every event back-dated, the tail cut. The chain
// has no key: verify cannot tell any of them from the genuine log, and
// says so by passing them. With signed checkpoints (and the public key),
// each must fail.
func TestDamage_rehashedForgeries(t *testing.T) {
	ctx := context.Background()
	mem := eventstore.NewMemory()
	eng := eoEngine(t, mem)
	if _, err := eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "hal", Permissions: eoHost}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "dave", Permissions: eoViewer}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []aggregate.Command{
		{Actor: "bob", Action: aggregate.RequestAccess{}},
		{Actor: "alice", Action: aggregate.GrantAccess{Users: []string{"bob"}}},
		{Actor: "bob", Action: aggregate.Join{}},
		{Actor: "carol", Action: aggregate.RequestAccess{}},
		{Actor: "carol", Action: aggregate.CancelRequestAccess{}},
		{Actor: "bob", Action: aggregate.Leave{}},
	} {
		if _, err := eng.Execute(ctx, "w", c); err != nil {
			t.Fatal(err)
		}
	}
	var log []events.Envelope
	for e, err := range mem.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	find := func(evs []events.Envelope, typ events.Type) int {
		i := slices.IndexFunc(evs, func(e events.Envelope) bool { return e.Type == typ })
		if i < 0 {
			t.Fatalf("no %s in the log", typ)
		}
		return i
	}
	forgeries := map[string]func([]events.Envelope) []events.Envelope{
		"bob made a host by a backend event": func(evs []events.Envelope) []events.Envelope {
			e := evs[len(evs)-1]
			e.ID[0]++
			e.Type, e.Actor, e.CommandID = events.TypePermissionsChanged, "", "forged"
			e.Payload = &events.PermissionsChanged{UserID: "bob", Permissions: eoHost, Status: "OffStage"}
			return append(evs, e)
		},
		"a grant's actor swapped to the other host": func(evs []events.Envelope) []events.Envelope {
			evs[find(evs, events.TypeAccessGranted)].Actor = "hal"
			return evs
		},
		"an event deleted": func(evs []events.Envelope) []events.Envelope {
			i := slices.IndexFunc(evs, func(e events.Envelope) bool {
				p, ok := e.Payload.(*events.ParticipantJoined)
				return ok && p.UserID == "dave"
			})
			return slices.Delete(evs, i, i+1)
		},
		"every event back-dated": func(evs []events.Envelope) []events.Envelope {
			for i := range evs {
				evs[i].Time = evs[i].Time.Add(-151 * time.Hour)
			}
			return evs
		},
		"the tail cut": func(evs []events.Envelope) []events.Envelope { return evs[:len(evs)-3] },
	}
	verify := func(evs []events.Envelope) *replay.Report {
		rep, err := replay.Verify(ctx, func(yield func(events.Envelope, error) bool) {
			for _, e := range evs {
				if !yield(e, nil) {
					return
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(log); !rep.OK() {
		t.Fatalf("the genuine log: %v", rep.Findings)
	}
	// The deployment's checkpoint of the genuine head, as an Engine with
	// WithCheckpoints writes on Close.
	priv, pub := signingKey(t)
	head := log[len(log)-1]
	cp, err := checkpoint.Sign(priv, checkpoint.Checkpoint{MeetingID: head.MeetingID, Version: head.Version, Hash: head.Hash, Time: head.Time})
	if err != nil {
		t.Fatal(err)
	}
	cps := []checkpoint.Signed{cp}
	for name, edit := range forgeries {
		t.Run(name, func(t *testing.T) {
			forged := damageRehash(t, log, edit)
			if len(forged) == len(log) && forged[len(forged)-1].Hash == log[len(log)-1].Hash {
				t.Fatal("the forgery changed nothing")
			}
			if rep := verify(forged); !rep.OK() {
				t.Fatalf("verify without a key found %v: the forgery is not a clean one", rep.Findings)
			}
			// With the deployment's checkpoint of the genuine head, the
			// forgery fails, or (an event appended after the checkpoint)
			// is reported as not proven.
			rep, err := replay.Verify(ctx, func(yield func(events.Envelope, error) bool) {
				for _, e := range forged {
					if !yield(e, nil) {
						return
					}
				}
			}, replay.WithCheckpoints(pub, cps))
			if err != nil {
				t.Fatal(err)
			}
			_, unproven := rep.Proof.ProvenEvents()
			switch {
			case slices.Contains(rep.Kinds(), replay.CheckpointFailed):
			case rep.OK() && unproven > 0 && len(forged) > len(log):
				t.Logf("appended after the checkpoint: %d events not proven", unproven)
			default:
				t.Fatalf("with the key: findings %v, %d events not proven: the forgery passed", rep.Findings, unproven)
			}
		})
	}
}
