// Package storetest is the conformance suite for [eventstore.Store]
// implementations, in the spirit of testing/fstest: every store (the
// in-memory default, the JetStream store, and any other) runs [Run] in its
// tests, so that they cannot drift apart.
//
//	func TestMemory(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) eventstore.Store { return eventstore.NewMemory() })
//	}
//
// It also exports [Chain] and [Event] to build sealed test events.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// hangGuard bounds every operation of the suite. It only guards against
// hangs: no test depends on how fast the store is.
const hangGuard = 2 * time.Minute

// Run checks that the stores made by newStore keep the [eventstore.Store]
// contract. newStore is called once per subtest and must return an empty
// store; it should register its own cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		f    func(t *testing.T, s eventstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"SeqIncreasing", testSeqIncreasing},
		{"Conflict", testConflict},
		{"ConcurrentAppenders", testConcurrentAppenders},
		{"LoadFromVersion", testLoadFromVersion},
		{"UnknownMeeting", testUnknownMeeting},
		{"ReadAll", testReadAll},
		{"Subscribe", testSubscribe},
		{"SubscribeMeeting", testSubscribeMeeting},
		{"FollowHeads", testFollowHeads},
		{"InvalidEvents", testInvalidEvents},
		{"MeetingsIsolated", testMeetingsIsolated},
		{"StopEarly", testStopEarly},
		{"Snapshots", testSnapshots},
		{"CommandIndex", testCommandIndex},
		{"AnyIDs", testAnyIDs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newStore(t))
		})
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// Collect drains an iterator of the Store interface, stopping at the first
// error.
func Collect(seq iter.Seq2[events.Envelope, error]) ([]events.Envelope, error) {
	var out []events.Envelope
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func mustAppend(t *testing.T, s eventstore.Store, c *Chain, n int) ([]events.Envelope, uint64) {
	t.Helper()
	from := c.Version
	evs := c.Next(n)
	pos, err := s.Append(ctxOf(t), c.MeetingID, from, evs)
	if err != nil {
		t.Fatalf("Append(%s, %d, %d events): %v", c.MeetingID, from, n, err)
	}
	return evs, pos
}

func mustLoad(t *testing.T, s eventstore.Store, meeting string, from uint64) []events.Envelope {
	t.Helper()
	got, err := Collect(s.Load(ctxOf(t), meeting, from))
	if err != nil {
		t.Fatalf("Load(%s, %d): %v", meeting, from, err)
	}
	return got
}

func mustReadAll(t *testing.T, s eventstore.Store, from uint64) []events.Envelope {
	t.Helper()
	got, err := Collect(s.ReadAll(ctxOf(t), from))
	if err != nil {
		t.Fatalf("ReadAll(%d): %v", from, err)
	}
	return got
}

// sameEvents fails t unless got are want, in order, with every field equal
// and Seq set and increasing.
func sameEvents(t *testing.T, what string, got, want []events.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d", what, len(got), len(want))
	}
	var last uint64
	for i := range got {
		if !Equal(got[i], want[i]) {
			g, _ := events.Marshal(&got[i])
			w, _ := events.Marshal(&want[i])
			t.Fatalf("%s: event %d differs:\n got %s\nwant %s", what, i, g, w)
		}
		if got[i].Seq <= last {
			t.Fatalf("%s: event %d has Seq %d after Seq %d", what, i, got[i].Seq, last)
		}
		last = got[i].Seq
	}
}

