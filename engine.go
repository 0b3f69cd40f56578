package stage

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

// Engine runs stage commands against an [eventstore.Store]. It keeps each
// meeting's state cached, decides commands with [aggregate.Decide], appends
// their events with the expected version, and resolves conflicts with other
// writers by catching up and deciding again. It is safe for concurrent use:
// commands on one meeting run one at a time, different meetings in parallel.
type Engine struct {
	store eventstore.Store
	cfg   config

	mu       sync.Mutex
	meetings map[string]*meeting
	lru      list.List // of *meeting, most recently used first; e.mu guards it
	closed   bool

	// The tick scheduler (tick.go): each meeting has its timer; these are
	// the context the ticks run in (cancelled by Close) and the ticks in
	// flight (Close waits for them).
	tickCtx   context.Context
	stopTicks context.CancelFunc
	ticking   sync.WaitGroup

	// snapshots counts the snapshot writes in flight (Close waits for them).
	snapshots sync.WaitGroup

	// index is the store's command index, if it keeps one.
	index eventstore.CommandIndex

	// checkpoints writes signed checkpoints (nil without WithCheckpoints).
	checkpoints *checkpointer

	// cost is what an append costs, to group commands only when it pays (group.go).
	cost appendCost

	// following reports whether the store's follower is current (nil
	// without WithCachedReads).
	following func() bool

	// tel records metrics and spans (nil without WithTelemetry: telemetry.go).
	tel *telemetry
}

// meeting is one cached meeting. lock is a one-slot semaphore, so that
// waiting for it honours a context.
type meeting struct {
	id    string
	lock  chan struct{}
	state *aggregate.State
	stale bool   // an append ended ambiguously: catch up before deciding
	seq   uint64 // the store position (Seq) of the state's last event
	// lost is set when loading found evidence that the log lost events
	// (a snapshot past its end): commands are refused with it, reads
	// serve what remains.
	lost *eventstore.HistoryLostError

	// The version of the meeting's latest snapshot (loaded or written;
	// guarded by lock), and whether a snapshot write is in flight.
	snapVersion uint64
	snapping    atomic.Bool
	// foldedTo is the version a load reached by folding at least
	// pastMin events past the latest snapshot (0 when it did not): the
	// meeting's first write after that snapshots it, so a crash before
	// eviction, Close or the idle sweep costs the next Engine no such
	// fold (guarded by lock).
	foldedTo uint64
	// How many events the state is past its latest snapshot, and when a
	// caller last released the meeting (Unix nanoseconds): set on release,
	// read without the lock by eviction, Close and the idle sweep.
	past   atomic.Uint64
	usedAt atomic.Int64

	q queue // commands waiting to join the head's append (group.go)

	// loaded is set when the caller holding the lock loaded the state
	// from the store (it is as new as a catch-up); the caller clears it.
	loaded bool
	// head is the highest store position of the meeting's events that
	// the store's follower reported (WithCachedReads).
	head atomic.Uint64

	users int           // callers holding or waiting for the meeting; e.mu guards it
	elem  *list.Element // place in e.lru; e.mu guards it

	// The tick timer, the deadline it is set for, and whether Close or
	// eviction stopped it; guarded by tmu.
	tmu     sync.Mutex
	timer   *time.Timer
	timerAt time.Time
	stopped bool
}

// Result is the outcome of a command. It marshals to a stable JSON form
// (see [Result.MarshalJSON] and docs/errors.md).
type Result struct {
	// Version is the meeting's version after the command. A Join that fails
	// with aggregate.ErrStageFull still records the waitlisting: Version
	// and Events report that append.
	Version uint64
	// Events are the events the command appended (for a duplicate, the ones
	// it appended the first time).
	Events []events.Envelope
	// Rejected lists the ineligible targets of a list command (grant, deny,
	// kick); the command applied to the others. When no target was
	// eligible the command fails, and Rejected lists every target with
	// its reason.
	Rejected []aggregate.Rejection
	// Duplicate is true when the command's idempotency key had already been
	// applied: nothing new was appended.
	Duplicate bool
	// Seq is the store's position of the command's last event (as
	// events.Envelope.Seq): a projection that has reached it shows the
	// command. Version counts the meeting's events; Seq the store's.
	Seq uint64
}

