package stage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/replay"
)

// The tests of this file hold the engine to exactly once under what breaks
// it in ordinary operation: late retries, keys chosen by users, two Engines
// on one store, and users reaching for the backend's authority.

var (
	eoHost   = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	eoViewer = aggregate.Permissions{StageAccess: aggregate.CanRequest}
)

// eoSeed adds a host, alice, and viewers bob and carol to the meeting.
func eoSeed(t *testing.T, eng *stage.Engine, meeting string) {
	t.Helper()
	ctx := context.Background()
	for u, p := range map[string]aggregate.Permissions{"alice": eoHost, "bob": eoViewer, "carol": eoViewer} {
		if _, err := eng.AddParticipant(ctx, meeting, aggregate.Participant{UserID: u, Permissions: p}); err != nil {
			t.Fatal(err)
		}
	}
}

// eoEngine returns an Engine on st, closed at the end of the test, with
// meeting "w" seeded by eoSeed.
func eoEngine(t *testing.T, st eventstore.Store, opts ...stage.Option) *stage.Engine {
	t.Helper()
	eng, err := stage.New(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	eoSeed(t, eng, "w")
	return eng
}

// eoFill stores n accepted commands on the meeting (carol requests and
// cancels, by turns), each with a fresh key of its own.
func eoFill(t *testing.T, eng *stage.Engine, meeting string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		var err error
		if i%2 == 0 {
			_, err = eng.RequestAccess(ctx, meeting, "carol")
		} else {
			_, err = eng.CancelRequestAccess(ctx, meeting, "carol")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// eoCountKey counts the meeting's events that carry the command id.
func eoCountKey(t *testing.T, st eventstore.Store, meeting, id string) int {
	t.Helper()
	n := 0
	for e, err := range st.Load(context.Background(), meeting, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if e.CommandID == id {
			n++
		}
	}
	return n
}

// A retry far outside the state's 64-command window, after the meeting
// was evicted from the cache, is still a duplicate: the command index
// remembers the key for the retention.
func TestExactlyOnce_lateRetry(t *testing.T) {
	ctx := context.Background()
	st := eventstore.NewMemory()
	eng := eoEngine(t, st, stage.WithCacheSize(1))
	cfg := aggregate.Command{Actor: "alice", Action: aggregate.Configure{Settings: aggregate.Settings{MaxOnStage: 5}}}
	first, err := eng.Execute(ctx, "w", cfg, stage.WithIdempotencyKey("K"))
	if err != nil {
		t.Fatal(err)
	}
	eoFill(t, eng, "w", 3*aggregate.CommandWindow)
	eoSeed(t, eng, "other") // evicts w from the one-meeting cache
	again, err := eng.Execute(ctx, "w", cfg, stage.WithIdempotencyKey("K"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Version != first.Version || len(again.Events) != 1 || again.Events[0].Hash != first.Events[0].Hash {
		t.Fatalf("retry after %d commands: duplicate %v version %d (first %d)", 3*aggregate.CommandWindow, again.Duplicate, again.Version, first.Version)
	}
	if n := eoCountKey(t, st, "w", "K"); n != 1 {
		t.Fatalf("%d events carry key K", n)
	}
}

// The same across a restart on the JetStream store: a new Store and
// Engine on the server find the key in the command index bucket.
func TestExactlyOnce_lateRetryAfterRestart(t *testing.T) {
	ctx := context.Background()
	srv := jsEmbedded(t)
	eng, _ := jsEngine(t, jsConnect(t, srv))
	eoSeed(t, eng, "w")
	if _, err := eng.RequestAccess(ctx, "w", "bob"); err != nil {
		t.Fatal(err)
	}
	grant := aggregate.Command{Actor: "alice", Action: aggregate.GrantAccess{Users: []string{"bob", "nobody"}}}
	first, err := eng.Execute(ctx, "w", grant, stage.WithIdempotencyKey("grant-1"))
	if err != nil {
		t.Fatal(err)
	}
	eoFill(t, eng, "w", aggregate.CommandWindow+10)
	eng.Close()

	eng2, st2 := jsEngine(t, jsConnect(t, srv))
	again, err := eng2.Execute(ctx, "w", grant, stage.WithIdempotencyKey("grant-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Version != first.Version || len(again.Rejected) != 1 || again.Rejected[0].UserID != "nobody" {
		t.Fatalf("retry after a restart: %+v; first %+v", again, first)
	}
	if n := eoCountKey(t, st2, "w", "grant-1"); n != 1 {
		t.Fatalf("%d events carry the key", n)
	}
	// A different command under the key is refused, and stores nothing.
	kick := aggregate.Command{Actor: "alice", Action: aggregate.Kick{Users: []string{"bob"}}}
	if _, err := eng2.Execute(ctx, "w", kick, stage.WithIdempotencyKey("grant-1")); !errors.Is(err, aggregate.ErrKeyReused) {
		t.Fatalf("another command under a used key: %v, want ErrKeyReused", err)
	}
}

// Past the retention, a key is forgotten: the command is decided afresh.
func TestExactlyOnce_retentionEnds(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	st := eventstore.NewMemory(eventstore.WithKeyRetention(time.Hour))
	eng := eoEngine(t, st, stage.WithClock(func() time.Time { return now }), stage.WithAutoTick(false))
	req := aggregate.Command{Actor: "bob", Action: aggregate.RequestAccess{}}
	if _, err := eng.Execute(ctx, "w", req, stage.WithIdempotencyKey("R")); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CancelRequestAccess(ctx, "w", "bob"); err != nil {
		t.Fatal(err)
	}
	eoFill(t, eng, "w", aggregate.CommandWindow)
	now = now.Add(59 * time.Minute)
	if r, err := eng.Execute(ctx, "w", req, stage.WithIdempotencyKey("R")); err != nil || !r.Duplicate {
		t.Fatalf("retry within the retention: %+v, %v", r, err)
	}
	now = now.Add(2 * time.Minute)
	if r, err := eng.Execute(ctx, "w", req, stage.WithIdempotencyKey("R")); err != nil || r.Duplicate {
		t.Fatalf("retry after the retention: %+v, %v; want a new request", r, err)
	}
	if rep, err := replay.Verify(ctx, st.ReadAll(ctx, 1), replay.WithKeyRetention(time.Hour)); err != nil || !rep.OK() {
		t.Fatalf("verify with the store's retention: %v %v", err, rep.Findings)
	}
	rep, err := replay.Verify(ctx, st.ReadAll(ctx, 1)) // held to the default day, the second use is a finding
	if err != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != replay.DuplicateKey {
		t.Fatalf("verify with a day's retention: %v %v", err, rep.Findings)
	}
}

// A user cannot cancel a host's command by using its key first: keys
// belong to their actor. The same actor's key with another command is
// ErrKeyReused, never a silent duplicate.
func TestExactlyOnce_keysBelongToTheirActor(t *testing.T) {
	ctx := context.Background()
	st := eventstore.NewMemory()
	eng := eoEngine(t, st)
	if _, err := eng.Execute(ctx, "w", aggregate.Command{Actor: "bob", Action: aggregate.RequestAccess{}}, stage.WithIdempotencyKey("K")); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RequestAccess(ctx, "w", "carol"); err != nil {
		t.Fatal(err)
	}
	deny := aggregate.Command{Actor: "alice", Action: aggregate.DenyAccess{Users: []string{"carol"}}}
	r, err := eng.Execute(ctx, "w", deny, stage.WithIdempotencyKey("K"))
	if err != nil || r.Duplicate || len(r.Events) != 1 || r.Events[0].Type != events.TypeAccessDenied {
		t.Fatalf("host's deny under bob's key: %+v, %v; want it applied", r, err)
	}
	if st, _ := eng.Status(ctx, "w", "carol"); st != aggregate.OffStage {
		t.Fatalf("carol is %v after the deny", st)
	}
	// bob's own key, for another command of his.
	_, err = eng.Execute(ctx, "w", aggregate.Command{Actor: "bob", Action: aggregate.CancelRequestAccess{}}, stage.WithIdempotencyKey("K"))
	var ae *aggregate.Error
	if !errors.Is(err, aggregate.ErrKeyReused) || !errors.As(err, &ae) || aggregate.ReasonCode(err) != "KeyReused" {
		t.Fatalf("bob's key for another command: %v, want ErrKeyReused", err)
	}
	if st, _ := eng.Status(ctx, "w", "bob"); st != aggregate.RequestedToJoinStage {
		t.Fatalf("bob is %v: the reused key changed something", st)
	}
	// Deny of other targets under the host's own key is another command too.
	other := aggregate.Command{Actor: "alice", Action: aggregate.DenyAccess{Users: []string{"bob"}}}
	if _, err := eng.Execute(ctx, "w", other, stage.WithIdempotencyKey("K")); !errors.Is(err, aggregate.ErrKeyReused) {
		t.Fatalf("the host's key for other targets: %v, want ErrKeyReused", err)
	}
}

// Engine 2 holds the meeting cached when Engine 1 grants w: w's Join on
// Engine 2 must be decided on the grant, not on its stale cache.
func TestExactlyOnce_rejectionsOnFreshState(t *testing.T) {
	ctx := context.Background()
	for name, open := range map[string]func(t *testing.T) (eventstore.Store, eventstore.Store){
		"memory": func(t *testing.T) (eventstore.Store, eventstore.Store) {
			st := eventstore.NewMemory()
			return st, st
		},
		"jetstream": func(t *testing.T) (eventstore.Store, eventstore.Store) {
			srv := jsEmbedded(t)
			var stores [2]eventstore.Store
			for i := range stores {
				st, err := natsstore.New(ctx, jsConnect(t, srv))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				stores[i] = st
			}
			return stores[0], stores[1]
		},
	} {
		t.Run(name, func(t *testing.T) {
			st1, st2 := open(t)
			e1, _ := stage.New(st1)
			e2, _ := stage.New(st2)
			defer e1.Close()
			defer e2.Close()
			eoSeed(t, e1, "w")
			if _, err := e2.RequestAccess(ctx, "w", "bob"); err != nil { // e2 caches the meeting
				t.Fatal(err)
			}
			if _, err := e1.GrantAccess(ctx, "w", "alice", []string{"bob"}); err != nil {
				t.Fatal(err)
			}
			if _, err := e2.Join(ctx, "w", "bob"); err != nil {
				t.Fatalf("Join on the engine with a stale cache: %v", err)
			}
			// And a rejection the head confirms is still a rejection.
			if _, err := e1.Join(ctx, "w", "bob"); !errors.Is(err, aggregate.ErrInvalidState) {
				t.Fatalf("second Join: %v, want ErrInvalidState", err)
			}
		})
	}
}

// Membership commands are the backend's: a user's actor on one of them is
// refused, however it reaches the engine, and verify flags one in a log.
func TestExactlyOnce_membershipIsTheBackends(t *testing.T) {
	ctx := context.Background()
	st := eventstore.NewMemory()
	eng := eoEngine(t, st)
	for _, a := range []aggregate.Action{
		aggregate.UpdatePermissions{UserID: "bob", Permissions: eoHost},
		aggregate.RemoveParticipant{UserID: "alice"},
		aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "mallory", Permissions: eoHost}},
		aggregate.Disconnect{UserID: "alice"},
		aggregate.Reconnect{UserID: "alice"},
	} {
		for _, actor := range []string{"bob", "alice"} { // a viewer, and even a host
			_, err := eng.Execute(ctx, "w", aggregate.Command{Actor: actor, Action: a})
			if !errors.Is(err, aggregate.ErrPermissionDenied) {
				t.Errorf("%s by %s: %v, want ErrPermissionDenied", a.Name(), actor, err)
			}
		}
	}
	r, _ := eng.Roster(ctx, "w")
	if r.Version != 3 {
		t.Fatalf("the refused commands stored %d events", r.Version-3)
	}

	// A log where bob made himself a host: the event is sealed like any
	// other, but verify says it was not the backend's.
	var log []events.Envelope
	for e, err := range st.Load(ctx, "w", 1) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	forged := events.Envelope{ID: log[0].ID, MeetingID: "w", Version: 4, Type: events.TypePermissionsChanged,
		Time: log[2].Time.Add(time.Second), Actor: "bob", CommandID: "self-promotion", Schema: events.SchemaVersion,
		Payload: &events.PermissionsChanged{UserID: "bob", Permissions: eoHost, Status: "OffStage"}}
	forged.ID[15]++
	if err := forged.Seal(log[2].Hash); err != nil {
		t.Fatal(err)
	}
	log = append(log, forged)
	rep, err := replay.Verify(ctx, func(yield func(events.Envelope, error) bool) {
		for i, e := range log {
			e.Seq = uint64(i + 1)
			if !yield(e, nil) {
				return
			}
		}
	})
	if err != nil || len(rep.Findings) != 1 || rep.Findings[0].Kind != replay.Illegal || rep.Findings[0].Version != 4 ||
		!errors.Is(rep.Findings[0].Err, aggregate.ErrPermissionDenied) {
		t.Fatalf("verify of a self-promotion: %v %v", err, rep.Findings)
	}
}
