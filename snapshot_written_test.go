package stage_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// smallMsgStore is a JetStream store on an embedded server whose stream
// takes messages of at most 64 KiB, so that a meeting of a few thousand
// participants has a snapshot too large for one message, even compressed.
func smallMsgStore(t *testing.T) (*natsstore.Store, jetstream.JetStream) {
	t.Helper()
	srv, err := natsstore.StartServer(t.TempDir(), natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc := jsConnect(t, srv)
	first, err := natsstore.New(jsCtx(t), nc)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(jsCtx(t), natsstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 64 << 10
	if _, err := js.UpdateStream(jsCtx(t), cfg); err != nil {
		t.Fatal(err)
	}
	s, err := natsstore.New(jsCtx(t), nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, js
}

// crowd appends a meeting of a host and n-1 participants with random ids
// (a state that compresses poorly) straight to the store, and returns its
// version.
func crowd(t *testing.T, s eventstore.Store, meeting string, n int) uint64 {
	t.Helper()
	st := aggregate.NewState(meeting)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var batch []events.Envelope
	flush := func() {
		if _, err := s.Append(jsCtx(t), meeting, st.Version()-uint64(len(batch)), batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		p := aggregate.Participant{UserID: uuid.NewString(), Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}
		if i == 0 {
			p = aggregate.Participant{UserID: "h", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
		}
		at = at.Add(time.Millisecond)
		d, err := aggregate.Decide(st, aggregate.Command{ID: uuid.NewString(), Action: aggregate.AddParticipant{Participant: p}}, at)
		if err != nil {
			t.Fatal(err)
		}
		for i := range d.Events {
			e := &d.Events[i]
			e.ID = uuid.Must(uuid.NewV7())
			if err := e.Seal(st.LastHash()); err != nil {
				t.Fatal(err)
			}
			aggregate.Evolve(st, e)
			batch = append(batch, *e)
		}
		if len(batch) >= 200 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return st.Version()
}

// waitSnapshot waits until the store holds the meeting's snapshot at
// version want.
func waitSnapshot(t *testing.T, s *natsstore.Store, meeting string, want uint64) eventstore.Snapshot {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		snap, found, err := s.LoadSnapshot(jsCtx(t), meeting)
		if err != nil {
			t.Fatal(err)
		}
		if found && snap.Version == want {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of %s at version %d (found %v at %d)", meeting, want, found, snap.Version)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noSnapshot checks that the store holds no snapshot of the meeting.
func noSnapshot(t *testing.T, s *natsstore.Store, meeting string) {
	t.Helper()
	if snap, found, err := s.LoadSnapshot(jsCtx(t), meeting); err != nil || found {
		t.Fatalf("snapshot of %s: found %v at version %d, %v; want none", meeting, found, snap.Version, err)
	}
}

// coldFromHead checks that a fresh engine loads the meeting from a
// snapshot at its head: it reads one event from the log (the snapshot's),
// and reaches the state a fold gives.
func coldFromHead(t *testing.T, s *natsstore.Store, meeting string, opts ...stage.Option) {
	t.Helper()
	c := &countingNATS{Store: s}
	got := coldState(t, c, meeting, opts...)
	if !got.Equal(folded(t, s, meeting)) {
		t.Fatal("the state loaded from the snapshot differs from the folded one")
	}
	if n := c.loaded.Load(); n != 1 {
		t.Fatalf("the cold load read %d events, want 1 (the snapshot's)", n)
	}
}

// neverEvery keeps the periodic snapshots out of these tests: what they see
// is written on eviction, on Close or when idle.
const neverEvery = 1 << 30

// TestEngine_SnapshotOnEvict: a meeting that leaves the cache gets a
// snapshot at its head (too large for one message, signed); a short one
// does not.
func TestEngine_SnapshotOnEvict(t *testing.T) {
	s, js := smallMsgStore(t)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	big := crowd(t, s, "big", 5000)
	crowd(t, s, "short", 20)
	eng, err := stage.New(s, stage.WithAutoTick(false), stage.WithCacheSize(1), stage.WithSnapshotEvery(neverEvery),
		stage.WithSnapshotIdle(0), stage.WithSigningKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := jsCtx(t)
	if _, err := eng.Status(ctx, "short", "h"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Status(ctx, "big", "h"); err != nil { // evicts short
		t.Fatal(err)
	}
	if _, err := eng.Status(ctx, "other", "h"); err == nil { // evicts big
		t.Fatal("Status in an empty meeting succeeded")
	}
	waitSnapshot(t, s, "big", big)
	noSnapshot(t, s, "short")
	obs, err := js.ObjectStore(ctx, natsstore.SnapshotObjectBucket(natsstore.DefaultStream))
	if err != nil {
		t.Fatalf("the snapshot of %d participants is not in the object bucket: %v", 5000, err)
	}
	if list, err := obs.List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("objects: %d, %v; want one", len(list), err)
	}
	coldFromHead(t, s, "big", stage.WithSigningKey(key))
}

// TestEngine_SnapshotOnClose: Close snapshots the cached meetings past
// their latest snapshot by SnapshotPastMin or more, and only those.
func TestEngine_SnapshotOnClose(t *testing.T) {
	s, _ := smallMsgStore(t)
	big := crowd(t, s, "big", 3000)
	crowd(t, s, "short", 20)
	eng, err := stage.New(s, stage.WithAutoTick(false), stage.WithSnapshotEvery(neverEvery), stage.WithSnapshotIdle(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"big", "short"} {
		if _, err := eng.Status(jsCtx(t), m, "h"); err != nil {
			t.Fatal(err)
		}
	}
	noSnapshot(t, s, "big")
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if snap, found, err := s.LoadSnapshot(jsCtx(t), "big"); err != nil || !found || snap.Version != big {
		t.Fatalf("after Close: snapshot found %v at version %d, %v; want version %d", found, snap.Version, err, big)
	}
	noSnapshot(t, s, "short")
	coldFromHead(t, s, "big")
}

// TestEngine_SnapshotOnIdle: a cached meeting nobody uses for the idle
// period gets a snapshot, without eviction or Close; one in use does not
// until it goes idle.
func TestEngine_SnapshotOnIdle(t *testing.T) {
	s, _ := smallMsgStore(t)
	crowd(t, s, "big", 2000)
	const idle = 300 * time.Millisecond
	eng, err := stage.New(s, stage.WithAutoTick(false), stage.WithSnapshotEvery(neverEvery), stage.WithSnapshotIdle(idle))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := jsCtx(t)
	// In use (a read every 50ms): no snapshot yet. A machine so slow that
	// the meeting sat unused for half the period proves nothing: stop
	// checking then.
	used := time.Now()
	for range 3 {
		if time.Since(used) > idle/2 {
			break
		}
		if _, err := eng.Status(ctx, "big", "h"); err != nil {
			t.Fatal(err)
		}
		used = time.Now()
		if snap, found, err := s.LoadSnapshot(ctx, "big"); err != nil || found && time.Since(used) < idle/2 {
			t.Fatalf("snapshot found %v at version %d (%v) of a meeting in use", found, snap.Version, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r, err := eng.AddParticipant(ctx, "big", aggregate.Participant{UserID: "late", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, s, "big", r.Version)
	coldFromHead(t, s, "big")
}

// TestEngine_SnapshotUnreadableFolds: a snapshot whose object lost a chunk
// is refused by the store, and the engine folds the log instead.
func TestEngine_SnapshotUnreadableFolds(t *testing.T) {
	s, js := smallMsgStore(t)
	big := crowd(t, s, "big", 5000)
	eng, err := stage.New(s, stage.WithAutoTick(false), stage.WithSnapshotEvery(neverEvery), stage.WithSnapshotIdle(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Status(jsCtx(t), "big", "h"); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	waitSnapshot(t, s, "big", big)
	bucket := natsstore.SnapshotObjectBucket(natsstore.DefaultStream)
	raw, err := js.Stream(jsCtx(t), "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := raw.Info(jsCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The stream holds the chunks, then the object's metadata: drop the
	// first chunk.
	if err := raw.DeleteMsg(jsCtx(t), info.State.FirstSeq); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadSnapshot(jsCtx(t), "big"); err == nil {
		t.Fatal("LoadSnapshot served a snapshot with a chunk missing")
	}
	c := &countingNATS{Store: s}
	got := coldState(t, c, "big", stage.WithSnapshotIdle(0))
	if got.Version() != big || c.loaded.Load() != int64(big) {
		t.Fatalf("cold load: version %d after %d events read; want the fold of all %d", got.Version(), c.loaded.Load(), big)
	}
}

// TestWithSnapshotIdle_Validates: a negative period is refused; zero turns
// idle snapshots off.
func TestWithSnapshotIdle_Validates(t *testing.T) {
	if _, err := stage.New(eventstore.NewMemory(), stage.WithSnapshotIdle(-time.Second)); err == nil {
		t.Fatal("WithSnapshotIdle(-1s) accepted")
	}
	eng, err := stage.New(eventstore.NewMemory(), stage.WithSnapshotIdle(0))
	if err != nil {
		t.Fatal(err)
	}
	eng.Close()
}

// TestEngine_SnapshotOnFirstWriteAfterFold: an Engine that folded a meeting
// of SnapshotPastMin events or more snapshots it on its first write, so
// that when this Engine dies without evicting, closing or idling (a
// crash: it is never closed here, and neither the idle sweep nor the
// periodic snapshots run), the next one loads from the head. A read alone
// writes nothing, nor does a write after a load that folded little.
func TestEngine_SnapshotOnFirstWriteAfterFold(t *testing.T) {
	s, _ := smallMsgStore(t)
	crowd(t, s, "long", stage.SnapshotPastMin+50)
	crowd(t, s, "short", stage.SnapshotPastMin/2)
	eng, err := stage.New(s, stage.WithAutoTick(false), stage.WithSnapshotEvery(neverEvery), stage.WithSnapshotIdle(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ctx := jsCtx(t)
	if _, err := eng.Status(ctx, "long", "h"); err != nil {
		t.Fatal(err)
	}
	late := aggregate.Participant{UserID: "late", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}
	if _, err := eng.AddParticipant(ctx, "short", late); err != nil {
		t.Fatal(err)
	}
	r, err := eng.AddParticipant(ctx, "long", late)
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, s, "long", r.Version)
	noSnapshot(t, s, "short")
	coldFromHead(t, s, "long")
	// Once: the next write does not snapshot again.
	if _, err := eng.RequestAccess(ctx, "long", "late"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if snap, _, err := s.LoadSnapshot(ctx, "long"); err != nil || snap.Version != r.Version {
		t.Fatalf("snapshot at version %d (%v), want still %d", snap.Version, err, r.Version)
	}
}