// New returns an Engine over store. The Engine runs goroutines of its own
// (scheduled ticks, the idle-snapshot sweep, checkpoints) until [Engine.Close]:
// close every Engine, or it stays in memory.
func New(store eventstore.Store, opts ...Option) (*Engine, error) {
	if store == nil {
		return nil, errors.New("stage: New: nil store")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.checkpointEvery > 0 && cfg.signingKey == nil {
		return nil, errors.New("stage: New: WithCheckpoints needs WithSigningKey")
	}
	e := &Engine{store: store, cfg: cfg, meetings: map[string]*meeting{}}
	e.index, _ = store.(eventstore.CommandIndex)
	e.tickCtx, e.stopTicks = context.WithCancel(context.Background())
	if cfg.cachedReads {
		hf, ok := store.(eventstore.HeadFollower)
		if !ok {
			e.stopTicks()
			return nil, fmt.Errorf("stage: New: WithCachedReads needs a store that reports appends (eventstore.HeadFollower); %T does not", store)
		}
		// Close cancels tickCtx: the follower ends with the Engine.
		current, err := hf.FollowHeads(e.tickCtx, e.appended)
		if err != nil {
			e.stopTicks()
			return nil, fmt.Errorf("stage: New: following the store's appends: %w", err)
		}
		e.following = current
	}
	tel, err := newTelemetry(e, cfg.telemetry)
	if err != nil {
		e.stopTicks()
		return nil, fmt.Errorf("stage: New: WithTelemetry: %w", err)
	}
	e.tel = tel
	if cfg.checkpointEvery > 0 {
		e.checkpoints = newCheckpointer(e)
	}
	e.startIdleSweep()
	return e, nil
}

// Close stops the engine: later calls return [ErrClosed], scheduled ticks
// are cancelled, and Close waits for a tick and the snapshot writes in
// flight to end. It then snapshots every cached meeting far enough past
// its latest snapshot (see [WithSnapshotEvery]; bounded by
// [CloseSnapshotTimeout] in all), so that the next Engine loads them from
// their head. With [WithCheckpoints], it then writes the last
// checkpoints and returns that write's error. It does not close the store,
// unless it was given to [CloseWith] (then Close closes it last, and
// returns its error too). Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, m := range e.meetings {
		m.tmu.Lock()
		m.stopped = true
		if m.timer != nil {
			m.timer.Stop()
		}
		m.tmu.Unlock()
	}
	e.stopTicks()
	e.mu.Unlock()
	e.ticking.Wait()
	e.snapshots.Wait()
	e.snapshotAll()
	var err error
	if e.checkpoints != nil {
		err = e.checkpoints.close()
	}
	e.tel.close()
	for _, c := range slices.Backward(e.cfg.closers) {
		err = errors.Join(err, c.Close())
	}
	return err
}

