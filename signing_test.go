package stage_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

func signingKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// forgeSnapshot replaces the meeting's snapshot with a state in which
// mallory is a host, under the genuine version and hash of the log's
// last event: the forgery a reader that only checks the log's event at the
// snapshot's version cannot see.
func forgeSnapshot(t *testing.T, mem *eventstore.Memory, meeting string) {
	t.Helper()
	var log []events.Envelope
	for e, err := range mem.Load(t.Context(), meeting, 1) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	last := log[len(log)-1]
	s := aggregate.NewState(meeting)
	for i := range log[:len(log)-1] {
		aggregate.Evolve(s, &log[i])
	}
	fake := last
	fake.Type, fake.Payload = events.TypePermissionsChanged, &events.PermissionsChanged{UserID: "mallory",
		Permissions: events.Permissions{StageAccess: events.Allowed, AcceptStageRequests: true}}
	aggregate.Evolve(s, &fake)
	if s.Version() != last.Version || s.LastHash() != last.Hash {
		t.Fatalf("forged state at %d/%s, want the log's head %d/%s", s.Version(), s.LastHash(), last.Version, last.Hash)
	}
	data, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.SaveSnapshot(t.Context(), meeting, eventstore.Snapshot{Version: last.Version, Hash: last.Hash, Seq: last.Seq, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// forgedGrant builds a meeting in which mallory is a viewer, forges its
// snapshot, and has mallory grant w on an engine with opts.
func forgedGrant(t *testing.T, opts ...stage.Option) error {
	mem := eventstore.NewMemory()
	ctx := t.Context()
	eng, err := stage.New(mem, append([]stage.Option{stage.WithAutoTick(false), stage.WithSnapshotEvery(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []aggregate.Participant{
		{UserID: "h", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}},
		{UserID: "mallory", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}},
		{UserID: "w", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}},
	} {
		if _, err := eng.AddParticipant(ctx, "m", p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.RequestAccess(ctx, "m", "w"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	forgeSnapshot(t, mem, "m")
	eng2, err := stage.New(mem, append([]stage.Option{stage.WithAutoTick(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	_, err = eng2.GrantAccess(ctx, "m", "mallory", []string{"w"})
	return err
}

func TestSigningKey_forgedSnapshotNotUsed(t *testing.T) {
	// Without a key, the forged state decides: the danger the key removes.
	if err := forgedGrant(t); err != nil {
		t.Fatalf("without a key the forged snapshot was not used (%v): this test no longer shows the threat", err)
	}
	priv, _ := signingKey(t)
	err := forgedGrant(t, stage.WithSigningKey(priv))
	if !errors.Is(err, aggregate.ErrPermissionDenied) {
		t.Fatalf("with a signing key, mallory's grant on a forged snapshot = %v, want ErrPermissionDenied", err)
	}
}

func TestSigningKey_signedSnapshotUsed(t *testing.T) {
	priv, _ := signingKey(t)
	mem := eventstore.NewMemory()
	eng, err := stage.New(mem, stage.WithAutoTick(false), stage.WithSnapshotEvery(100), stage.WithSigningKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	last := busyMeeting(t, eng, "m", 300)
	eng.Close()
	snap, ok, err := mem.LoadSnapshot(t.Context(), "m")
	if err != nil || !ok || snap.Version < 200 {
		t.Fatalf("snapshot %v %v %v", snap.Version, ok, err)
	}
	counting := &countingStore{Memory: mem}
	s := coldState(t, counting, "m", stage.WithSigningKey(priv))
	if s.Version() != last {
		t.Fatalf("cold state at version %d, want %d", s.Version(), last)
	}
	if n := counting.loaded.Load(); n > int64(last-snap.Version)+1 {
		t.Errorf("loaded %d events: the signed snapshot was not used", n)
	}
	// Another key's engine does not trust it (and folds the log).
	other, _ := signingKey(t)
	counting.loaded.Store(0)
	if s := coldState(t, counting, "m", stage.WithSigningKey(other)); s.Version() != last {
		t.Fatalf("other key: version %d, want %d", s.Version(), last)
	}
	if n := counting.loaded.Load(); n != int64(last) {
		t.Errorf("other key: loaded %d events, want the whole log (%d)", n, last)
	}
	// An engine without a key reads a signed snapshot (it cannot check it).
	counting.loaded.Store(0)
	if s := coldState(t, counting, "m"); s.Version() != last {
		t.Fatalf("no key: version %d, want %d", s.Version(), last)
	}
	if n := counting.loaded.Load(); n > int64(last-snap.Version)+1 {
		t.Errorf("no key: loaded %d events: the snapshot was not used", n)
	}
}

func TestCheckpoints_writtenOnCloseAndInterval(t *testing.T) {
	priv, pub := signingKey(t)
	path := filepath.Join(t.TempDir(), "cp.jsonl")
	f, err := checkpoint.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem := eventstore.NewMemory()
	eng, err := stage.New(mem, stage.WithAutoTick(false), stage.WithSigningKey(priv), stage.WithCheckpoints(20*time.Millisecond, f))
	if err != nil {
		t.Fatal(err)
	}
	va := busyMeeting(t, eng, "a", 10)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cps, _ := checkpoint.ReadFile(path)
		if len(cps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint written within 10s at a 20ms interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	vb := busyMeeting(t, eng, "b", 7)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	cps, err := checkpoint.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]checkpoint.Signed{}
	for _, c := range cps {
		if err := c.Verify(pub); err != nil {
			t.Fatal(err)
		}
		if c.Version > latest[c.MeetingID].Version {
			latest[c.MeetingID] = c
		}
	}
	for m, v := range map[string]uint64{"a": va, "b": vb} {
		c := latest[m]
		if c.Version != v {
			t.Fatalf("meeting %s: latest checkpoint at version %d, want %d (on Close)", m, c.Version, v)
		}
		var head events.Envelope
		for e, err := range mem.Load(t.Context(), m, v) {
			if err != nil {
				t.Fatal(err)
			}
			head = e
		}
		if head.Hash != c.Hash {
			t.Errorf("meeting %s: checkpoint names hash %s, the log's head is %s", m, c.Hash, head.Hash)
		}
	}
}

// failingSink fails its first writes.
type failingSink struct {
	mu    sync.Mutex
	fails int
	got   []checkpoint.Signed
}

func (s *failingSink) WriteCheckpoints(_ context.Context, cps []checkpoint.Signed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails > 0 {
		s.fails--
		return errors.New("disk full")
	}
	s.got = append(s.got, cps...)
	return nil
}

func TestCheckpoints_failedWriteKeptAndReported(t *testing.T) {
	priv, _ := signingKey(t)
	sink := &failingSink{fails: 1}
	eng, err := stage.New(eventstore.NewMemory(), stage.WithAutoTick(false), stage.WithSigningKey(priv), stage.WithCheckpoints(time.Hour, sink))
	if err != nil {
		t.Fatal(err)
	}
	busyMeeting(t, eng, "a", 5)
	if err := eng.Close(); err == nil {
		t.Fatal("Close returned nil after its checkpoint write failed")
	}
	if len(sink.got) != 0 {
		t.Fatalf("%d checkpoints written by a failing sink", len(sink.got))
	}

	sink = &failingSink{}
	eng, _ = stage.New(eventstore.NewMemory(), stage.WithAutoTick(false), stage.WithSigningKey(priv), stage.WithCheckpoints(time.Hour, sink))
	busyMeeting(t, eng, "a", 5)
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if len(sink.got) != 1 {
		t.Fatalf("%d checkpoints on Close, want 1", len(sink.got))
	}
}

func TestCheckpoints_options(t *testing.T) {
	priv, _ := signingKey(t)
	f := &failingSink{}
	for name, opts := range map[string][]stage.Option{
		"no key":       {stage.WithCheckpoints(time.Second, f)},
		"no sink":      {stage.WithSigningKey(priv), stage.WithCheckpoints(time.Second)},
		"nil sink":     {stage.WithSigningKey(priv), stage.WithCheckpoints(time.Second, nil)},
		"interval 0":   {stage.WithSigningKey(priv), stage.WithCheckpoints(0, f)},
		"a public key": {stage.WithSigningKey(ed25519.PrivateKey(priv.Public().(ed25519.PublicKey)))},
	} {
		if _, err := stage.New(eventstore.NewMemory(), opts...); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// shortStore hides a meeting's events after version keep, as a store whose
// disk lost its tail would.
type shortStore struct {
	*eventstore.Memory
	keep uint64
}

func (s *shortStore) Load(ctx context.Context, meetingID string, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for e, err := range s.Memory.Load(ctx, meetingID, from) {
			if err == nil && e.Version > s.keep {
				return
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// A snapshot that covers versions the log no longer holds is evidence of
// lost history: commands are refused with ErrHistoryLost, reads serve what
// remains.
func TestSnapshotPastTheEnd(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) {
			priv, _ := signingKey(t)
			var opts []stage.Option
			if signed {
				opts = append(opts, stage.WithSigningKey(priv))
			}
			mem := eventstore.NewMemory()
			eng, err := stage.New(mem, append([]stage.Option{stage.WithAutoTick(false), stage.WithSnapshotEvery(50)}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			last := busyMeeting(t, eng, "m", 120)
			eng.Close()
			snap, ok, _ := mem.LoadSnapshot(t.Context(), "m")
			if !ok || snap.Version < 20 {
				t.Fatalf("snapshot at %d", snap.Version)
			}
			short := &shortStore{Memory: mem, keep: snap.Version - 10}
			eng, err = stage.New(short, append([]stage.Option{stage.WithAutoTick(false)}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			r, err := eng.Roster(t.Context(), "m")
			if err != nil || r.Version != short.keep {
				t.Fatalf("roster of what remains: version %d, %v; want %d", r.Version, err, short.keep)
			}
			_, err = eng.RequestAccess(t.Context(), "m", "v1")
			var lost *eventstore.HistoryLostError
			if !errors.Is(err, eventstore.ErrHistoryLost) || !errors.As(err, &lost) {
				t.Fatalf("a command on a meeting whose snapshot is past the log's end: %v, want ErrHistoryLost", err)
			}
			if lost.SeenVersion != snap.Version || lost.HaveVersion != short.keep {
				t.Errorf("lost: seen %d have %d, want %d and %d (log had %d)", lost.SeenVersion, lost.HaveVersion, snap.Version, short.keep, last)
			}
		})
	}
}
