package natsstore_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// noise returns n incompressible bytes drawn from seed.
func noise(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// bigSnapshot is a snapshot whose Hash is the SHA-256 of its Data and
// whose Seq is its Version: a loaded one that mixes two cannot pass.
func bigSnapshot(version uint64, data []byte) eventstore.Snapshot {
	return eventstore.Snapshot{Version: version, Seq: version, Hash: events.Hash(sha256.Sum256(data)), Data: data}
}

func checkWhole(t *testing.T, got eventstore.Snapshot) {
	t.Helper()
	if events.Hash(sha256.Sum256(got.Data)) != got.Hash || got.Seq != got.Version {
		t.Fatalf("loaded a mixed snapshot: version %d seq %d, %d bytes that do not hash to its hash", got.Version, got.Seq, len(got.Data))
	}
}

// objects lists the names of the live objects of the stream's large
// snapshot bucket.
func objects(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	obs, err := js.ObjectStore(ctx(t), natsstore.SnapshotObjectBucket(stream))
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(ctx(t))
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
	}
	return names
}

// TestStore_SnapshotTooLargeForOneMessage: a state several times the
// server's max payload, incompressible, round-trips through the object
// bucket; replacing it deletes the old object; a compressible state of the
// same size fits in the key, compressed.
func TestStore_SnapshotTooLargeForOneMessage(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	opts := uniqueStream()
	s := newStore(t, nc, opts...)
	stream := fmt.Sprintf("T%d", streamN.Load())
	size := 3*int(nc.MaxPayload()) + 5
	first := bigSnapshot(100, noise(1, size))
	if err := s.SaveSnapshot(ctx(t), "m-big", first); err != nil {
		t.Fatal(err)
	}
	r := newStore(t, nc, opts...)
	got, found, err := r.LoadSnapshot(ctx(t), "m-big")
	if err != nil || !found || !bytes.Equal(got.Data, first.Data) || got.Version != 100 || got.Hash != first.Hash {
		t.Fatalf("LoadSnapshot: found %v, %v, version %d, %d bytes", found, err, got.Version, len(got.Data))
	}
	if names := objects(t, js, stream); len(names) != 1 {
		t.Fatalf("objects %v, want one", names)
	}
	second := bigSnapshot(200, noise(2, size+1000))
	if err := s.SaveSnapshot(ctx(t), "m-big", second); err != nil {
		t.Fatal(err)
	}
	if got, _, err := r.LoadSnapshot(ctx(t), "m-big"); err != nil || !bytes.Equal(got.Data, second.Data) {
		t.Fatalf("LoadSnapshot after a replacement: %v, %d bytes", err, len(got.Data))
	}
	names := objects(t, js, stream)
	if len(names) != 1 {
		t.Fatalf("objects %v, want the new one only", names)
	}
	compressible := bigSnapshot(300, bytes.Repeat([]byte("participant-00042 allowed "), size/20))
	if err := s.SaveSnapshot(ctx(t), "m-big", compressible); err != nil {
		t.Fatal(err)
	}
	if got, _, err := r.LoadSnapshot(ctx(t), "m-big"); err != nil || !bytes.Equal(got.Data, compressible.Data) {
		t.Fatalf("LoadSnapshot of a compressible state: %v, %d bytes", err, len(got.Data))
	}
	if names := objects(t, js, stream); len(names) != 0 {
		t.Fatalf("objects %v after a snapshot that fits in its key", names)
	}
	kv, err := js.KeyValue(ctx(t), natsstore.SnapshotBucket(stream))
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx(t), "m-big")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Value()) >= len(compressible.Data)/10 {
		t.Fatalf("stored %d bytes for a state of %d that compresses well", len(e.Value()), len(compressible.Data))
	}
}