// Execute runs one command on a meeting: decide, append, apply. A rejected
// command returns an error wrapping one of aggregate's sentinel errors (use
// errors.As with *aggregate.Error for the details) and appends nothing, with
// one exception: a Join on a full stage appends SeatWaitlisted and then
// returns an error wrapping aggregate.ErrStageFull. A list command with some
// ineligible targets succeeds and reports them in Result.Rejected.
//
// A rejection is decided on state as new as the store's head: when the
// cached state rejects a command, the engine catches up with the store
// (other Engines may share it) and decides again before answering. An
// accepted command is guarded by the version it was decided on, so
// another writer's append makes it catch up and decide again too.
//
// The membership commands (AddParticipant, RemoveParticipant,
// UpdatePermissions, Disconnect, Reconnect) are the backend's: they carry
// no Actor, and one that does fails with aggregate.ErrPermissionDenied.
// For idempotency keys, see [WithIdempotencyKey]; the other options are
// [WithCorrelationID] and [WithReason]. On a meeting with no events, every
// command but AddParticipant (which starts the meeting) fails with an error
// wrapping aggregate.ErrNoMeeting.
//
// Commands of one meeting run one at a time, each decided on the state
// the previous one left; while one is being appended, commands without a
// caller's idempotency key that the rules accept may go out in the same
// append, each with its own events and result (see docs/jetstream.md,
// "Commands of one meeting, many at a time").
//
// Deadlines that passed without being recorded are recorded first, in a
// Lapsed event appended together with the command's event (see package
// aggregate); a command that fails records nothing, and the lapses are
// recorded by the next tick.
//
// A command that fails for any other reason than the rules (the store, a
// context ending, the Engine closing) returns an error that says what it
// left in the store, with errors.Is:
//
//   - [ErrNotStored]: nothing was stored (the failure came before the
//     append was sent, or the store answered that it stored nothing: a
//     load or catch-up that failed, the idempotency key's record that
//     failed, too many conflicts, lost history, a store refusing while
//     disconnected). Retry as is.
//   - [ErrOutcomeUnknown]: the append was sent and its answer lost (a
//     timeout, a connection lost while waiting), or a retried command's
//     first outcome could not be read. Retry with the same idempotency
//     key ([WithIdempotencyKey]): the retry reports what happened
//     (Result.Duplicate) or applies the command now.
//   - [ErrUnavailable], together with one of the two: no server or no
//     stream leader could be reached. The store says so as soon as it
//     knows, within the caller's ctx (see the store's timeouts, e.g.
//     natsstore.WithRequestTimeout).
//
// A rejection wraps neither. [ErrorCode] and [HTTPStatus] map every
// error to a code and a status; docs/errors.md has the table.
func (e *Engine) Execute(ctx context.Context, meetingID string, cmd aggregate.Command, opts ...ExecOption) (Result, error) {
	ctx, span := e.tel.startCommand(ctx, meetingID, cmd)
	res, err := e.execute(ctx, meetingID, cmd, opts...)
	err = failureOutcome(err)
	e.tel.endCommand(ctx, span, res, err)
	return res, err
}

// failureOutcome says what a failure of execute left in the store. The
// paths of execute that may have stored the command (its append, the
// read of a duplicate's events) mark their errors with [mayBeStored] and
// say it themselves; every other failure came before anything was sent:
// not stored, whatever a read or the key's record said of its own
// outcome. A rejection by the rules is left as it is: a decision, not a
// failure.
func failureOutcome(err error) error {
	if err == nil {
		return nil
	}
	var rej *aggregate.Error
	if errors.As(err, &rej) && aggregate.ReasonCode(rej) != "" {
		return err
	}
	var ms *mayBeStored
	if errors.As(err, &ms) {
		return err
	}
	return commandNotStored(err)
}

// mayBeStored marks the error of a path of execute that may have stored
// the command; the error says its outcome (eventstore.WriteOutcome).
type mayBeStored struct{ err error }

func (e *mayBeStored) Error() string { return e.err.Error() }
func (e *mayBeStored) Unwrap() error { return e.err }

// commandNotStored marks the error of a failure before the command's
// append was sent (a read, the record of its idempotency key): the
// command stored nothing, whatever that request's own outcome. An error
// that said "unknown" is restated; it keeps saying whether the store was
// unavailable, whether a context ended, and the store's error kinds.
func commandNotStored(err error) error {
	if !errors.Is(err, ErrOutcomeUnknown) {
		return eventstore.NotStored(err)
	}
	kinds := []error{ErrNotStored}
	for _, k := range []error{ErrUnavailable, context.DeadlineExceeded, context.Canceled, eventstore.ErrClosed,
		ErrClosed, eventstore.ErrConflict, eventstore.ErrCorrupt, eventstore.ErrHistoryLost, eventstore.ErrInvalidEvents} {
		if errors.Is(err, k) {
			kinds = append(kinds, k)
		}
	}
	return &restated{msg: "not stored: " + err.Error(), kinds: kinds}
}

// restated is an error whose outcome the engine restated: its text, and
// the kinds it still matches.
type restated struct {
	msg   string
	kinds []error
}

func (e *restated) Error() string   { return e.msg }
func (e *restated) Unwrap() []error { return e.kinds }

