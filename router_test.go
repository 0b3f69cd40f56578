package stage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/projections"
)

// read takes notifications from sub until one with id (Live ones
// included), failing after a while.
func read(t *testing.T, sub *stage.Subscription, id string) []projections.Notification {
	t.Helper()
	var out []projections.Notification
	for {
		select {
		case n, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription ended with %v, waiting for %s (got %v)", sub.Err(), id, ids(out))
			}
			out = append(out, n)
			if n.ID == id {
				return out
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("waited for %s, got %v", id, ids(out))
		}
	}
}

// forUser keeps the notifications of user (or everyone's) after id.
func forUser(ns []projections.Notification, user, after string) []string {
	a, _ := projections.ParseNotificationID(after)
	var out []string
	for _, n := range ns {
		id, _ := projections.ParseNotificationID(n.ID)
		if (n.Recipient == user || n.Recipient == projections.Everyone) && !a.Covers(id.Version, id.Index) {
			out = append(out, n.ID)
		}
	}
	return out
}

func notLive(ns []projections.Notification) []projections.Notification {
	return slices.DeleteFunc(slices.Clone(ns), func(n projections.Notification) bool { return n.Type == projections.Live })
}

func setupMeeting(ctx context.Context, t *testing.T, eng *stage.Engine) {
	for _, p := range []aggregate.Participant{{UserID: "alice", Permissions: hostPerms}, {UserID: "hank", Permissions: hostPerms},
		{UserID: "bob", Permissions: viewerPerms}, {UserID: "carol", Permissions: viewerPerms}} {
		if _, err := eng.AddParticipant(ctx, "w", p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRouter_fanOut: one router, each subscription gets its user's
// notifications and everyone's, in order, after Live; an anonymous one
// gets everyone's only.
func TestRouter_fanOut(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		setupMeeting(ctx, t, eng)
		r, err := eng.NewRouter("w")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		subs := map[string][]*stage.Subscription{}
		for _, u := range []string{"alice", "bob", "bob", "carol", projections.Everyone} {
			s, err := r.Subscribe(ctx, u, "")
			if err != nil {
				t.Fatal(err)
			}
			subs[u] = append(subs[u], s)
		}
		if n := r.Subscribers(); n != 5 {
			t.Errorf("%d subscribers", n)
		}
		eng.RequestAccess(ctx, "w", "bob")
		eng.RequestAccess(ctx, "w", "carol")
		eng.GrantAccess(ctx, "w", "alice", []string{"bob"})
		eng.Join(ctx, "w", "bob")
		eng.DenyAccess(ctx, "w", "hank", []string{"carol"})
		res, err := eng.Kick(ctx, "w", "alice", []string{"bob"})
		if err != nil {
			t.Fatal(err)
		}
		all, _ := untilLive(t, eng.Watch(ctx, "w", 5))
		last := all[len(all)-1].ID
		if all[len(all)-1].Version != res.Version || all[len(all)-1].Type != projections.StageRosterUpdate {
			t.Fatalf("last notification %+v", all[len(all)-1])
		}
		for u, ss := range subs {
			want := forUser(all, u, "")
			for _, s := range ss {
				got := read(t, s, last)
				if got[0].Type != projections.Live || got[0].ID != "4" {
					t.Errorf("%q: first %+v, want Live at 4", u, got[0])
				}
				if g := ids(notLive(got)); !slices.Equal(g, want) {
					t.Errorf("%q: %v, want %v", u, g, want)
				}
			}
		}
		subs["carol"][0].Close()
		if _, ok := <-subs["carol"][0].C(); ok || subs["carol"][0].Err() != nil {
			t.Errorf("closed subscription: open, or Err %v", subs["carol"][0].Err())
		}
		if n := r.Subscribers(); n != 4 {
			t.Errorf("%d subscribers after one closed", n)
		}
		// A subscription lasts as long as Subscribe's ctx (an SSE request's).
		sctx, stop := context.WithCancel(ctx)
		s, err := r.Subscribe(sctx, "carol", "")
		if err != nil {
			t.Fatal(err)
		}
		stop()
		for range s.C() {
		}
		if !errors.Is(s.Err(), context.Canceled) || r.Subscribers() != 4 {
			t.Errorf("after its ctx ended: %v, %d subscribers", s.Err(), r.Subscribers())
		}
	})
}

// TestRouter_slowConsumer: a subscription that does not read is ended with
// ErrSlowConsumer once its buffer is full; the others go on.
func TestRouter_slowConsumer(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		setupMeeting(ctx, t, eng)
		if _, err := eng.NewRouter("w", stage.WithSubscriberBuffer(0)); err == nil {
			t.Error("a buffer of 0 accepted")
		}
		r, err := eng.NewRouter("w", stage.WithSubscriberBuffer(3))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		slow, _ := r.Subscribe(ctx, "bob", "")
		fast, _ := r.Subscribe(ctx, "bob", "")
		var got []projections.Notification
		for i := range 4 { // bob: Live, then one status update per command
			var res stage.Result
			if i%2 == 0 {
				res, _ = eng.RequestAccess(ctx, "w", "bob")
			} else {
				res, _ = eng.CancelRequestAccess(ctx, "w", "bob")
			}
			got = append(got, read(t, fast, fmt.Sprint(res.Version, ".0"))...)
		}
		if len(got) != 5 {
			t.Errorf("the reading subscription got %v", ids(got))
		}
		n := 0
		for range slow.C() {
			n++
		}
		if n != 3 || !errors.Is(slow.Err(), stage.ErrSlowConsumer) {
			t.Errorf("the slow subscription held %d and ended with %v", n, slow.Err())
		}
		if r.Subscribers() != 1 || fast.Err() != nil {
			t.Errorf("%d subscribers; the fast one: %v", r.Subscribers(), fast.Err())
		}
	})
}

