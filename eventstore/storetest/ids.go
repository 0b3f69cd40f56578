package storetest

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// AnyIDs are meeting ids a store must keep apart and serve like any other:
// '.', '*', '>', '@', spaces, non-ASCII, ids that look like a subject or an
// escaped or encoded form of another id in the list.
var AnyIDs = []string{
	"bob@example.com", "user.123", "a b", "ünï.cödé", ">", "*", ".", "a.*", "a.>",
	"stage.events.x", "a*2Eb", "a.b", "a*b", "x.YQ", "a", "Ana Lima", "a\u00a0b", "\ufffd", "%2E",
}

// testAnyIDs checks that every id events.ValidateID accepts is a meeting
// of its own: appends, loads, the whole log, snapshots and the command
// index keep each apart from every other.
func testAnyIDs(t *testing.T, s eventstore.Store) {
	ctx := ctxOf(t)
	want := map[string][]events.Envelope{}
	for i, id := range AnyIDs {
		if err := events.ValidateID(id); err != nil {
			t.Fatalf("AnyIDs[%d]: %v", i, err)
		}
		want[id], _ = mustAppend(t, s, NewChain(id), 1+i%3)
	}
	for _, id := range AnyIDs {
		sameEvents(t, "meeting "+id, mustLoad(t, s, id, 0), want[id])
	}
	all := mustReadAll(t, s, 0)
	got := map[string][]events.Envelope{}
	for _, e := range all {
		got[e.MeetingID] = append(got[e.MeetingID], e)
	}
	for _, id := range AnyIDs {
		sameEvents(t, "ReadAll of meeting "+id, got[id], want[id])
	}
	if len(got) != len(AnyIDs) {
		t.Fatalf("ReadAll: %d meetings, want %d", len(got), len(AnyIDs))
	}
	if ss, ok := s.(eventstore.Snapshotter); ok {
		for i, id := range AnyIDs {
			data := []byte(id + " state")
			snap := eventstore.Snapshot{Version: uint64(1 + i%3), Hash: events.Hash(sha256.Sum256(data)), Data: data}
			if err := ss.SaveSnapshot(ctx, id, snap); err != nil {
				t.Fatalf("SaveSnapshot(%q): %v", id, err)
			}
		}
		for _, id := range AnyIDs {
			snap, found, err := ss.LoadSnapshot(ctx, id)
			if err != nil || !found || !bytes.Equal(snap.Data, []byte(id+" state")) {
				t.Fatalf("LoadSnapshot(%q) = %q, %v, %v; want its own", id, snap.Data, found, err)
			}
		}
	}
	if ix, ok := s.(eventstore.CommandIndex); ok {
		k := events.KeyOf("bob@example.com", "K")
		at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		for i, id := range AnyIDs {
			if err := ix.RecordCommand(ctx, id, k, eventstore.CommandRecord{Version: uint64(i + 1), Time: at}); err != nil {
				t.Fatalf("RecordCommand(%q): %v", id, err)
			}
		}
		for i, id := range AnyIDs {
			rec, found, err := ix.FindCommand(ctx, id, k)
			if err != nil || !found || rec.Version != uint64(i+1) {
				t.Fatalf("FindCommand(%q) = %+v, %v, %v; want version %d", id, rec, found, err, i+1)
			}
		}
	}
}