func testRoundTrip(t *testing.T, s eventstore.Store) {
	c := NewChain("m-roundtrip")
	one, pos1 := mustAppend(t, s, c, 1)
	three, pos3 := mustAppend(t, s, c, 3)
	want := append(one, three...)
	got := mustLoad(t, s, c.MeetingID, 0)
	sameEvents(t, "Load", got, want)
	if got[0].Seq != pos1 || got[3].Seq != pos3 {
		t.Fatalf("Append returned positions %d and %d, events have Seq %d and %d", pos1, pos3, got[0].Seq, got[3].Seq)
	}
	for i := range got {
		if got[i].Hash != want[i].Hash || got[i].PrevHash != want[i].PrevHash {
			t.Fatalf("event %d: hashes changed", i)
		}
		if err := got[i].Verify(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var prev events.Hash
		if i > 0 {
			prev = got[i-1].Hash
		}
		if err := eventstore.CheckNext(&got[i], uint64(i), prev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	// Load from version 1 is the same as from 0.
	sameEvents(t, "Load from 1", mustLoad(t, s, c.MeetingID, 1), want)
}

func testSeqIncreasing(t *testing.T, s eventstore.Store) {
	a, b := NewChain("m-seq-a"), NewChain("m-seq-b")
	var last uint64
	for i := range 6 {
		c := a
		if i%2 == 1 {
			c = b
		}
		_, pos := mustAppend(t, s, c, 1+i%2)
		if pos <= last {
			t.Fatalf("append %d: position %d after %d", i, pos, last)
		}
		last = pos
	}
	all := mustReadAll(t, s, 0)
	if len(all) != 9 {
		t.Fatalf("ReadAll: %d events, want 9", len(all))
	}
	if all[len(all)-1].Seq != last {
		t.Fatalf("last event has Seq %d, last Append returned %d", all[len(all)-1].Seq, last)
	}
}

func testConflict(t *testing.T, s eventstore.Store) {
	ctx := ctxOf(t)
	c := NewChain("m-conflict")
	stored, _ := mustAppend(t, s, c, 2) // meeting at version 2
	for _, expected := range []uint64{0, 1, 3, 5} {
		x := &Chain{MeetingID: c.MeetingID, Version: expected, Last: c.Last}
		for _, n := range []int{1, 2} {
			_, err := s.Append(ctx, c.MeetingID, expected, x.Peek(n))
			if !errors.Is(err, eventstore.ErrConflict) {
				t.Fatalf("Append with expected version %d (meeting at 2), %d events: got %v, want ErrConflict", expected, n, err)
			}
		}
	}
	sameEvents(t, "after conflicts", mustLoad(t, s, c.MeetingID, 0), stored)
	if all := mustReadAll(t, s, 0); len(all) != 2 {
		t.Fatalf("after conflicts ReadAll has %d events, want 2", len(all))
	}
	// The right expected version still works.
	mustAppend(t, s, c, 1)
	// A new meeting conflicts when a version above 0 is expected.
	n := &Chain{MeetingID: "m-conflict-new", Version: 1}
	if _, err := s.Append(ctx, n.MeetingID, 1, n.Peek(1)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append with expected version 1 to an empty meeting: got %v, want ErrConflict", err)
	}
}

func testConcurrentAppenders(t *testing.T, s eventstore.Store) {
	ctx := ctxOf(t)
	const writers, versions = 6, 5
	c := NewChain("m-concurrent")
	var want []events.Envelope
	for v := range uint64(versions) {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []events.Envelope
			errs    []error
		)
		for range writers {
			x := *c
			ev := x.Peek(1)
			wg.Go(func() {
				_, err := s.Append(ctx, c.MeetingID, v, ev)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					winners = append(winners, ev[0])
				} else if !errors.Is(err, eventstore.ErrConflict) {
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("version %d: errors other than ErrConflict: %v", v+1, errs)
		}
		if len(winners) != 1 {
			t.Fatalf("version %d: %d appends won, want exactly 1", v+1, len(winners))
		}
		want = append(want, winners[0])
		c.Version, c.Last = v+1, winners[0].Hash
	}
	sameEvents(t, "Load", mustLoad(t, s, c.MeetingID, 0), want)
}

func testLoadFromVersion(t *testing.T, s eventstore.Store) {
	c := NewChain("m-from")
	other := NewChain("m-from-other")
	var all []events.Envelope
	for range 4 {
		evs, _ := mustAppend(t, s, c, 2)
		all = append(all, evs...)
		mustAppend(t, s, other, 1)
	}
	for from := uint64(1); from <= 9; from++ {
		sameEvents(t, fmt.Sprintf("Load from %d", from), mustLoad(t, s, c.MeetingID, from), all[min(from-1, 8):])
	}
	sameEvents(t, "Load from 100", mustLoad(t, s, c.MeetingID, 100), nil)
}

func testUnknownMeeting(t *testing.T, s eventstore.Store) {
	sameEvents(t, "Load on an empty store", mustLoad(t, s, "m-unknown", 0), nil)
	mustAppend(t, s, NewChain("m-known"), 2)
	sameEvents(t, "Load of an unknown meeting", mustLoad(t, s, "m-unknown", 0), nil)
	sameEvents(t, "Load of a meeting whose id prefixes another", mustLoad(t, s, "m-know", 0), nil)
	sameEvents(t, "ReadAll on a store with 2 events from far away", mustReadAll(t, s, 1<<40), nil)
}

func testReadAll(t *testing.T, s eventstore.Store) {
	sameEvents(t, "ReadAll on an empty store", mustReadAll(t, s, 0), nil)
	chains := []*Chain{NewChain("m-all-a"), NewChain("m-all-b"), NewChain("m-all-c")}
	var want []events.Envelope
	for i := range 7 {
		evs, _ := mustAppend(t, s, chains[i%3], 1+i%2)
		want = append(want, evs...)
	}
	all := mustReadAll(t, s, 0)
	sameEvents(t, "ReadAll(0)", all, want)
	sameEvents(t, "ReadAll(1)", mustReadAll(t, s, 1), want)
	for i := range all {
		sameEvents(t, fmt.Sprintf("ReadAll(Seq of event %d)", i), mustReadAll(t, s, all[i].Seq), want[i:])
		// A position between two events starts at the next one.
		if i > 0 && all[i].Seq > all[i-1].Seq+1 {
			sameEvents(t, "ReadAll(between)", mustReadAll(t, s, all[i-1].Seq+1), want[i:])
		}
	}
	sameEvents(t, "ReadAll(after the end)", mustReadAll(t, s, all[len(all)-1].Seq+1), nil)
	// A read sees what was stored when it began.
	n := 0
	for _, err := range s.ReadAll(ctxOf(t), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			mustAppend(t, s, chains[0], 1)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("ReadAll during an append yielded %d events, want the %d stored when it began", n, len(want))
	}
}

func testSubscribe(t *testing.T, s eventstore.Store) {
	a, b := NewChain("m-sub-a"), NewChain("m-sub-b")
	var want []events.Envelope
	for range 3 {
		evs, _ := mustAppend(t, s, a, 1)
		want = append(want, evs...)
		evs, _ = mustAppend(t, s, b, 2)
		want = append(want, evs...)
	}
	existing := len(want)

	ctx, cancel := context.WithCancel(ctxOf(t))
	defer cancel()
	type item struct {
		e   events.Envelope
		err error
	}
	ch := make(chan item)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e, err := range s.Subscribe(ctx, 0) {
			select {
			case ch <- item{e, err}:
			case <-time.After(hangGuard):
				return
			}
		}
	}()
	next := func() item {
		t.Helper()
		select {
		case it := <-ch:
			return it
		case <-time.After(hangGuard):
			t.Fatalf("Subscribe: no event within %v", hangGuard)
			return item{}
		}
	}
	var got []events.Envelope
	for range existing {
		it := next()
		if it.err != nil {
			t.Fatalf("Subscribe: %v", it.err)
		}
		got = append(got, it.e)
	}
	// New events, appended while subscribed, from two meetings.
	for i := range 4 {
		c := a
		if i%2 == 1 {
			c = b
		}
		evs, _ := mustAppend(t, s, c, 1+i%2)
		want = append(want, evs...)
		for range evs {
			it := next()
			if it.err != nil {
				t.Fatalf("Subscribe: %v", it.err)
			}
			got = append(got, it.e)
		}
	}
	sameEvents(t, "Subscribe", got, want)

	cancel()
	it := next()
	if !errors.Is(it.err, context.Canceled) {
		t.Fatalf("Subscribe after cancel: got (%v, %v), want context.Canceled", it.e.Version, it.err)
	}
	select {
	case it, ok := <-ch:
		if ok {
			t.Fatalf("Subscribe yielded (%v, %v) after the context error", it.e.Version, it.err)
		}
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("Subscribe did not end after cancel")
	}

	// Subscribing from a middle position starts there.
	ctx2, cancel2 := context.WithCancel(ctxOf(t))
	defer cancel2()
	from := got[4].Seq
	var mid []events.Envelope
	for e, err := range s.Subscribe(ctx2, from) {
		if err != nil {
			t.Fatalf("Subscribe(%d): %v", from, err)
		}
		mid = append(mid, e)
		if len(mid) == len(want)-4 {
			break
		}
	}
	sameEvents(t, "Subscribe from a middle position", mid, want[4:])
}

func testInvalidEvents(t *testing.T, s eventstore.Store) {
	ctx := ctxOf(t)
	const m = "m-invalid"
	c := NewChain(m)
	unsealed := c.Peek(1)
	unsealed[0].Hash = events.Hash{}
	gap := &Chain{MeetingID: m, Version: 1}
	noCommand := c.Peek(1)
	noCommand[0].CommandID = ""
	cases := []struct {
		name     string
		meeting  string
		expected uint64
		evs      []events.Envelope
	}{
		{"no events", m, 0, nil},
		{"empty slice", m, 0, []events.Envelope{}},
		{"wrong meeting", m, 0, NewChain("m-other").Peek(1)},
		{"second event of another meeting", m, 0, append(c.Peek(1), Event("m-other", 2, events.Hash{}))},
		{"version gap", m, 0, gap.Peek(1)},
		{"version repeated", m, 0, append(c.Peek(1), c.Peek(1)...)},
		{"unsealed", m, 0, unsealed},
		{"malformed", m, 0, noCommand},
	}
	for _, bad := range []string{"", "a\tb", "a\nb", "a\x00", "a\xffb", "a\u0085", string(make([]byte, events.MaxIDLen+1))} {
		cases = append(cases, struct {
			name     string
			meeting  string
			expected uint64
			evs      []events.Envelope
		}{fmt.Sprintf("meeting id %q", bad), bad, 0, NewChain(bad).Peek(1)})
	}
	for _, tc := range cases {
		_, err := s.Append(ctx, tc.meeting, tc.expected, tc.evs)
		if !errors.Is(err, eventstore.ErrInvalidEvents) {
			t.Errorf("%s: Append returned %v, want ErrInvalidEvents", tc.name, err)
		}
	}
	if all := mustReadAll(t, s, 0); len(all) != 0 {
		t.Fatalf("invalid appends stored %d events", len(all))
	}
	// The meeting is still usable.
	evs, _ := mustAppend(t, s, c, 1)
	sameEvents(t, "after invalid appends", mustLoad(t, s, m, 0), evs)
}

func testMeetingsIsolated(t *testing.T, s eventstore.Store) {
	ctx := ctxOf(t)
	a, b := NewChain("m-iso-a"), NewChain("m-iso-b")
	wantA, _ := mustAppend(t, s, a, 3)
	wantB, _ := mustAppend(t, s, b, 1)
	// b is at version 1: appending b's version 2 works regardless of a.
	more, _ := mustAppend(t, s, b, 1)
	wantB = append(wantB, more...)
	// a's version does not leak into b's expectations.
	x := &Chain{MeetingID: b.MeetingID, Version: 3, Last: b.Last}
	if _, err := s.Append(ctx, b.MeetingID, 3, x.Peek(1)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append to b with a's version: got %v, want ErrConflict", err)
	}
	sameEvents(t, "meeting a", mustLoad(t, s, a.MeetingID, 0), wantA)
	sameEvents(t, "meeting b", mustLoad(t, s, b.MeetingID, 0), wantB)
}

func testStopEarly(t *testing.T, s eventstore.Store) {
	c := NewChain("m-stop")
	mustAppend(t, s, c, 5)
	ctx := ctxOf(t)
	for range s.Load(ctx, c.MeetingID, 0) {
		break
	}
	for range s.ReadAll(ctx, 0) {
		break
	}
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	for range s.Subscribe(sub, 0) {
		break
	}
	// A cancelled context ends reads with its error.
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	for _, read := range []iter.Seq2[events.Envelope, error]{s.Load(done, c.MeetingID, 0), s.ReadAll(done, 0), s.Subscribe(done, 0)} {
		_, err := Collect(read)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read with a cancelled context: got %v, want context.Canceled", err)
		}
	}
	// The store still works.
	mustAppend(t, s, c, 1)
}
