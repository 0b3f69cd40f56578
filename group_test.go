package stage_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

// slowStore takes a while over each append, as a store syncing to disk
// does, counts appends and events, and fails the appends fail says to.
type slowStore struct {
	*eventstore.Memory
	delay     time.Duration
	appends   atomic.Int64
	events    atomic.Int64
	conflicts atomic.Int64
	grouped   atomic.Int64 // appends of several events
	extra     atomic.Int64 // nanoseconds more per append, while set
	fail      func(n int64) error
}

func (s *slowStore) Append(ctx context.Context, meetingID string, expected uint64, evs []events.Envelope) (uint64, error) {
	n := s.appends.Add(1)
	time.Sleep(s.delay + time.Duration(s.extra.Load()))
	if s.fail != nil {
		if err := s.fail(n); err != nil {
			return 0, err
		}
	}
	pos, err := s.Memory.Append(ctx, meetingID, expected, evs)
	if err == nil {
		s.events.Add(int64(len(evs)))
		if len(evs) > 1 {
			s.grouped.Add(1)
		}
	}
	if errors.Is(err, eventstore.ErrConflict) {
		s.conflicts.Add(1)
	}
	return pos, err
}

type groupOutcome struct {
	res stage.Result
	err error
	id  string
}

// groupCrowd has callers goroutines each add n viewers to meeting m and have
// them raise their hands, and returns every groupOutcome.
func groupCrowd(t *testing.T, eng *stage.Engine, m, prefix string, callers, n int) []groupOutcome {
	t.Helper()
	var mu sync.Mutex
	var out []groupOutcome
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				v := fmt.Sprintf("%s%d-%d", prefix, c, i)
				for _, cmd := range []aggregate.Command{
					{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: v, Permissions: eoViewer}}},
					{Actor: v, Action: aggregate.RequestAccess{}},
				} {
					r, err := eng.Execute(context.Background(), m, cmd)
					mu.Lock()
					out = append(out, groupOutcome{res: r, err: err, id: v + "/" + cmd.Action.Name()})
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// checkOutcomes holds every acknowledged result to the log: its events are
// there, at its versions and positions, once.
func checkOutcomes(t *testing.T, st eventstore.Store, m string, out []groupOutcome) {
	t.Helper()
	var log []events.Envelope
	for e, err := range st.Load(context.Background(), m, 1) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	seen := map[uint64]string{}
	for _, o := range out {
		if o.err != nil {
			continue
		}
		if len(o.res.Events) == 0 {
			t.Fatalf("%s: acknowledged with no events", o.id)
		}
		for _, ev := range o.res.Events {
			if ev.Version == 0 || ev.Version > uint64(len(log)) {
				t.Fatalf("%s: version %d, the log has %d", o.id, ev.Version, len(log))
			}
			got := log[ev.Version-1]
			if got.ID != ev.ID || got.Hash != ev.Hash || got.Seq != ev.Seq {
				t.Fatalf("%s: result event v%d (seq %d) is not the log's (seq %d)", o.id, ev.Version, ev.Seq, got.Seq)
			}
			if prev, dup := seen[ev.Version]; dup {
				t.Fatalf("version %d acknowledged to %s and %s", ev.Version, prev, o.id)
			}
			seen[ev.Version] = o.id
		}
		if last := o.res.Events[len(o.res.Events)-1]; o.res.Version != last.Version || o.res.Seq != last.Seq {
			t.Fatalf("%s: result version %d position %d, its last event %d at %d", o.id, o.res.Version, o.res.Seq, last.Version, last.Seq)
		}
	}
	rep, err := replay.Verify(context.Background(), st.ReadAll(context.Background(), 1))
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Findings)
	}
}

// Commands of one meeting queued behind an append go out together.
func TestGroupedAppends(t *testing.T) {
	st := &slowStore{Memory: eventstore.NewMemory(), delay: 2 * time.Millisecond}
	eng, err := stage.New(st, stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.AddParticipant(t.Context(), "live", aggregate.Participant{UserID: "h", Permissions: eoHost}); err != nil {
		t.Fatal(err)
	}
	out := groupCrowd(t, eng, "live", "v", 32, 10)
	for _, o := range out {
		if o.err != nil {
			t.Fatalf("%s: %v", o.id, o.err)
		}
	}
	checkOutcomes(t, st, "live", out)
	cmds, appends := int64(len(out)+1), st.appends.Load()
	t.Logf("%d commands in %d appends", cmds, appends)
	if appends*2 > cmds {
		t.Errorf("%d commands took %d appends: not grouped", cmds, appends)
	}
	// The state the engine holds is the log's.
	r, err := eng.Roster(t.Context(), "live")
	if err != nil || r.Version != uint64(st.events.Load()) || len(r.Requests) != 320 {
		t.Fatalf("roster version %d, %d requests (%v); the log has %d events", r.Version, len(r.Requests), err, st.events.Load())
	}
}

// A second Engine writing the same meeting makes grouped appends fail
// their guard: the whole group is decided again, and every command is
// stored once.
func TestGroupedAppends_conflicts(t *testing.T) {
	st := &slowStore{Memory: eventstore.NewMemory(), delay: time.Millisecond}
	a, _ := stage.New(st, stage.WithAutoTick(false))
	b, _ := stage.New(st, stage.WithAutoTick(false))
	defer a.Close()
	defer b.Close()
	if _, err := a.AddParticipant(t.Context(), "live", aggregate.Participant{UserID: "h", Permissions: eoHost}); err != nil {
		t.Fatal(err)
	}
	var outA, outB []groupOutcome
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); outA = groupCrowd(t, a, "live", "a", 16, 6) }()
	go func() { defer wg.Done(); outB = groupCrowd(t, b, "live", "b", 16, 6) }()
	wg.Wait()
	// Crowds of 16 on two engines may exhaust the retries of some
	// commands; what was acknowledged must be in the log once.
	failed := 0
	for _, o := range append(outA, outB...) {
		if o.err != nil {
			failed++
			var ae *aggregate.Error
			if errors.As(o.err, &ae) {
				t.Fatalf("%s: rejected by the rules: %v", o.id, o.err)
			}
		}
	}
	t.Logf("%d commands, %d appends, %d conflicts, %d gave up on conflicts", len(outA)+len(outB), st.appends.Load(), st.conflicts.Load(), failed)
	if st.conflicts.Load() == 0 {
		t.Error("no append met a conflict: the test did not test it")
	}
	checkOutcomes(t, st, "live", append(outA, outB...))
}

