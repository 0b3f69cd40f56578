package natsstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func TestStore_ConformanceGroupCommit(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return newStore(t, nc, append(uniqueStream(), natsstore.WithGroupCommit(2))...)
	})
}

func TestWithGroupCommit_invalid(t *testing.T) {
	for _, n := range []int{-1, 1, natsstore.MaxGroup + 1} {
		if err := natsstore.WithGroupCommit(n)(nil); !errors.Is(err, natsstore.ErrInvalidOption) {
			t.Errorf("WithGroupCommit(%d): %v, want ErrInvalidOption", n, err)
		}
	}
}

// TestGroupCommit_conflictFailsOnlyItsMeeting appends to many meetings at
// once, through one store with group commit, while half of the appends
// carry a stale expected version: exactly those fail with ErrConflict, every
// other one is stored at its own version, and each meeting's log is intact.
func TestGroupCommit_conflictFailsOnlyItsMeeting(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	opts := uniqueStream()
	s := newStore(t, nc, append(opts, natsstore.WithGroupCommit(2))...)
	const meetings = 64
	chains := make([]*storetest.Chain, meetings)
	for i := range chains {
		chains[i] = storetest.NewChain(fmt.Sprintf("m%d", i))
		if _, err := s.Append(ctx(t), chains[i].MeetingID, 0, chains[i].Next(1)); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, meetings)
		stored := make([]events.Envelope, meetings)
		seqs := make([]uint64, meetings)
		for i, c := range chains {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := c.Peek(1)
				expected := ev[0].Version - 1
				if i%2 == 1 {
					// A stale writer: decided on an older version.
					stale := storetest.Event(c.MeetingID, expected, events.Hash{})
					ev = []events.Envelope{stale}
					expected--
				}
				stored[i] = ev[0]
				seqs[i], errs[i] = s.Append(ctx(t), c.MeetingID, expected, ev)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if i%2 == 1 {
				if !errors.Is(err, eventstore.ErrConflict) {
					t.Fatalf("round %d meeting %d: stale append: %v, want ErrConflict", round, i, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("round %d meeting %d: %v", round, i, err)
			}
			chains[i].Version, chains[i].Last = stored[i].Version, stored[i].Hash
			got, err := storetest.Collect(s.Load(ctx(t), chains[i].MeetingID, stored[i].Version))
			if err != nil || len(got) != 1 || got[0].Seq != seqs[i] || got[0].ID != stored[i].ID {
				t.Fatalf("round %d meeting %d: Append said sequence %d; Load gives %+v, %v", round, i, seqs[i], got, err)
			}
		}
	}
	for i, c := range chains {
		got, err := storetest.Collect(s.Load(ctx(t), c.MeetingID, 1))
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(1)
		if i%2 == 0 {
			want = 6
		}
		if uint64(len(got)) != want {
			t.Fatalf("meeting %d holds %d events, want %d", i, len(got), want)
		}
		var prev events.Hash
		for j := range got {
			if err := eventstore.CheckNext(&got[j], uint64(j), prev); err != nil {
				t.Fatal(err)
			}
			prev = got[j].Hash
		}
	}
}
