package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// ErrRunnerStopped is returned by [Runner.WaitFor] when the runner's Run has
// returned before reaching the position waited for.
var ErrRunnerStopped = errors.New("projections: runner stopped")

// Runner keeps the roster of every meeting current by following a store's
// subscription. Start it with Run (usually in its own goroutine); read with
// Roster, Requests and Position; after a command, WaitFor the command's
// Result.Position to read your own write.
//
// A Runner may start from a checkpoint (a global position, see
// [WithCheckpoint]) instead of the beginning of the log: when it meets a
// meeting whose earlier events it has not seen, it loads them from the store
// first, so each meeting's state is always the fold of its whole log and the
// roster is byte-for-byte the one an offline fold gives.
//
// The roster is the log's: a deadline that has passed but is not recorded
// yet (an engine records lapses at each deadline, see stage.WithAutoTick)
// shows once its Lapsed event is stored; apply aggregate.At to a state for
// the view at a given time.
//
// A Runner is safe for concurrent use.
type Runner struct {
	store eventstore.Store
	from  uint64
	onEv  func(before *aggregate.State, e *events.Envelope)

	mu       sync.RWMutex
	meetings map[string]*aggregate.State
	pos      uint64        // Seq of the last event applied
	changed  chan struct{} // closed and replaced when pos moves or the runner stops
	err      error         // why Run returned, once it has
	running  bool
}

// RunnerOption configures a [Runner].
type RunnerOption func(*Runner) error

// WithCheckpoint starts the runner after global position pos (the Seq of the
// last event a previous run had applied): it subscribes from pos+1. The
// default is 0, the beginning of the log.
func WithCheckpoint(pos uint64) RunnerOption {
	return func(r *Runner) error { r.from = pos + 1; r.pos = pos; return nil }
}

// WithEventHook calls f for every event the runner applies, in log order,
// with the meeting's state before the event (f must not keep or modify it)
// and the event. It runs on Run's goroutine before the event is applied and
// before WaitFor callers waiting for it are released; keep it short. Use it
// to turn events into [Notification]s with [Notify].
func WithEventHook(f func(before *aggregate.State, e *events.Envelope)) RunnerOption {
	return func(r *Runner) error {
		if f == nil {
			return errors.New("projections: WithEventHook: nil func")
		}
		r.onEv = f
		return nil
	}
}

// NewRunner returns a Runner over store. Call Run to start it.
func NewRunner(store eventstore.Store, opts ...RunnerOption) (*Runner, error) {
	if store == nil {
		return nil, errors.New("projections: NewRunner: nil store")
	}
	r := &Runner{store: store, from: 1, meetings: map[string]*aggregate.State{}, changed: make(chan struct{})}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Run follows the store until ctx is done or the log cannot be trusted, and
// returns why: ctx's error, the store's error, or an error wrapping
// eventstore.ErrCorrupt for an event whose version, hash or chain link is
// wrong. Run may be called once.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("projections: Runner.Run called twice")
	}
	r.running = true
	r.mu.Unlock()
	err := r.run(ctx)
	r.mu.Lock()
	r.err = err
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return err
}

func (r *Runner) run(ctx context.Context) error {
	for e, err := range r.store.Subscribe(ctx, r.from) {
		if err != nil {
			return err
		}
		if err := r.apply(ctx, &e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// apply folds e into its meeting, loading the meeting's earlier events first
// if the runner has not seen them (it started from a checkpoint).
func (r *Runner) apply(ctx context.Context, e *events.Envelope) error {
	r.mu.RLock()
	s := r.meetings[e.MeetingID]
	r.mu.RUnlock()
	if s == nil {
		s = aggregate.NewState(e.MeetingID)
	}
	if e.Version <= s.Version() {
		// Already loaded while catching the meeting up.
		return r.advance(e.Seq, e.MeetingID, s)
	}
	if e.Version > s.Version()+1 {
		c := s.Clone()
		for old, err := range r.store.Load(ctx, e.MeetingID, c.Version()+1) {
			if err != nil {
				return err
			}
			if old.Version >= e.Version {
				break
			}
			if err := eventstore.CheckNext(&old, c.Version(), c.LastHash()); err != nil {
				return err
			}
			aggregate.Evolve(c, &old)
		}
		s = c
	}
	if err := eventstore.CheckNext(e, s.Version(), s.LastHash()); err != nil {
		return err
	}
	// Only this goroutine changes states, so the hook may read s unlocked;
	// readers take the read lock, so Evolve runs under the write lock.
	if r.onEv != nil {
		r.onEv(s, e)
	}
	r.mu.Lock()
	aggregate.Evolve(s, e)
	r.mu.Unlock()
	return r.advance(e.Seq, e.MeetingID, s)
}

func (r *Runner) advance(seq uint64, meetingID string, s *aggregate.State) error {
	r.mu.Lock()
	r.meetings[meetingID] = s
	if seq > r.pos {
		r.pos = seq
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// Position returns the Seq of the last event the runner has applied (its
// checkpoint: pass it to [WithCheckpoint] to resume).
func (r *Runner) Position() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.pos
}

// WaitFor blocks until the runner has applied the event at global position
// pos (for example a command's Result.Position), ctx is done, or Run has
// returned, and returns nil, ctx's error, or an error wrapping
// [ErrRunnerStopped] (and Run's error).
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	for {
		r.mu.RLock()
		p, ch, err := r.pos, r.changed, r.err
		r.mu.RUnlock()
		if p >= pos {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w before position %d: %w", ErrRunnerStopped, pos, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Roster returns the meeting's roster as of the runner's position. A
// meeting the runner has not seen since its checkpoint is loaded from the
// store (up to that position) and kept; a meeting with no events up to
// that position is no meeting, as with Engine.Roster: an error wrapping
// aggregate.ErrNoMeeting.
func (r *Runner) Roster(ctx context.Context, meetingID string) (Roster, error) {
	r.mu.RLock()
	s, pos := r.meetings[meetingID], r.pos
	if s != nil {
		defer r.mu.RUnlock()
		return RosterOf(s), nil
	}
	r.mu.RUnlock()
	if err := events.ValidateID(meetingID); err != nil {
		return Roster{}, err
	}
	s = aggregate.NewState(meetingID)
	for e, err := range r.store.Load(ctx, meetingID, 1) {
		if err != nil {
			return Roster{}, err
		}
		if e.Seq > pos {
			break
		}
		if err := eventstore.CheckNext(&e, s.Version(), s.LastHash()); err != nil {
			return Roster{}, err
		}
		aggregate.Evolve(s, &e)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Run may have met the meeting meanwhile: its state is then the newer.
	if cur := r.meetings[meetingID]; cur != nil {
		s = cur
	} else if s.Version() > 0 {
		r.meetings[meetingID] = s
	}
	if s.Version() == 0 {
		return Roster{}, &aggregate.Error{Command: "Roster", Err: aggregate.ErrNoMeeting, Reason: "no events as of the runner's position"}
	}
	return RosterOf(s), nil
}

// Meetings returns the ids of the meetings the runner holds (those it has
// seen events of since its checkpoint, and those loaded by Roster), in no
// particular order.
func (r *Runner) Meetings() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.meetings))
	for id := range r.meetings {
		out = append(out, id)
	}
	return out
}
