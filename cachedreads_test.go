package stage_test

import (
	"context"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// followed is a store that follows appends and counts its Load calls
// (a catch-up is one, even when it finds nothing new).
type followed interface {
	eventstore.Store
	eventstore.HeadFollower
}

type loadCounter struct {
	followed
	loads atomic.Int64
}

func (c *loadCounter) Load(ctx context.Context, meetingID string, from uint64) iter.Seq2[events.Envelope, error] {
	c.loads.Add(1)
	return c.followed.Load(ctx, meetingID, from)
}

// TestWithCachedReads runs the same checks on both stores: reads of a
// meeting nobody else writes do not read the store; this Engine's own
// writes show at once; another Engine's write shows (at once in memory,
// once the follower delivered it on JetStream) and makes the next read
// catch up once.
func TestWithCachedReads(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (followed, followed)
	}{
		{"memory", func(*testing.T) (followed, followed) {
			m := eventstore.NewMemory()
			return m, m
		}},
		{"jetstream", func(t *testing.T) (followed, followed) {
			srv := jsEmbedded(t, natsstore.WithLazySync())
			var ss [2]followed
			for i := range ss {
				s, err := natsstore.New(jsCtx(t), jsConnect(t, srv))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				ss[i] = s
			}
			return ss[0], ss[1]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa, sb := tc.store(t)
			a := &loadCounter{followed: sa}
			ea, err := stage.New(a, stage.WithCachedReads(), stage.WithAutoTick(false))
			if err != nil {
				t.Fatal(err)
			}
			defer ea.Close()
			eb, err := stage.New(sb, stage.WithAutoTick(false))
			if err != nil {
				t.Fatal(err)
			}
			defer eb.Close()
			ctx := jsCtx(t)
			// A meeting id the JetStream store escapes on its subject: the
			// follower reports it by its id, not its subject token.
			const meeting = "room.1 a*b"
			host := aggregate.Participant{UserID: "host", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
			viewer := func(id string) aggregate.Participant {
				return aggregate.Participant{UserID: id, Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}
			}
			if _, err := ea.AddParticipant(ctx, meeting, host); err != nil {
				t.Fatal(err)
			}
			if _, err := ea.AddParticipant(ctx, meeting, viewer("ann")); err != nil {
				t.Fatal(err)
			}
			// Own writes, then reads: none reads the store.
			before := a.loads.Load()
			for range 20 {
				if _, err := ea.RequestAccess(ctx, meeting, "ann"); err != nil {
					t.Fatal(err)
				}
				if st, err := ea.Status(ctx, meeting, "ann"); err != nil || st != aggregate.RequestedToJoinStage {
					t.Fatalf("own write: status %v, %v; want Requested", st, err)
				}
				if _, err := ea.CancelRequestAccess(ctx, meeting, "ann"); err != nil {
					t.Fatal(err)
				}
				if r, err := ea.Roster(ctx, meeting); err != nil || r.Version == 0 {
					t.Fatalf("roster %+v, %v", r, err)
				}
				if reqs, err := ea.GetAccessRequests(ctx, meeting, "host"); err != nil || len(reqs) != 0 {
					t.Fatalf("requests %v, %v; want none", reqs, err)
				}
			}
			if n := a.loads.Load() - before; n != 0 {
				t.Fatalf("60 reads after own writes read the store %d times, want 0", n)
			}
			// Another Engine's write shows, and costs one catch-up.
			if _, err := eb.AddParticipant(ctx, meeting, viewer("bob")); err != nil {
				t.Fatal(err)
			}
			r, err := eb.RequestAccess(ctx, meeting, "bob")
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(jsGuard)
			for {
				st, err := ea.Status(ctx, meeting, "bob")
				if err == nil && st == aggregate.RequestedToJoinStage {
					break
				}
				if tc.name == "memory" {
					t.Fatalf("memory: the other Engine's acknowledged write does not show: %v, %v", st, err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("the other Engine's write never showed: %v, %v", st, err)
				}
				time.Sleep(time.Millisecond)
			}
			before = a.loads.Load()
			for range 10 {
				if roster, err := ea.Roster(ctx, meeting); err != nil || roster.Version != r.Version {
					t.Fatalf("roster at version %d, %v; want %d", roster.Version, err, r.Version)
				}
			}
			if n := a.loads.Load() - before; n != 0 {
				t.Fatalf("reads after catching up read the store %d times, want 0", n)
			}
		})
	}
}

// TestWithCachedReads_DefaultReadsTheStore: without the option, every read
// catches up with the store (the cache is not trusted), except the one that
// loaded the meeting.
func TestWithCachedReads_DefaultReadsTheStore(t *testing.T) {
	a := &loadCounter{followed: eventstore.NewMemory()}
	e, err := stage.New(a, stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if _, err := e.AddParticipant(ctx, "m", aggregate.Participant{UserID: "host", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed}}); err != nil {
		t.Fatal(err)
	}
	before := a.loads.Load()
	for range 5 {
		if _, err := e.Status(ctx, "m", "host"); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.loads.Load() - before; n != 5 {
		t.Fatalf("5 reads read the store %d times, want 5", n)
	}
}

// TestWithCachedReads_NeedsAFollower: a store that cannot report appends
// is refused by New, with the reason.
func TestWithCachedReads_NeedsAFollower(t *testing.T) {
	_, err := stage.New(struct{ eventstore.Store }{eventstore.NewMemory()}, stage.WithCachedReads())
	if err == nil || !strings.Contains(err.Error(), "HeadFollower") {
		t.Fatalf("New: %v; want an error naming eventstore.HeadFollower", err)
	}
}