func (e *Engine) execute(ctx context.Context, meetingID string, cmd aggregate.Command, opts ...ExecOption) (Result, error) {
	name := "Command"
	if cmd.Action != nil {
		name = cmd.Action.Name()
	}
	if err := validMeeting(name, meetingID); err != nil {
		return Result{}, err
	}
	var xc execConfig
	for _, o := range opts {
		o(&xc)
	}
	if xc.key != "" {
		cmd.ID = xc.key
	}
	if xc.correlation != "" {
		cmd.CorrelationID = xc.correlation
	}
	if err := withReason(&cmd, name, xc.reason); err != nil {
		return Result{}, err
	}
	// The first event's id doubles as the command id when the caller gave
	// none: one UUID instead of two on the common path. Such a key is new
	// by construction; a caller's key may be a retry of any age, and is
	// looked up in the store's command index and recorded there.
	firstID := newID()
	keyed := cmd.ID != ""
	if !keyed {
		cmd.ID = firstID.String()
	}
	key := events.KeyOf(cmd.Actor, cmd.ID)
	_, tick := cmd.Action.(aggregate.Tick)
	var m *meeting
	for {
		// A command without a caller's key may join the append of the
		// command holding the meeting (group.go).
		var req *groupReq
		if !keyed && !tick {
			req = &groupReq{cmd: cmd, name: name, firstID: firstID, done: make(chan groupResult, 1)}
		}
		var gr *groupResult
		var err error
		m, gr, err = e.acquireOr(ctx, meetingID, req)
		if err != nil {
			return Result{}, err
		}
		if gr == nil {
			break
		}
		if !gr.retry {
			return gr.res, gr.err
		}
	}
	defer e.release(m)
	if m.lost != nil {
		return Result{Version: m.state.Version()}, fmt.Errorf("stage: %s on meeting %s: %w", name, meetingID, eventstore.NotStored(m.lost))
	}
	// fresh says the state was caught up with the store during this call:
	// a rejection must be decided on state at least that new.
	fresh := m.loaded && !m.stale
	if m.stale || tick && !fresh {
		if err := e.catchUp(ctx, m); err != nil {
			return Result{}, err
		}
		m.stale, fresh = false, true
	}
	for attempt := 1; ; attempt++ {
		now := e.now(m.state)
		d, err := aggregate.Decide(m.state, cmd, now)
		if !d.Duplicate && keyed && e.index != nil && !errors.Is(err, aggregate.ErrInvalidCommand) {
			// A caller's key the state's window does not know may be a
			// retry of any age: ask the command index before the rules,
			// which may no longer allow what the first attempt did.
			run, again, lerr := e.lookup(ctx, m, cmd, key, now, fresh)
			if lerr != nil {
				return Result{Version: m.state.Version()}, lerr
			}
			if again { // the record is newer than the cached state: caught up
				fresh = true
				continue
			}
			if run != nil {
				return e.original(cmd, run)
			}
		}
		if err != nil {
			if !fresh && !errors.Is(err, aggregate.ErrInvalidCommand) {
				// Another writer may have changed what the rules say:
				// decide again on the store's head before rejecting.
				changed, cerr := e.refresh(ctx, m)
				if cerr != nil {
					return Result{Version: m.state.Version()}, cerr
				}
				fresh = true
				if changed {
					continue
				}
			}
			return Result{Version: m.state.Version(), Rejected: d.Rejected}, err
		}
		if d.Duplicate {
			run, err := e.recorded(ctx, meetingID, cmd, d.First, d.Last)
			if err != nil {
				// The command was stored before; which outcome it had
				// is unknown until a retry with its key reads it.
				return Result{}, &mayBeStored{eventstore.OutcomeUnknown(err)}
			}
			return e.original(cmd, run)
		}
		if len(d.Events) == 0 { // a Tick with nothing due
			return Result{Version: m.state.Version()}, nil
		}
		prev := m.state.LastHash()
		for i := range d.Events {
			ev := &d.Events[i]
			// A conflict stored nothing: a later attempt keeps the first
			// event's id (a key the engine made up is that id: verify
			// tells such keys by it).
			ev.ID = firstID
			if i > 0 {
				ev.ID = newID()
			}
			if err := ev.Seal(prev); err != nil {
				return Result{Version: m.state.Version()}, err
			}
			prev = ev.Hash
		}
		if keyed && e.index != nil {
			// Recorded before the append: a record may name an append that
			// never happened (the log tells), never the other way round.
			rec := eventstore.CommandRecord{Version: d.Events[0].Version, Time: now}
			if err := e.index.RecordCommand(ctx, meetingID, key, rec); err != nil {
				return Result{Version: m.state.Version()}, fmt.Errorf("stage: %s on meeting %s: %w", name, meetingID, commandNotStored(fmt.Errorf("recording its idempotency key: %w", err)))
			}
		}
		// Queued commands the rules accept on the state this command
		// leaves go out in the same append (group.go).
		base := m.state.Version()
		all, members, applied := e.gather(m, d.Events)
		actx := ctx
		if len(members) > 0 {
			// Other callers' commands ride on this append: this caller
			// giving up must not cut it short for them (the store bounds
			// a request with no deadline of its own).
			actx = context.WithoutCancel(ctx)
		}
		actx, aspan := e.tel.startAppend(actx, len(all), 1+len(members))
		began := time.Now()
		pos, err := e.store.Append(actx, meetingID, base, all)
		e.tel.endAppend(actx, aspan, began, err)
		if err == nil {
			if len(all) == 1 {
				e.cost.observe(time.Since(began))
			}
			finish(meetingID, members, pos, nil, false)
			last := pos - uint64(len(all)-len(d.Events)) // the position of this command's last event
			for i := range d.Events {
				d.Events[i].Seq = last - uint64(len(d.Events)-1-i)
				if !applied {
					aggregate.Evolve(m.state, &d.Events[i])
				}
			}
			m.seq = pos
			if e.checkpoints != nil {
				e.checkpoints.note(meetingID, m.state.Version(), m.state.LastHash())
			}
			return Result{Version: d.Events[len(d.Events)-1].Version, Events: d.Events, Rejected: d.Rejected, Seq: last}, d.Err
		}
		conflict := errors.Is(err, eventstore.ErrConflict)
		// A store says what a failed append left (not stored, or
		// unknown); a store that does not is taken at the Store
		// interface's word: ambiguous, unless it is a conflict or a
		// refusal.
		err = &mayBeStored{eventstore.WriteOutcome(err, true)}
		finish(meetingID, members, 0, err, conflict)
		if applied {
			// The state ran ahead of the store: it is read again below
			// (a conflict), or by the meeting's next command.
			m.state = nil
		}
		if !conflict {
			// The append may or may not have happened (a lost ack, say): the
			// next command on this meeting catches up first.
			m.stale = true
			e.cfg.logger.WarnContext(ctx, "stage: append failed", "meeting", meetingID, "command", name, "id", cmd.ID, "events", len(all), "err", err)
			return Result{Version: base}, fmt.Errorf("stage: %s on meeting %s: %w", name, meetingID, err)
		}
		e.cfg.logger.DebugContext(ctx, "stage: conflict, catching up", "meeting", meetingID, "command", name, "attempt", attempt)
		if attempt >= e.cfg.maxAttempts {
			if m.state == nil {
				return Result{Version: base}, fmt.Errorf("stage: %s on meeting %s: gave up after %d attempts: %w", name, meetingID, attempt, err)
			}
			return Result{Version: m.state.Version()}, fmt.Errorf("stage: %s on meeting %s: gave up after %d attempts: %w", name, meetingID, attempt, err)
		}
		if err := e.backoff(ctx, attempt); err != nil {
			return Result{Version: base}, err
		}
		if m.state == nil {
			if err := e.load(ctx, m); err != nil {
				m.state = nil
				return Result{Version: base}, err
			}
		} else if err := e.catchUp(ctx, m); err != nil {
			return Result{Version: m.state.Version()}, err
		}
		fresh = true
	}
}