// TestStore_SnapshotDamagedChunks: a large snapshot with a chunk missing,
// or with a chunk of another snapshot in its place, is refused.
func TestStore_SnapshotDamagedChunks(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	opts := uniqueStream()
	s := newStore(t, nc, opts...)
	stream := fmt.Sprintf("T%d", streamN.Load())
	size := 3*int(nc.MaxPayload()) + 5
	bucket := natsstore.SnapshotObjectBucket(stream)
	raw, err := js.Stream(ctx(t), "OBJ_"+bucket)
	chunkOf := func(name string) (subject string) {
		t.Helper()
		obs, err := js.ObjectStore(ctx(t), bucket)
		if err != nil {
			t.Fatal(err)
		}
		info, err := obs.GetInfo(ctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("$O.%s.C.%s", bucket, info.NUID)
	}

	t.Run("chunk missing", func(t *testing.T) {
		if err := s.SaveSnapshot(ctx(t), "m-cut", bigSnapshot(10, noise(3, size))); err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			if raw, err = js.Stream(ctx(t), "OBJ_"+bucket); err != nil {
				t.Fatal(err)
			}
		}
		names := objects(t, js, stream)
		last, err := raw.GetLastMsgForSubject(ctx(t), chunkOf(names[0]))
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.DeleteMsg(ctx(t), last.Sequence); err != nil {
			t.Fatal(err)
		}
		got, found, err := newStore(t, nc, opts...).LoadSnapshot(ctx(t), "m-cut")
		if err == nil && found {
			t.Fatalf("LoadSnapshot served a snapshot with a chunk missing: version %d, %d bytes", got.Version, len(got.Data))
		}
	})

	t.Run("chunk of another snapshot", func(t *testing.T) {
		if err := s.SaveSnapshot(ctx(t), "m-swap", bigSnapshot(20, noise(4, size))); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(ctx(t), "m-other", bigSnapshot(20, noise(5, size))); err != nil {
			t.Fatal(err)
		}
		var swap, other string
		for _, n := range objects(t, js, stream) {
			switch {
			case bytes.HasPrefix([]byte(n), []byte("m-swap/")):
				swap = n
			case bytes.HasPrefix([]byte(n), []byte("m-other/")):
				other = n
			}
		}
		// Move the other snapshot's first chunk onto this one's chunk
		// subject, in place of its last.
		from, to := chunkOf(other), chunkOf(swap)
		first, err := raw.GetMsg(ctx(t), mustFirstSeq(t, raw, from))
		if err != nil {
			t.Fatal(err)
		}
		last, err := raw.GetLastMsgForSubject(ctx(t), to)
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.DeleteMsg(ctx(t), last.Sequence); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx(t), to, first.Data); err != nil {
			t.Fatal(err)
		}
		got, found, err := newStore(t, nc, opts...).LoadSnapshot(ctx(t), "m-swap")
		if err == nil && found {
			t.Fatalf("LoadSnapshot served a snapshot with another's chunk: version %d, %d bytes", got.Version, len(got.Data))
		}
	})
}

// mustFirstSeq returns the stream sequence of the first message on subject.
func mustFirstSeq(t *testing.T, st jetstream.Stream, subject string) uint64 {
	t.Helper()
	info, err := st.Info(ctx(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx(t), seq)
		if err == nil && m.Subject == subject {
			return seq
		}
	}
	t.Fatalf("no message on %s", subject)
	return 0
}

// TestStore_SnapshotConcurrentSaves: writers replacing one meeting's large
// and small snapshots at once, readers loading it meanwhile: every load is
// one whole snapshot, and once the writers are done the bucket holds the
// last one's object at most.
func TestStore_SnapshotConcurrentSaves(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	opts := uniqueStream()
	stream := fmt.Sprintf("T%d", streamN.Load())
	size := int(nc.MaxPayload()) + 1000
	const writers, saves = 4, 3
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers*saves+64)
	for w := range writers {
		s := newStore(t, nc, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range saves {
				v := uint64(w*100 + i + 1)
				n := size
				if i == 1 {
					n = 100 // a small one among the large
				}
				if err := s.SaveSnapshot(ctx(t), "m-race", bigSnapshot(v, noise(v, n))); err != nil {
					errs <- fmt.Errorf("save %d: %w", v, err)
				}
			}
		}()
	}
	var rg sync.WaitGroup
	var loads atomic.Int64
	for range 2 {
		r := newStore(t, nc, opts...)
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				got, found, err := r.LoadSnapshot(ctx(t), "m-race")
				if err != nil || !found {
					continue // a snapshot replaced under the reader twice: refused, never mixed
				}
				if events.Hash(sha256.Sum256(got.Data)) != got.Hash || got.Seq != got.Version {
					errs <- fmt.Errorf("loaded a mixed snapshot: version %d, %d bytes", got.Version, len(got.Data))
				}
				loads.Add(1)
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := newStore(t, nc, opts...)
	got, found, err := s.LoadSnapshot(ctx(t), "m-race")
	if err != nil || !found {
		t.Fatalf("LoadSnapshot after the writers: found %v, %v", found, err)
	}
	checkWhole(t, got)
	names := objects(t, js, stream)
	if len(names) > 1 || len(got.Data) > 100 && len(names) != 1 || len(got.Data) == 100 && len(names) != 0 {
		t.Fatalf("objects %v for a final snapshot of %d bytes: old objects left behind", names, len(got.Data))
	}
	t.Logf("%d loads during the saves", loads.Load())
}

// TestStore_SnapshotFormat1: a snapshot written by an earlier version (the
// state as is after the header) is still read.
func TestStore_SnapshotFormat1(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	opts := uniqueStream()
	s := newStore(t, nc, opts...)
	kv, err := js.KeyValue(ctx(t), natsstore.SnapshotBucket(fmt.Sprintf("T%d", streamN.Load())))
	if err != nil {
		t.Fatal(err)
	}
	want := bigSnapshot(5, []byte("an old state"))
	v := []byte{1}
	v = binary.AppendUvarint(v, want.Version)
	v = binary.AppendUvarint(v, want.Seq)
	v = append(v, want.Hash[:]...)
	v = append(v, want.Data...)
	if _, err := kv.Put(ctx(t), "m-old", v); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.LoadSnapshot(ctx(t), "m-old")
	if err != nil || !found || !bytes.Equal(got.Data, want.Data) || got.Version != 5 || got.Hash != want.Hash {
		t.Fatalf("LoadSnapshot of format 1: found %v, %v, %+v", found, err, got)
	}
}
