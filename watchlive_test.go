package stage_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
)

// eachStore runs f on an Engine over the memory store and over the
// embedded JetStream store. reopen gives a new Engine over the same store
// (the caller closes the old one).
func eachStore(t *testing.T, f func(t *testing.T, eng *stage.Engine, reopen func() *stage.Engine, js bool)) {
	t.Run("memory", func(t *testing.T) {
		store := eventstore.NewMemory()
		open := func() *stage.Engine {
			eng, err := stage.New(store)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { eng.Close() })
			return eng
		}
		f(t, open(), open, false)
	})
	t.Run("jetstream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { emb.Close() })
		open := func() *stage.Engine {
			eng, err := stage.New(emb.Store)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { eng.Close() })
			return eng
		}
		f(t, open(), open, true)
	})
}

// untilLive collects a watch's notifications up to its Live one.
func untilLive(t *testing.T, seq iter.Seq2[projections.Notification, error]) ([]projections.Notification, projections.Notification) {
	t.Helper()
	var out []projections.Notification
	for n, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if n.Type == projections.Live {
			return out, n
		}
		out = append(out, n)
	}
	t.Fatal("the watch ended before Live")
	return nil, projections.Notification{}
}

func ids(ns []projections.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

// TestEngine_WatchClose: Close ends a running Watch with ErrClosed, while
// it waits for events and while its caller holds a notification; a Watch
// started after Close yields ErrClosed at once.
func TestEngine_WatchClose(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
		waiting := make(chan error, 1)
		holding := make(chan error, 1)
		live := make(chan struct{}, 2)
		hold := make(chan struct{})
		watch := func(ended chan<- error, block bool) {
			for n, err := range eng.Watch(ctx, "w", 1) {
				if err != nil {
					ended <- err
					return
				}
				if n.Type == projections.Live {
					live <- struct{}{}
					if block {
						<-hold
					}
				}
			}
			ended <- nil
		}
		go watch(waiting, false)
		go watch(holding, true)
		<-live
		<-live
		closed := make(chan error, 1)
		go func() { closed <- eng.Close() }()
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		close(hold)
		for name, ended := range map[string]chan error{"waiting": waiting, "holding": holding} {
			select {
			case err := <-ended:
				if !errors.Is(err, stage.ErrClosed) {
					t.Errorf("%s watcher ended with %v, want ErrClosed", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the %s watcher still runs 10s after Close", name)
			}
		}
		n := 0
		for _, err := range eng.Watch(ctx, "w", 0) {
			n++
			if !errors.Is(err, stage.ErrClosed) {
				t.Errorf("Watch after Close: %v", err)
			}
		}
		if n != 1 {
			t.Errorf("Watch after Close yielded %d times", n)
		}
	})
}

// TestEngine_WatchLive: subscribe, wait for Live, act at once: the
// command is always notified, many times over (a fresh watcher from 0 each
// time, on a meeting whose version grows).
func TestEngine_WatchLive(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, js bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
		eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob", Permissions: viewerPerms})
		rounds := 300
		if js {
			rounds = 100
		}
		if testing.Short() {
			rounds = 20
		}
		for i := range rounds {
			wctx, stop := context.WithCancel(ctx)
			live := make(chan projections.Notification, 1)
			got := make(chan projections.Notification, 100)
			ended := make(chan error, 1)
			go func() {
				for n, err := range eng.Watch(wctx, "w", 0) {
					if err != nil {
						ended <- err
						return
					}
					if n.Type == projections.Live {
						live <- n
					} else {
						got <- n
					}
				}
				ended <- nil
			}()
			var l projections.Notification
			select {
			case l = <-live:
			case err := <-ended:
				t.Fatalf("round %d: Watch ended with %v before Live", i, err)
			}
			var res stage.Result
			var err error
			if i%2 == 0 {
				res, err = eng.RequestAccess(ctx, "w", "bob")
			} else {
				res, err = eng.CancelRequestAccess(ctx, "w", "bob")
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Version != l.Version+1 || l.ID != fmt.Sprint(l.Version) {
				t.Fatalf("round %d: live at version %d (id %q), the command made version %d", i, l.Version, l.ID, res.Version)
			}
			select {
			case n := <-got:
				if n.Version != res.Version || n.ID != fmt.Sprint(res.Version, ".0") {
					t.Fatalf("round %d: notified %s (version %d), want %d.0", i, n.ID, n.Version, res.Version)
				}
			case err := <-ended:
				t.Fatalf("round %d: Watch ended with %v", i, err)
			case <-time.After(30 * time.Second):
				t.Fatalf("round %d: the command issued after Live (version %d) was not notified", i, res.Version)
			}
			stop()
			if err := <-ended; !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: Watch ended with %v", i, err)
			}
		}
	})
}

