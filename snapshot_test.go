package stage_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// countingStore counts the events its reads yield.
type countingStore struct {
	*eventstore.Memory
	loaded atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, meetingID string, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for e, err := range c.Memory.Load(ctx, meetingID, from) {
			c.loaded.Add(1)
			if !yield(e, err) {
				return
			}
		}
	}
}

// busyMeeting runs commands on meeting until it has at least n events: a
// host and viewers who request, are granted, join and leave.
func busyMeeting(t *testing.T, eng *stage.Engine, meeting string, n int) uint64 {
	t.Helper()
	ctx := t.Context()
	host := aggregate.Participant{UserID: "h", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
	if _, err := eng.AddParticipant(ctx, meeting, host); err != nil {
		t.Fatal(err)
	}
	var last stage.Result
	for i := 0; last.Version < uint64(n); i++ {
		v := fmt.Sprint("v", i%7)
		cmds := []aggregate.Command{
			{Actor: v, Action: aggregate.RequestAccess{}},
			{Actor: "h", Action: aggregate.GrantAccess{Users: []string{v}}},
			{Actor: v, Action: aggregate.Join{}},
			{Actor: v, Action: aggregate.Leave{}},
		}
		if i < 7 {
			cmds = append([]aggregate.Command{{Action: aggregate.AddParticipant{Participant: aggregate.Participant{
				UserID: v, Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}}}}, cmds...)
		}
		for _, c := range cmds {
			r, err := eng.Execute(ctx, meeting, c)
			if err != nil {
				t.Fatalf("%s by %s: %v", c.Action.Name(), c.Actor, err)
			}
			last = r
		}
	}
	return last.Version
}

// folded is the meeting's state folded from its first event.
func folded(t *testing.T, s eventstore.Store, meeting string) *aggregate.State {
	t.Helper()
	st := aggregate.NewState(meeting)
	for e, err := range s.Load(t.Context(), meeting, 1) {
		if err != nil {
			t.Fatal(err)
		}
		aggregate.Evolve(st, &e)
	}
	return st
}

// coldState loads the meeting in a fresh engine on s and returns its state.
func coldState(t *testing.T, s eventstore.Store, meeting string, opts ...stage.Option) *aggregate.State {
	t.Helper()
	eng, err := stage.New(s, append([]stage.Option{stage.WithAutoTick(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.Roster(t.Context(), meeting); err != nil {
		t.Fatal(err)
	}
	return eng.CachedStateForTest(meeting)
}

func TestEngine_SnapshotColdLoad(t *testing.T) {
	mem := eventstore.NewMemory()
	eng, err := stage.New(mem, stage.WithAutoTick(false), stage.WithSnapshotEvery(100))
	if err != nil {
		t.Fatal(err)
	}
	last := busyMeeting(t, eng, "m", 1000)
	eng.Close() // waits for the snapshot writes
	snap, found, err := mem.LoadSnapshot(t.Context(), "m")
	if err != nil || !found {
		t.Fatalf("no snapshot: %v", err)
	}
	// Within two intervals of the head: a write still in flight when
	// Close began is the last one (Close starts no new write).
	if snap.Version+200 <= last || snap.Version > last {
		t.Fatalf("latest snapshot at version %d, the meeting at %d, snapshots every 100", snap.Version, last)
	}

	want := folded(t, mem, "m")
	cs := &countingStore{Memory: mem}
	got := coldState(t, cs, "m")
	if !got.Equal(want) {
		t.Fatal("the state loaded from the snapshot differs from the folded one")
	}
	if n := cs.loaded.Load(); n != int64(last-snap.Version+1) {
		t.Fatalf("the cold load read %d events; from the snapshot at %d to %d it needs %d", n, snap.Version, last, last-snap.Version+1)
	}

	// With snapshots off, the whole log is read.
	cs.loaded.Store(0)
	if got := coldState(t, cs, "m", stage.WithSnapshotEvery(0)); !got.Equal(want) {
		t.Fatal("the folded state differs")
	}
	if n := cs.loaded.Load(); n != int64(last) {
		t.Fatalf("with snapshots off, the cold load read %d events, want %d", n, last)
	}
}

func TestEngine_SnapshotWrittenAfterColdFold(t *testing.T) {
	mem := eventstore.NewMemory()
	eng, _ := stage.New(mem, stage.WithAutoTick(false), stage.WithSnapshotEvery(0))
	last := busyMeeting(t, eng, "m", 300)
	eng.Close()
	if _, found, _ := mem.LoadSnapshot(t.Context(), "m"); found {
		t.Fatal("a snapshot was written with snapshots off")
	}
	// A read that folds more than snapshotEvery events writes one.
	coldState(t, mem, "m", stage.WithSnapshotEvery(100))
	snap, found, err := mem.LoadSnapshot(t.Context(), "m")
	if err != nil || !found || snap.Version != last {
		t.Fatalf("after a cold fold: snapshot found %v at version %d (%v), want version %d", found, snap.Version, err, last)
	}
}

func TestEngine_SnapshotNotTrusted(t *testing.T) {
	mem := eventstore.NewMemory()
	eng, _ := stage.New(mem, stage.WithAutoTick(false), stage.WithSnapshotEvery(0))
	last := busyMeeting(t, eng, "m", 200)
	eng.Close()
	want := folded(t, mem, "m")

	// A fork of the meeting: the same commands at other times, so other hashes.
	fork := eventstore.NewMemory()
	feng, _ := stage.New(fork, stage.WithAutoTick(false), stage.WithSnapshotEvery(50))
	busyMeeting(t, feng, "m", 200)
	feng.Close()
	forked, found, _ := fork.LoadSnapshot(t.Context(), "m")
	if !found {
		t.Fatal("the fork has no snapshot")
	}

	mid := aggregate.NewState("m")
	var midSeq uint64
	for e, err := range mem.Load(t.Context(), "m", 1) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version > 100 {
			break
		}
		aggregate.Evolve(mid, &e)
		midSeq = e.Seq
	}
	good, _ := mid.MarshalBinary()
	ahead := want.Clone()
	aheadData, _ := ahead.MarshalBinary()
	other := aggregate.NewState("n")
	otherData, _ := other.MarshalBinary()

	for name, snap := range map[string]eventstore.Snapshot{
		"forked history":      forked,
		"wrong hash":          {Version: 100, Hash: events.Hash(sha256.Sum256([]byte("x"))), Seq: midSeq, Data: good},
		"beyond the log":      {Version: last + 5, Hash: want.LastHash(), Data: aheadData},
		"undecodable":         {Version: 100, Hash: mid.LastHash(), Seq: midSeq, Data: []byte("garbage")},
		"state of a version":  {Version: 100, Hash: mid.LastHash(), Seq: midSeq, Data: aheadData},
		"other meeting":       {Version: 100, Hash: mid.LastHash(), Seq: midSeq, Data: otherData},
		"truncated":           {Version: 100, Hash: mid.LastHash(), Seq: midSeq, Data: good[:len(good)-3]},
		"wrong position only": {Version: 100, Hash: mid.LastHash(), Seq: 7, Data: good},
	} {
		t.Run(name, func(t *testing.T) {
			s := &snapStore{countingStore: &countingStore{Memory: mem}, snap: snap}
			got := coldState(t, s, "m")
			if !got.Equal(want) {
				t.Fatal("the loaded state differs from the folded one")
			}
			// Only the valid snapshot (Memory ignores positions) saves reads;
			// the others were read (up to their own version), then
			// discarded, and the log was folded from version 1.
			full := s.loaded.Load() >= int64(want.Version())
			if valid := name == "wrong position only"; full == valid {
				t.Fatalf("read %d events of %d: the snapshot was used %v, valid %v", s.loaded.Load(), want.Version(), !full, valid)
			}
			// The engine goes on from there: a command appends to the true chain.
			eng, _ := stage.New(s, stage.WithAutoTick(false))
			defer eng.Close()
			defer func() { want = folded(t, mem, "m") }()
			if _, err := eng.Join(t.Context(), "m", "h"); err != nil {
				t.Fatal(err)
			}
			if got := folded(t, mem, "m"); got.Version() != want.Version()+1 {
				t.Fatalf("version %d after one command on version %d", got.Version(), want.Version())
			}
			if _, err := eng.Leave(t.Context(), "m", "h"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// snapStore serves one fixed snapshot and drops writes.
type snapStore struct {
	*countingStore
	snap eventstore.Snapshot
}

func (s *snapStore) LoadSnapshot(context.Context, string) (eventstore.Snapshot, bool, error) {
	return s.snap, true, nil
}

func (s *snapStore) SaveSnapshot(context.Context, string, eventstore.Snapshot) error { return nil }