// TestRouter_close: Close of the Engine ends the router and its
// subscriptions with ErrClosed; Close of a router with ErrRouterClosed.
func TestRouter_close(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		setupMeeting(ctx, t, eng)
		if _, err := eng.NewRouter("bad\x00id"); !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("bad meeting id: %v", err)
		}
		r1, _ := eng.NewRouter("w")
		r2, _ := eng.NewRouter("w")
		s1, err := r1.Subscribe(ctx, "bob", "")
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := r2.Subscribe(ctx, "bob", "")
		if _, err := r1.Subscribe(ctx, "bad\x00id", ""); !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("bad user id: %v", err)
		}
		if _, err := r1.Subscribe(ctx, "bob", "x.y"); !errors.Is(err, aggregate.ErrInvalidCommand) || !errors.Is(err, projections.ErrInvalidNotificationID) {
			t.Errorf("bad last id: %v", err)
		}
		r1.Close()
		for range s1.C() {
		}
		if !errors.Is(s1.Err(), stage.ErrRouterClosed) || !errors.Is(r1.Err(), stage.ErrRouterClosed) {
			t.Errorf("after Router.Close: subscription %v, router %v", s1.Err(), r1.Err())
		}
		if _, err := r1.Subscribe(ctx, "bob", ""); !errors.Is(err, stage.ErrRouterClosed) {
			t.Errorf("Subscribe after Close: %v", err)
		}
		eng.Close()
		select {
		case <-r2.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the router runs 10s after the Engine's Close")
		}
		for range s2.C() {
		}
		if !errors.Is(s2.Err(), stage.ErrClosed) || !errors.Is(r2.Err(), stage.ErrClosed) {
			t.Errorf("after Engine.Close: subscription %v, router %v", s2.Err(), r2.Err())
		}
		if _, err := eng.NewRouter("w"); !errors.Is(err, stage.ErrClosed) {
			t.Errorf("NewRouter after Close: %v", err)
		}
	})
}

// TestRouter_resume: a client reads part of its stream, drops, and comes
// back with the last id it saw while commands keep coming: it gets every
// notification of its own and everyone's after that id exactly once, in
// order, the stored ones, Live, then the live ones.
func TestRouter_resume(t *testing.T) {
	eachStore(t, func(t *testing.T, eng *stage.Engine, _ func() *stage.Engine, _ bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		setupMeeting(ctx, t, eng)
		r, err := eng.NewRouter("w", stage.WithSubscriberBuffer(1000))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		first, _ := r.Subscribe(ctx, "bob", "")
		res, _ := eng.RequestAccess(ctx, "w", "bob")
		seen := read(t, first, fmt.Sprint(res.Version, ".0"))
		first.Close() // the client drops
		lastID := seen[len(seen)-1].ID
		// Commands while it is away, and while it comes back.
		cmds := func(n int) (last stage.Result) {
			for i := range n {
				eng.GrantAccess(ctx, "w", "alice", []string{"bob"})
				eng.Join(ctx, "w", "bob")
				last, _ = eng.Kick(ctx, "w", "hank", []string{"bob"})
				if i%2 == 0 {
					eng.RequestAccess(ctx, "w", "carol")
				} else {
					eng.CancelRequestAccess(ctx, "w", "carol")
				}
			}
			return last
		}
		cmds(5)
		done := make(chan stage.Result, 1)
		go func() { done <- cmds(10) }()
		again, err := r.Subscribe(ctx, "bob", lastID)
		if err != nil {
			t.Fatal(err)
		}
		final := <-done
		all, _ := untilLive(t, eng.Watch(ctx, "w", 1))
		endID := ""
		for _, n := range all {
			if n.Version == final.Version && (n.Recipient == "bob" || n.Recipient == projections.Everyone) {
				endID = n.ID
			}
		}
		got := read(t, again, endID)
		lives := 0
		for _, n := range got {
			if n.Type == projections.Live {
				lives++
			}
		}
		if want := forUser(all, "bob", lastID); lives != 1 || !slices.Equal(ids(notLive(got)), want) {
			t.Errorf("resumed after %s: %d Live, %v\nwant %v", lastID, lives, ids(notLive(got)), want)
		}
		// Resuming from where the router stands, or past it: Live first.
		head, _ := r.Subscribe(ctx, "bob", "")
		live := <-head.C()
		for _, id := range []string{live.ID, "999999.1"} {
			s, err := r.Subscribe(ctx, "bob", id)
			if err != nil {
				t.Fatal(err)
			}
			if n := <-s.C(); n.Type != projections.Live || n.ID != live.ID {
				t.Errorf("resumed at %s: first %+v, want Live %s", id, n, live.ID)
			}
		}
	})
}
