package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// follower runs one SubscribeMeeting in a goroutine and hands over what it
// yields.
type follower struct {
	t    *testing.T
	ch   chan followed
	done chan struct{}
	stop context.CancelFunc
}

type followed struct {
	e   events.Envelope
	err error
}

func follow(t *testing.T, ms eventstore.MeetingSubscriber, meeting string, from uint64) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxOf(t))
	f := &follower{t: t, ch: make(chan followed, 64), done: make(chan struct{}), stop: cancel}
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	go func() {
		defer close(f.done)
		for e, err := range ms.SubscribeMeeting(ctx, meeting, from) {
			select {
			case f.ch <- followed{e, err}:
			case <-time.After(hangGuard):
				return
			}
		}
	}()
	return f
}

// take returns the next n events, failing on an error.
func (f *follower) take(n int) []events.Envelope {
	f.t.Helper()
	var got []events.Envelope
	for range n {
		select {
		case it := <-f.ch:
			if it.err != nil {
				f.t.Fatalf("SubscribeMeeting: %v after %d events", it.err, len(got))
			}
			got = append(got, it.e)
		case <-time.After(hangGuard):
			f.t.Fatalf("SubscribeMeeting: no event within %v", hangGuard)
		}
	}
	return got
}

// quiet fails if the follower yields anything within d.
func (f *follower) quiet(d time.Duration) {
	f.t.Helper()
	select {
	case it := <-f.ch:
		f.t.Fatalf("SubscribeMeeting yielded (meeting %s, version %d, %v), want nothing", it.e.MeetingID, it.e.Version, it.err)
	case <-time.After(d):
	}
}

// testSubscribeMeeting checks the [eventstore.MeetingSubscriber] contract,
// for stores that implement it.
func testSubscribeMeeting(t *testing.T, s eventstore.Store) {
	ms, ok := s.(eventstore.MeetingSubscriber)
	if !ok {
		t.Skip("the store does not follow single meetings")
	}
	a, b := NewChain("m-sm-a"), NewChain("m-sm-b")
	var wantA []events.Envelope
	for range 3 {
		evs, _ := mustAppend(t, s, a, 2)
		wantA = append(wantA, evs...)
		mustAppend(t, s, b, 1)
	}

	t.Run("ReplayThenLive", func(t *testing.T) {
		f := follow(t, ms, a.MeetingID, 3)
		got := f.take(len(wantA) - 2)
		// Live: the other meeting's events never show.
		mustAppend(t, s, b, 2)
		evs, _ := mustAppend(t, s, a, 1)
		wantA = append(wantA, evs...)
		mustAppend(t, s, b, 1)
		evs, _ = mustAppend(t, s, a, 2)
		wantA = append(wantA, evs...)
		got = append(got, f.take(3)...)
		sameEvents(t, "SubscribeMeeting from 3", got, wantA[2:])
		f.quiet(50 * time.Millisecond)

		f.stop()
		select {
		case it := <-f.ch:
			if !errors.Is(it.err, context.Canceled) {
				t.Fatalf("after cancel: got (version %d, %v), want context.Canceled", it.e.Version, it.err)
			}
		case <-time.After(hangGuard):
			t.Fatal("no error after cancel")
		}
		select {
		case it := <-f.ch:
			t.Fatalf("yielded (version %d, %v) after the context error", it.e.Version, it.err)
		case <-f.done:
		case <-time.After(hangGuard):
			t.Fatal("SubscribeMeeting did not end after cancel")
		}
	})

	t.Run("FromOneAndZero", func(t *testing.T) {
		for _, from := range []uint64{0, 1} {
			f := follow(t, ms, a.MeetingID, from)
			sameEvents(t, "SubscribeMeeting from the start", f.take(len(wantA)), wantA)
			f.quiet(20 * time.Millisecond)
		}
	})

	t.Run("FromTheNextVersion", func(t *testing.T) {
		// The caller loaded the meeting and follows from there.
		loaded := mustLoad(t, s, a.MeetingID, 1)
		f := follow(t, ms, a.MeetingID, uint64(len(loaded))+1)
		f.quiet(20 * time.Millisecond)
		evs, _ := mustAppend(t, s, a, 1)
		wantA = append(wantA, evs...)
		sameEvents(t, "SubscribeMeeting from the next version", f.take(1), evs)
	})

	t.Run("FromAFutureVersion", func(t *testing.T) {
		f := follow(t, ms, a.MeetingID, a.Version+3)
		mustAppend(t, s, a, 2)
		mustAppend(t, s, b, 1)
		evs, _ := mustAppend(t, s, a, 2)
		sameEvents(t, "SubscribeMeeting from a future version", f.take(2), evs)
	})

	t.Run("NewMeeting", func(t *testing.T) {
		c := NewChain("m-sm-new")
		f := follow(t, ms, c.MeetingID, 0)
		mustAppend(t, s, a, 1)
		f.quiet(20 * time.Millisecond)
		evs, _ := mustAppend(t, s, c, 1)
		more, _ := mustAppend(t, s, c, 3)
		sameEvents(t, "SubscribeMeeting of a new meeting", f.take(4), append(evs, more...))
	})

	t.Run("StopEarly", func(t *testing.T) {
		n := 0
		for _, err := range ms.SubscribeMeeting(ctxOf(t), a.MeetingID, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				break
			}
		}
	})

	t.Run("InvalidID", func(t *testing.T) {
		n := 0
		for _, err := range ms.SubscribeMeeting(ctxOf(t), "bad\tid", 1) {
			if n++; !errors.Is(err, events.ErrInvalidID) {
				t.Fatalf("SubscribeMeeting(bad id): %v, want events.ErrInvalidID", err)
			}
		}
		if n != 1 {
			t.Fatalf("SubscribeMeeting(bad id) yielded %d times, want one error", n)
		}
	})

	t.Run("DoneContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxOf(t))
		cancel()
		for _, err := range ms.SubscribeMeeting(ctx, a.MeetingID, 1) {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("SubscribeMeeting with a done context: %v", err)
			}
			break
		}
	})
}
