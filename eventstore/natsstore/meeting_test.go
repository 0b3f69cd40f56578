package natsstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// TestStore_SubscribeMeetingReadsOnlyItsMeeting follows meetings on a
// connection of their own while 200 other meetings are written: what that
// connection receives does not grow with the other meetings' events, for a
// meeting with history, one with none yet, and live.
func TestStore_SubscribeMeetingReadsOnlyItsMeeting(t *testing.T) {
	srv := startServer(t, natsstore.WithLazySync())
	opts := uniqueStream()
	w := newStore(t, connect(t, srv), opts...)
	rc := connect(t, srv)
	r := newStore(t, rc, opts...)

	const others, rounds = 200, 5 // 1,000 events of other meetings at a time
	appendOthers := func(chains []*storetest.Chain) {
		t.Helper()
		for range rounds {
			for _, c := range chains {
				v := c.Version
				if _, err := w.Append(ctx(t), c.MeetingID, v, c.Next(1)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	chains := make([]*storetest.Chain, others)
	for i := range chains {
		chains[i] = storetest.NewChain(fmt.Sprintf("other-%d", i))
	}
	watched := storetest.NewChain("watched")
	if _, err := w.Append(ctx(t), watched.MeetingID, 0, watched.Next(3)); err != nil {
		t.Fatal(err)
	}
	appendOthers(chains)
	appendOthers(chains)

	received := func() uint64 { return rc.Stats().InMsgs }
	sub, cancel := ctxCancel(t)
	defer cancel()
	got := make(chan events.Envelope, 16)
	followIt := func(meeting string) {
		go func() {
			for e, err := range r.SubscribeMeeting(sub, meeting, 0) {
				if err != nil {
					return
				}
				got <- e
			}
		}()
	}
	wait := func(meeting string, version uint64) {
		t.Helper()
		for {
			select {
			case e := <-got:
				if e.MeetingID != meeting {
					t.Fatalf("followed %s, got an event of %s", meeting, e.MeetingID)
				}
				if e.Version == version {
					return
				}
			case <-time.After(time.Minute):
				t.Fatalf("waited for %s version %d", meeting, version)
			}
		}
	}

	before := received()
	followIt(watched.MeetingID)
	wait(watched.MeetingID, 3)
	followIt("fresh")
	time.Sleep(50 * time.Millisecond) // the consumer of "fresh" is set up
	fresh := storetest.NewChain("fresh")
	if _, err := w.Append(ctx(t), fresh.MeetingID, 0, fresh.Next(1)); err != nil {
		t.Fatal(err)
	}
	wait(fresh.MeetingID, 1)
	t.Logf("catching up: %d messages received", received()-before)
	if n := received() - before; n > 100 {
		t.Errorf("catching up with two meetings (4 events) in a stream of %d received %d messages", 2*others*rounds+4, n)
	}

	// Live: the other meetings write 2,000 more events, the watched one 2.
	before = received()
	appendOthers(chains)
	if _, err := w.Append(ctx(t), watched.MeetingID, 3, watched.Next(2)); err != nil {
		t.Fatal(err)
	}
	appendOthers(chains)
	wait(watched.MeetingID, 5)
	t.Logf("following: %d messages received", received()-before)
	if n := received() - before; n > 100 {
		t.Errorf("following while %d other events were stored received %d messages", 2*others*rounds, n)
	}

	// The consumers go with the subscriptions.
	cancel()
	js, _ := jetstream.New(rc)
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := js.Stream(ctx(t), w.Stream())
		if err != nil {
			t.Fatal(err)
		}
		if st.CachedInfo().State.Consumers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left after the subscriptions ended", st.CachedInfo().State.Consumers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStore_SubscribeMeetingCorrupt publishes, around the store, messages
// that break a followed meeting's log: each ends the subscription with a
// CorruptError naming its stream sequence.
func TestStore_SubscribeMeetingCorrupt(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	s := newStore(t, nc, uniqueStream()...)
	js, _ := jetstream.New(nc)

	tampered := func(c *storetest.Chain) []byte {
		e := c.Next(1)[0]
		e.Payload.(*events.ParticipantJoined).UserID = "mallory"
		data, _ := events.Marshal(&e)
		return data
	}
	gap := func(c *storetest.Chain) []byte {
		c.Next(1)
		e := c.Next(1)[0] // version 3 after version 1
		data, _ := events.Marshal(&e)
		return data
	}
	broken := func(c *storetest.Chain) []byte {
		e := storetest.Event(c.MeetingID, c.Version+1, events.Hash{1})
		data, _ := events.Marshal(&e)
		return data
	}
	for name, bad := range map[string]func(*storetest.Chain) []byte{
		"junk":     func(*storetest.Chain) []byte { return []byte("not an event") },
		"tampered": tampered,
		"gap":      gap,
		"broken":   broken,
	} {
		t.Run(name, func(t *testing.T) {
			c := storetest.NewChain("corrupt-" + name)
			if _, err := s.Append(ctx(t), c.MeetingID, 0, c.Next(1)); err != nil {
				t.Fatal(err)
			}
			sub, cancel := ctxCancel(t)
			defer cancel()
			// Follow from version 2, so the store starts from the head
			// its Append recorded, and hears of the bad message live;
			// a broken link to the event before fromVersion is the
			// caller's to see (as with Load), so that one is followed
			// from version 1.
			from := uint64(2)
			if name == "broken" {
				from = 1
			}
			res := make(chan error, 1)
			go func() {
				for e, err := range s.SubscribeMeeting(sub, c.MeetingID, from) {
					if err == nil && e.Version < from+1 && from == 1 {
						continue
					}
					if err == nil {
						err = fmt.Errorf("an event at version %d", e.Version)
					}
					res <- err
					return
				}
				res <- errors.New("ended without an error")
			}()
			time.Sleep(20 * time.Millisecond)
			ack, err := js.Publish(ctx(t), s.Subject(c.MeetingID), bad(c))
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-res:
				var ce *eventstore.CorruptError
				if !errors.As(err, &ce) || ce.Seq != ack.Sequence {
					t.Fatalf("got %v, want a CorruptError at sequence %d", err, ack.Sequence)
				}
				t.Log(err)
			case <-time.After(time.Minute):
				t.Fatal("no error")
			}
		})
	}
}