// TestEngine_WatchAfter: a watcher resumed after any notification's ID
// yields exactly the notifications after it; resumed after a Live ID, by a
// new Engine (a restarted server), exactly those of the events stored
// meanwhile.
func TestEngine_WatchAfter(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, reopen func() *stage.Engine, js bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
		eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "hank", Permissions: hostPerms})
		for _, u := range []string{"bob", "carol", "dave"} {
			eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: u, Permissions: viewerPerms})
			eng.RequestAccess(ctx, "w", u) // five notifications each
		}
		eng.AddParticipant(ctx, "other", aggregate.Participant{UserID: "zed", Permissions: viewerPerms})
		eng.GrantAccess(ctx, "w", "alice", []string{"bob", "carol"})
		eng.DenyAccess(ctx, "w", "hank", []string{"dave"})

		all, live := untilLive(t, eng.Watch(ctx, "w", 1))
		if len(all) < 20 || live.ID != fmt.Sprint(live.Version) {
			t.Fatalf("%d notifications, live %+v", len(all), live)
		}
		if fromZero, _ := untilLive(t, eng.WatchAfter(ctx, "w", "0")); !slices.Equal(ids(fromZero), ids(all)) {
			t.Errorf("after 0: %v, want %v", ids(fromZero), ids(all))
		}
		step := 1
		if js {
			step = 4
		}
		for k := 0; k < len(all); k += step {
			got, l := untilLive(t, eng.WatchAfter(ctx, "w", all[k].ID))
			if !slices.Equal(ids(got), ids(all[k+1:])) {
				t.Errorf("after %s: %v, want %v", all[k].ID, ids(got), ids(all[k+1:]))
			}
			if l.ID != live.ID {
				t.Errorf("after %s: live %s, want %s", all[k].ID, l.ID, live.ID)
			}
		}
		if got, _ := untilLive(t, eng.WatchAfter(ctx, "w", live.ID)); len(got) != 0 {
			t.Errorf("after the live id: %v", ids(got))
		}

		// The server restarts; commands come in meanwhile; the client
		// comes back with the last id it saw.
		eng.Close()
		eng = reopen()
		eng.Join(ctx, "w", "bob")
		eng.Kick(ctx, "w", "alice", []string{"bob"})
		all2, _ := untilLive(t, eng.Watch(ctx, "w", 1))
		got, _ := untilLive(t, eng.WatchAfter(ctx, "w", live.ID))
		if !slices.Equal(ids(got), ids(all2[len(all):])) || len(got) != 4 {
			t.Errorf("resumed by a new engine after %s: %v, want %v", live.ID, ids(got), ids(all2[len(all):]))
		}

		for _, bad := range []string{"x", "1.", "-1", "1.2.3"} {
			for _, err := range eng.WatchAfter(ctx, "w", bad) {
				if !errors.Is(err, aggregate.ErrInvalidCommand) || !errors.Is(err, projections.ErrInvalidNotificationID) {
					t.Errorf("WatchAfter %q: %v", bad, err)
				}
			}
		}
	})
}

// TestEngine_WatchStoreClosed_jetstream: the JetStream store closed under
// a running Watch (the Engine still open) ends it with an error wrapping
// both stage.ErrClosed and eventstore.ErrClosed, not a raw nats error.
func TestEngine_WatchStoreClosed_jetstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
	ended := make(chan error, 1)
	live := make(chan struct{})
	go func() {
		for n, err := range eng.Watch(ctx, "w", 0) {
			if err != nil {
				ended <- err
				return
			}
			if n.Type == projections.Live {
				close(live)
			}
		}
		ended <- nil
	}()
	<-live
	emb.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, stage.ErrClosed) || !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Watch ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch runs 10s after the store was closed")
	}
}
