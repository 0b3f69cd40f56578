package stage_test

import (
	"context"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
)

// countingNATS counts the events the JetStream store's Loads yield.
type countingNATS struct {
	*natsstore.Store
	loaded atomic.Int64
}

func (c *countingNATS) Load(ctx context.Context, meetingID string, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for e, err := range c.Store.Load(ctx, meetingID, from) {
			c.loaded.Add(1)
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestJetStream_SnapshotRestart: an engine writes snapshots to the
// JetStream store; after a server restart, a new engine loads the meeting
// from its latest snapshot and the events after it, to the state a fold
// from the first event gives.
func TestJetStream_SnapshotRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	st, err := natsstore.New(jsCtx(t), nc)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(st, stage.WithAutoTick(false), stage.WithSnapshotEvery(100))
	if err != nil {
		t.Fatal(err)
	}
	last := busyMeeting(t, eng, "m", 450)
	eng.Close()
	snap, found, err := st.LoadSnapshot(jsCtx(t), "m")
	if err != nil || !found || snap.Version+100 <= last {
		t.Fatalf("latest snapshot: found %v at version %d (%v); meeting at %d", found, snap.Version, err, last)
	}
	st.Close()
	nc.Close()
	srv.Shutdown()

	srv2, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Shutdown)
	st2, err := natsstore.New(jsCtx(t), jsConnect(t, srv2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	want := folded(t, st2, "m")
	if want.Version() != last {
		t.Fatalf("after the restart the log is at version %d, want %d", want.Version(), last)
	}
	c := &countingNATS{Store: st2}
	got := coldState(t, c, "m")
	if !got.Equal(want) {
		t.Fatal("the state loaded from the snapshot differs from the folded one")
	}
	if n := c.loaded.Load(); n != int64(last-snap.Version+1) {
		t.Fatalf("the cold load read %d events; from the snapshot at %d to %d it needs %d", n, snap.Version, last, last-snap.Version+1)
	}
}