// refresh catches the meeting up with the store and reports whether that
// brought new events.
func (e *Engine) refresh(ctx context.Context, m *meeting) (bool, error) {
	v := m.state.Version()
	if err := e.catchUp(ctx, m); err != nil {
		return false, err
	}
	m.stale = false
	return m.state.Version() != v, nil
}

// lookup asks the store's command index whether the command with key k,
// unknown to the state's recent window, was stored before: its events, if
// the index has a record within the retention and the log's events from
// the record's version are the command's. A
// record of a version the cached state has not reached makes lookup catch
// up and report again (unless the state is fresh already): decide anew.
func (e *Engine) lookup(ctx context.Context, m *meeting, cmd aggregate.Command, k events.CommandKey, now time.Time, fresh bool) (run []events.Envelope, again bool, err error) {
	rec, ok, err := e.index.FindCommand(ctx, m.id, k)
	if err != nil {
		return nil, false, fmt.Errorf("stage: meeting %s: looking up an idempotency key: %w", m.id, err)
	}
	if !ok || now.Sub(rec.Time) >= e.index.KeyRetention() || rec.Version == 0 {
		return nil, false, nil
	}
	if rec.Version > m.state.Version() {
		if fresh {
			return nil, false, nil // recorded, never appended
		}
		changed, err := e.refresh(ctx, m)
		return nil, changed, err
	}
	// The command's events from the record's version: its own event, or
	// the Lapsed event it recorded first (the command's id and time, no
	// actor) and then its own.
	for ev, err := range e.store.Load(ctx, m.id, rec.Version) {
		if err != nil {
			return nil, false, err
		}
		if ev.Version > m.state.Version() || ev.CommandID != cmd.ID || len(run) == 2 ||
			len(run) == 1 && (run[0].Type != events.TypeLapsed || !run[0].Time.Equal(ev.Time)) {
			break
		}
		run = append(run, ev)
	}
	if len(run) == 0 || run[0].Version != rec.Version || run[len(run)-1].CommandKey() != k {
		return nil, false, nil // the recorded attempt never landed
	}
	return run, false, nil
}

