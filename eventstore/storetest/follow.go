package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/productdb/stage/eventstore"
)

// testFollowHeads checks the [eventstore.HeadFollower] contract, for stores
// that implement it: every append after FollowHeads returned is reported
// with its meeting and the position of its last event (the highest
// reported), none before; the follower is current while ctx lives and not
// after.
func testFollowHeads(t *testing.T, s eventstore.Store) {
	hf, ok := s.(eventstore.HeadFollower)
	if !ok {
		t.Skip("the store does not report appends")
	}
	a, b := NewChain("m-fh-a"), NewChain("m-fh-b")
	mustAppend(t, s, a, 2) // before: never reported
	var (
		mu   sync.Mutex
		high = map[string]uint64{}
	)
	ctx, cancel := context.WithCancel(ctxOf(t))
	defer cancel()
	current, err := hf.FollowHeads(ctx, func(m string, seq uint64) {
		mu.Lock()
		high[m] = max(high[m], seq)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !current() {
		t.Fatal("a new follower is not current")
	}
	want := map[string]uint64{}
	for range 3 {
		_, pa := mustAppend(t, s, a, 2)
		_, pb := mustAppend(t, s, b, 1)
		want[a.MeetingID], want[b.MeetingID] = pa, pb
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		got := map[string]uint64{a.MeetingID: high[a.MeetingID], b.MeetingID: high[b.MeetingID]}
		n := len(high)
		mu.Unlock()
		if got[a.MeetingID] == want[a.MeetingID] && got[b.MeetingID] == want[b.MeetingID] && n == 2 {
			break
		}
		if got[a.MeetingID] > want[a.MeetingID] || got[b.MeetingID] > want[b.MeetingID] || n > 2 {
			t.Fatalf("reported %v (%d meetings), want %v", got, n, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("reported %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if current() {
		t.Fatal("the follower is current after its context ended")
	}
}
