package natsstore_test

import (
	"testing"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func TestSnapshotBucket(t *testing.T) {
	for stream, want := range map[string]string{"STAGE": "STAGE_SNAPSHOTS", "a-b_c": "a-b_c_SNAPSHOTS", "x#y~z": "x_y_z_SNAPSHOTS"} {
		if got := natsstore.SnapshotBucket(stream); got != want {
			t.Errorf("SnapshotBucket(%q) = %q, want %q", stream, got, want)
		}
	}
}

// TestStore_LoadFromSnapshotPosition: a Load from the version of a
// snapshot the store has loaded starts at the position it names, if the
// stream holds the snapshot's event there, and reads the same events
// either way.
func TestStore_LoadFromSnapshotPosition(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	opts := uniqueStream()
	w := newStore(t, nc, opts...)
	a, b := storetest.NewChain("m-a"), storetest.NewChain("m:b/ü")
	for range 6 {
		for _, c := range []*storetest.Chain{a, b} {
			from := c.Version
			if _, err := w.Append(ctx(t), c.MeetingID, from, c.Next(50)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := storetest.Collect(w.Load(ctx(t), "m-a", 1))
	if err != nil {
		t.Fatal(err)
	}
	other, err := storetest.Collect(w.Load(ctx(t), b.MeetingID, 1))
	if err != nil {
		t.Fatal(err)
	}
	at := all[149] // version 150
	for name, seq := range map[string]uint64{"right": at.Seq, "another meeting's": other[10].Seq, "none": 0, "beyond the stream": 1 << 40} {
		t.Run(name, func(t *testing.T) {
			if err := w.SaveSnapshot(ctx(t), "m-a", eventstore.Snapshot{Version: at.Version, Hash: at.Hash, Seq: seq, Data: []byte("state")}); err != nil {
				t.Fatal(err)
			}
			r := newStore(t, nc, opts...) // knows no heads
			snap, found, err := r.LoadSnapshot(ctx(t), "m-a")
			if err != nil || !found || snap.Seq != seq || snap.Version != 150 || snap.Hash != at.Hash || string(snap.Data) != "state" {
				t.Fatalf("LoadSnapshot: %+v, found %v, %v", snap, found, err)
			}
			got, err := storetest.Collect(r.Load(ctx(t), "m-a", 150))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 151 || !storetest.Equal(got[0], at) || !storetest.Equal(got[150], all[299]) {
				t.Fatalf("Load from 150: %d events", len(got))
			}
			var prev events.Hash = at.PrevHash
			for i := range got {
				if err := eventstore.CheckNext(&got[i], 149+uint64(i), prev); err != nil {
					t.Fatal(err)
				}
				prev = got[i].Hash
			}
		})
	}
}