// recorded returns the events of the command the state's window holds at
// versions first..last, with the Lapsed event it recorded just before
// them, if any (the window keys a user's command by its own event: the
// Lapsed event has the command's id and time but no actor). One read.
func (e *Engine) recorded(ctx context.Context, meetingID string, cmd aggregate.Command, first, last uint64) ([]events.Envelope, error) {
	var run []events.Envelope
	for ev, err := range e.store.Load(ctx, meetingID, max(first, 2)-1) {
		if err != nil {
			return nil, err
		}
		if ev.Version > last {
			break
		}
		run = append(run, ev)
	}
	if len(run) > 1 && run[0].Version < first &&
		(run[0].Type != events.TypeLapsed || run[0].CommandID != cmd.ID || !run[0].Time.Equal(run[1].Time)) {
		run = run[1:] // the previous command's event
	}
	for _, ev := range run {
		if ev.CommandID != cmd.ID {
			run = nil // the window matched another id of the actor's (a hash collision)
			break
		}
	}
	if len(run) == 0 || run[len(run)-1].Version != last {
		return nil, fmt.Errorf("stage: meeting %s: events %d..%d of a recorded command are missing from the store", meetingID, first, last)
	}
	return run, nil
}

// now is the event time for the next command: the clock, but never before
// the meeting's last event.
func (e *Engine) now(s *aggregate.State) time.Time {
	now := e.cfg.clock().Round(0)
	if last := s.LastTime(); now.Before(last) {
		return last
	}
	return now
}

