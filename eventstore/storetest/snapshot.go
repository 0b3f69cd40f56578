package storetest

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// testSnapshots checks the [eventstore.Snapshotter] contract, for stores
// that implement it.
func testSnapshots(t *testing.T, s eventstore.Store) {
	ss, ok := s.(eventstore.Snapshotter)
	if !ok {
		t.Skip("the store keeps no snapshots")
	}
	ctx := ctxOf(t)
	if _, found, err := ss.LoadSnapshot(ctx, "m-snap-none"); err != nil || found {
		t.Fatalf("LoadSnapshot of a meeting without one: found %v, %v", found, err)
	}
	snap := func(version uint64, size int) eventstore.Snapshot {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + int(version))
		}
		return eventstore.Snapshot{Version: version, Hash: events.Hash(sha256.Sum256(data)), Seq: version * 3, Data: data}
	}
	check := func(meeting string, want eventstore.Snapshot) {
		t.Helper()
		got, found, err := ss.LoadSnapshot(ctx, meeting)
		if err != nil || !found {
			t.Fatalf("LoadSnapshot(%s): found %v, %v", meeting, found, err)
		}
		if got.Version != want.Version || got.Hash != want.Hash || got.Seq != want.Seq || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("LoadSnapshot(%s): version %d seq %d, %d bytes; want version %d seq %d, %d bytes",
				meeting, got.Version, got.Seq, len(got.Data), want.Version, want.Seq, len(want.Data))
		}
	}
	save := func(meeting string, snap eventstore.Snapshot) {
		t.Helper()
		if err := ss.SaveSnapshot(ctx, meeting, snap); err != nil {
			t.Fatalf("SaveSnapshot(%s, version %d): %v", meeting, snap.Version, err)
		}
	}

	a := snap(2, 100)
	save("m-snap-a", a)
	a.Data[0]++ // the store keeps its own copy
	check("m-snap-a", snap(2, 100))
	b := snap(7, 64<<10)
	save("m-snap-a", b)
	check("m-snap-a", b)
	other := snap(1, 0)
	save("m-snap-b", other)
	check("m-snap-b", other)
	check("m-snap-a", b)
	odd := snap(3, 10) // any valid meeting id has its own snapshot
	for _, id := range []string{"m:snap/ü#1", "m_snap-a", "m=snap", "m.snap", "x.bS5zbmFw", "m snap"} {
		save(id, odd)
		check(id, odd)
	}
	check("m-snap-a", b)
	if _, found, err := ss.LoadSnapshot(ctx, "m-snap-none"); err != nil || found {
		t.Fatalf("LoadSnapshot of a meeting without one: found %v, %v", found, err)
	}

	// Snapshots of any size: several MB, well past one message of a
	// server's default max payload, compressible or not; each replaces the
	// last whole.
	big := snap(40, 6<<20) // compressible: a repeating pattern
	save("m-snap-big", big)
	check("m-snap-big", big)
	noise := make([]byte, 3<<20+17) // incompressible
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	random := eventstore.Snapshot{Version: 41, Hash: events.Hash(sha256.Sum256(noise)), Seq: 123, Data: noise}
	save("m-snap-big", random)
	check("m-snap-big", random)
	small := snap(42, 10)
	save("m-snap-big", small)
	check("m-snap-big", small)
	random.Version, random.Seq = 43, 129
	save("m-snap-big", random)
	check("m-snap-big", random)
	check("m-snap-a", b)

	for _, bad := range []string{"", "a\tb", "a\x00", "a\xff"} {
		if err := ss.SaveSnapshot(ctx, bad, a); err == nil {
			t.Errorf("SaveSnapshot(%q) accepted a bad meeting id", bad)
		}
	}
}