// An append that fails (its groupOutcome unknown) fails every command of its
// group, stores nothing here, and the engine carries on from the log.
func TestGroupedAppends_failure(t *testing.T) {
	st := &slowStore{Memory: eventstore.NewMemory(), delay: 2 * time.Millisecond}
	st.fail = func(n int64) error {
		if n%5 == 0 {
			return errors.New("connection lost")
		}
		return nil
	}
	eng, _ := stage.New(st, stage.WithAutoTick(false))
	defer eng.Close()
	if _, err := eng.AddParticipant(t.Context(), "live", aggregate.Participant{UserID: "h", Permissions: eoHost}); err != nil {
		t.Fatal(err)
	}
	out := groupCrowd(t, eng, "live", "v", 16, 8)
	failed := 0
	for _, o := range out {
		if o.err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no command failed though every fifth append did")
	}
	checkOutcomes(t, st, "live", out)
	r, err := eng.Roster(t.Context(), "live")
	if err != nil || r.Version != uint64(st.events.Load()) {
		t.Fatalf("roster at %d (%v), the log at %d", r.Version, err, st.events.Load())
	}
}

// TestGroupedAppends_mixed fires random commands of every kind (hosts
// granting, denying and kicking, viewers requesting, cancelling, joining
// and leaving, some with keys, many rejected) from many goroutines on two
// Engines at one slow store. Whatever was grouped: every acknowledged
// result is in the log once at its versions, replay.Verify re-decides every
// event on the state before it and finds it legal, and both Engines read
// the roster the log folds to.
func TestGroupedAppends_mixed(t *testing.T) {
	for seed := range int64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { groupedMixed(t, seed) })
	}
}

func groupedMixed(t *testing.T, seed int64) {
	st := &slowStore{Memory: eventstore.NewMemory(), delay: time.Millisecond}
	a, _ := stage.New(st, stage.WithAutoTick(false))
	b, _ := stage.New(st, stage.WithAutoTick(false))
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	const m = "live"
	users := []string{"h1", "h2"}
	for i := range 24 {
		users = append(users, fmt.Sprint("u", i))
	}
	for _, u := range users {
		p := eoViewer
		if u[0] == 'h' {
			p = eoHost
		}
		if _, err := a.AddParticipant(ctx, m, aggregate.Participant{UserID: u, Permissions: p}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var out []groupOutcome
	var wg sync.WaitGroup
	for c := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(c)))
			eng := a
			if c%2 == 1 {
				eng = b
			}
			self := users[2+c]
			for i := range 12 {
				var cmd aggregate.Command
				switch rng.IntN(8) {
				case 0:
					cmd = aggregate.Command{Actor: users[rng.IntN(2)], Action: aggregate.GrantAccess{Users: []string{users[2+rng.IntN(24)], users[2+rng.IntN(24)]}}}
				case 1:
					cmd = aggregate.Command{Actor: users[rng.IntN(2)], Action: aggregate.DenyAccess{Users: []string{users[2+rng.IntN(24)]}}}
				case 2:
					cmd = aggregate.Command{Actor: users[rng.IntN(2)], Action: aggregate.Kick{Users: []string{users[2+rng.IntN(24)]}}}
				case 3:
					cmd = aggregate.Command{Actor: self, Action: aggregate.CancelRequestAccess{}}
				case 4:
					cmd = aggregate.Command{Actor: self, Action: aggregate.Join{}}
				case 5:
					cmd = aggregate.Command{Actor: self, Action: aggregate.Leave{}}
				default:
					cmd = aggregate.Command{Actor: self, Action: aggregate.RequestAccess{}}
				}
				var opts []stage.ExecOption
				if rng.IntN(4) == 0 {
					opts = append(opts, stage.WithIdempotencyKey(fmt.Sprintf("k%d-%d", c, i)))
				}
				r, err := eng.Execute(ctx, m, cmd, opts...)
				var ae *aggregate.Error
				if err != nil && !errors.As(err, &ae) && !errors.Is(err, eventstore.ErrConflict) {
					t.Errorf("%s by %s: %v", cmd.Action.Name(), cmd.Actor, err)
				}
				mu.Lock()
				out = append(out, groupOutcome{res: r, err: err, id: fmt.Sprintf("%d/%d %s", c, i, cmd.Action.Name())})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Rejections carry no events; the acknowledged ones are in the log.
	var acked []groupOutcome
	for _, o := range out {
		if o.err == nil {
			acked = append(acked, o)
		}
	}
	checkOutcomes(t, st, m, acked)
	t.Logf("%d commands, %d acknowledged, %d appends, %d conflicts", len(out), len(acked), st.appends.Load(), st.conflicts.Load())
	for _, eng := range []*stage.Engine{a, b} {
		r, err := eng.Roster(ctx, m)
		if err != nil || r.Version != uint64(st.events.Load()) {
			t.Fatalf("roster at %d (%v), the log at %d", r.Version, err, st.events.Load())
		}
	}
}