func (e *Engine) backoff(ctx context.Context, attempt int) error {
	d := e.cfg.backoffBase << min(attempt-1, 20)
	if d > e.cfg.backoffMax || d <= 0 {
		d = e.cfg.backoffMax
	}
	if d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// original reports the outcome of a command applied before, from its
// events, or ErrKeyReused if they record a different command.
func (e *Engine) original(cmd aggregate.Command, run []events.Envelope) (Result, error) {
	ev := run[len(run)-1]
	if !aggregate.SameCommand(cmd, run) {
		return Result{Version: ev.Version, Seq: ev.Seq}, &aggregate.Error{Command: cmd.Action.Name(), UserID: cmd.Actor, Err: aggregate.ErrKeyReused,
			Reason: fmt.Sprintf("idempotency key %q already recorded %s at version %d; nothing stored", cmd.ID, ev.Type, ev.Version)}
	}
	r := Result{Duplicate: true, Events: run, Version: ev.Version, Seq: ev.Seq}
	var outcome error
	for i := range run {
		r.Rejected = append(r.Rejected, aggregate.RejectionsOf(&run[i])...)
		if err := aggregate.ErrorOf(&run[i]); err != nil {
			outcome = err
		}
	}
	return r, outcome
}

// acquire returns the meeting, locked and loaded.
func (e *Engine) acquire(ctx context.Context, meetingID string) (*meeting, error) {
	m, _, err := e.acquireOr(ctx, meetingID, nil)
	return m, err
}

// acquireOr returns the meeting, locked and loaded; or, for a command
// that may join another's append (req not nil), the result a head gave
// it while it waited in the meeting's queue.
func (e *Engine) acquireOr(ctx context.Context, meetingID string, req *groupReq) (*meeting, *groupResult, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, nil, ErrClosed
	}
	m, ok := e.meetings[meetingID]
	if ok {
		e.lru.MoveToFront(m.elem)
	} else {
		m = &meeting{lock: make(chan struct{}, 1), id: meetingID}
		m.elem = e.lru.PushFront(m)
		e.meetings[meetingID] = m
		e.evict()
	}
	m.users++
	e.mu.Unlock()
	var done chan groupResult // nil (never ready) without req
	if req != nil {
		done = req.done
		m.q.add(req)
	}
	select {
	case m.lock <- struct{}{}:
		if req != nil && !m.q.remove(req) {
			// A head took it into its append, and told it the outcome
			// before releasing the lock.
			<-m.lock
			e.unuse(m)
			r := <-done
			return nil, &r, nil
		}
	case r := <-done:
		e.unuse(m)
		return nil, &r, nil
	case <-ctx.Done():
		if req != nil && !m.q.remove(req) {
			// Taken into an append in flight: its outcome is the
			// command's, whatever the caller's context.
			r := <-done
			e.unuse(m)
			return nil, &r, nil
		}
		e.unuse(m)
		return nil, nil, ctx.Err()
	}
	m.loaded = false
	if m.state == nil {
		if err := e.load(ctx, m); err != nil {
			m.state = nil
			e.release(m)
			return nil, nil, err
		}
		m.loaded = true
	}
	return m, nil, nil
}

// release reschedules the meeting's tick for its state, then unlocks it.
func (e *Engine) release(m *meeting) {
	if m.state != nil {
		e.schedule(m)
		e.maybeSnapshot(m)
		if m.lost == nil {
			m.past.Store(m.state.Version() - min(m.snapVersion, m.state.Version()))
		}
		m.usedAt.Store(time.Now().UnixNano())
	}
	<-m.lock
	e.unuse(m)
}

func (e *Engine) unuse(m *meeting) {
	e.mu.Lock()
	m.users--
	e.evict()
	e.mu.Unlock()
}

// evict drops least recently used meetings that nobody holds until the cache
// is within its bound, sparing those with a tick scheduled while it can. A
// dropped meeting's tick is cancelled; it is reloaded from the store on its
// next use, and its lapses are recorded then. A dropped meeting far enough
// past its latest snapshot gets one, written in the background (see
// [WithSnapshotEvery]). e.mu must be held.
func (e *Engine) evict() {
	for pass := 0; pass < 2 && len(e.meetings) > e.cfg.cacheSize; pass++ {
		for el := e.lru.Back(); el != nil && len(e.meetings) > e.cfg.cacheSize; {
			m := el.Value.(*meeting)
			el = el.Prev()
			if m.users > 0 {
				continue
			}
			m.tmu.Lock()
			armed := !m.timerAt.IsZero()
			if pass == 1 || !armed {
				e.snapshotLeaving(m)
				m.stopped = true
				if m.timer != nil {
					m.timer.Stop()
				}
				e.lru.Remove(m.elem)
				delete(e.meetings, m.id)
			}
			m.tmu.Unlock()
		}
	}
}

// catchUp applies the events stored after the cached state, checking each
// link of the hash chain. On an error the cached state is left as it was
// before the bad event.
func (e *Engine) catchUp(ctx context.Context, m *meeting) error {
	s := m.state
	for ev, err := range e.store.Load(ctx, s.MeetingID(), s.Version()+1) {
		if err != nil {
			return err
		}
		if err := eventstore.CheckNext(&ev, s.Version(), s.LastHash()); err != nil {
			e.cfg.logger.ErrorContext(ctx, "stage: corrupt event", "meeting", s.MeetingID(), "err", err)
			return err
		}
		aggregate.Evolve(s, &ev)
		m.seq = ev.Seq
	}
	return nil
}

