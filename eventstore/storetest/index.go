package storetest

import (
	"testing"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// testCommandIndex checks a store's command index, if it keeps one:
// records are found by meeting and key, a later record of a key replaces
// the earlier one, meetings and actors do not share keys, and a retention
// of at least a second is reported.
func testCommandIndex(t *testing.T, s eventstore.Store) {
	ix, ok := s.(eventstore.CommandIndex)
	if !ok {
		t.Skip("the store keeps no command index")
	}
	ctx := ctxOf(t)
	if d := ix.KeyRetention(); d < time.Second {
		t.Fatalf("KeyRetention() = %v", d)
	}
	at := time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC)
	k := events.KeyOf("bob", "K")
	if _, found, err := ix.FindCommand(ctx, "m-ix", k); err != nil || found {
		t.Fatalf("FindCommand before any record: found %v, %v", found, err)
	}
	if err := ix.RecordCommand(ctx, "m-ix", k, eventstore.CommandRecord{Version: 7, Time: at}); err != nil {
		t.Fatal(err)
	}
	rec, found, err := ix.FindCommand(ctx, "m-ix", k)
	if err != nil || !found || rec.Version != 7 || !rec.Time.Equal(at) {
		t.Fatalf("FindCommand = %+v, %v, %v; want version 7 at %v", rec, found, err, at)
	}
	// Another meeting, another actor's key under the same id: not found.
	for _, miss := range []struct {
		meeting string
		key     events.CommandKey
	}{{"m-ix-other", k}, {"m-ix", events.KeyOf("alice", "K")}, {"m-ix", events.KeyOf("", "K")}} {
		if _, found, err := ix.FindCommand(ctx, miss.meeting, miss.key); err != nil || found {
			t.Fatalf("FindCommand(%s, %s): found %v, %v", miss.meeting, miss.key, found, err)
		}
	}
	// A later attempt of the command replaces the record.
	if err := ix.RecordCommand(ctx, "m-ix", k, eventstore.CommandRecord{Version: 9, Time: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if rec, found, err := ix.FindCommand(ctx, "m-ix", k); err != nil || !found || rec.Version != 9 {
		t.Fatalf("FindCommand after a second record = %+v, %v, %v; want version 9", rec, found, err)
	}
	if err := ix.RecordCommand(ctx, "a\tb", k, eventstore.CommandRecord{Version: 1, Time: at}); err == nil {
		t.Fatal("RecordCommand with a bad meeting id succeeded")
	}
}