// read runs f on the meeting's current state, caught up with the store
// (unless the state was loaded during this call, or the store's follower
// says the cache is current: see WithCachedReads), as it is at the engine
// clock's now: lapses due and not yet recorded are applied (aggregate.At),
// so reads never show an expired status.
func (e *Engine) read(ctx context.Context, command, meetingID string, f func(*aggregate.State) error) error {
	if err := validMeeting(command, meetingID); err != nil {
		return err
	}
	m, err := e.acquire(ctx, meetingID)
	if err != nil {
		return err
	}
	defer e.release(m)
	if !m.loaded && !e.current(m) {
		if err := e.catchUp(ctx, m); err != nil {
			return err
		}
		m.stale = false
	}
	return f(aggregate.At(m.state, e.now(m.state)))
}

// current reports whether the cached state of a meeting the caller holds
// has every event the store's follower reported (WithCachedReads), and
// the follower is current.
func (e *Engine) current(m *meeting) bool {
	return e.following != nil && !m.stale && m.head.Load() <= m.seq && e.following()
}

// appended is the store follower's report of an append: it raises the
// meeting's head if the meeting is cached. A meeting cached later loads
// what the store holds then.
func (e *Engine) appended(meetingID string, seq uint64) {
	e.mu.Lock()
	m := e.meetings[meetingID]
	e.mu.Unlock()
	if m == nil {
		return
	}
	for {
		old := m.head.Load()
		if seq <= old || m.head.CompareAndSwap(old, seq) {
			return
		}
	}
}

// newID returns a UUID v7, falling back to v4 if the clock source fails.
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// noMeeting is the answer of a read of a meeting with no events.
func noMeeting(command string) error {
	return &aggregate.Error{Command: command, Err: aggregate.ErrNoMeeting, Reason: "the meeting has no events"}
}

func invalidID(command, what string, err error) error {
	return &aggregate.Error{Command: command, Err: aggregate.ErrInvalidCommand, Reason: what + ": " + err.Error(), Cause: err}
}

// Status returns userID's stage status in the meeting. A user who is not a
// participant gets an error wrapping aggregate.ErrNotParticipant; in a
// meeting with no events, an error wrapping aggregate.ErrNoMeeting.
func (e *Engine) Status(ctx context.Context, meetingID, userID string) (aggregate.Status, error) {
	if err := events.ValidateID(userID); err != nil {
		return 0, invalidID("Status", "user", err)
	}
	var st aggregate.Status
	err := e.read(ctx, "Status", meetingID, func(s *aggregate.State) error {
		if s.Version() == 0 {
			return noMeeting("Status")
		}
		st = s.Status(userID)
		if st == 0 {
			return &aggregate.Error{Command: "Status", UserID: userID, Err: aggregate.ErrNotParticipant, Reason: "not in the meeting"}
		}
		return nil
	})
	return st, err
}

// Roster returns the meeting's current roster. A meeting with no events
// is no meeting: an error wrapping aggregate.ErrNoMeeting.
func (e *Engine) Roster(ctx context.Context, meetingID string) (projections.Roster, error) {
	var r projections.Roster
	err := e.read(ctx, "Roster", meetingID, func(s *aggregate.State) error {
		if s.Version() == 0 {
			return noMeeting("Roster")
		}
		r = projections.RosterOf(s)
		return nil
	})
	return r, err
}

// GetAccessRequests returns the meeting's pending requests, oldest first.
// Only a host may list them (else an error wrapping
// aggregate.ErrPermissionDenied); a meeting with no events is no meeting
// (an error wrapping aggregate.ErrNoMeeting).
func (e *Engine) GetAccessRequests(ctx context.Context, meetingID, actorID string) ([]projections.AccessRequest, error) {
	var out []projections.AccessRequest
	err := e.read(ctx, "GetAccessRequests", meetingID, func(s *aggregate.State) error {
		if err := aggregate.CanListRequests(s, actorID); err != nil {
			return err
		}
		out = projections.Requests(s)
		return nil
	})
	return out, err
}
