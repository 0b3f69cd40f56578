package stage

import (
	"context"
	"errors"
	"time"

	"github.com/productdb/stage/aggregate"
)

// tickRetry is how long the scheduler waits before retrying a tick that
// failed (a store error, say).
const tickRetry = time.Second

// Tick records every lapse due in the meeting at the engine clock's now
// (expired invitations, ended speaking slots, lapsed seat offers, ended
// reconnect graces and bans) as one Lapsed event, and returns it in
// Result.Events; with nothing due it appends nothing and returns the
// meeting's version. The Engine ticks each meeting it holds by itself at its
// next deadline (see [WithAutoTick]); call Tick to record lapses at a time of
// your choosing, e.g. with a test clock. Ticks are decided on the state
// caught up with the store and appended with the optimistic version guard,
// so several Engines ticking one meeting record each lapse once.
func (e *Engine) Tick(ctx context.Context, meetingID string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.Tick{}})
}

// schedule sets the meeting's tick timer to its state's next deadline (or
// stops it when nothing is pending). The caller holds the meeting's lock;
// with every policy off it costs a few comparisons and an uncontended lock.
func (e *Engine) schedule(m *meeting) {
	if !e.cfg.autoTick {
		return
	}
	next := aggregate.NextDeadline(m.state)
	m.tmu.Lock()
	defer m.tmu.Unlock()
	if m.stopped {
		return
	}
	if next.IsZero() {
		if m.timer != nil && !m.timerAt.IsZero() {
			m.timer.Stop()
			m.timerAt = time.Time{}
		}
		return
	}
	if m.timerAt.Equal(next) {
		return
	}
	m.timerAt = next
	wait := max(next.Sub(e.cfg.clock()), 0)
	if m.timer == nil {
		id := m.id
		m.timer = time.AfterFunc(wait, func() { e.fire(id) })
		return
	}
	m.timer.Reset(wait)
}

// fire runs a scheduled tick.
func (e *Engine) fire(meetingID string) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	m := e.meetings[meetingID] // nil if evicted since the timer fired: Tick reloads it
	e.ticking.Add(1)
	e.mu.Unlock()
	defer e.ticking.Done()
	if m != nil {
		m.tmu.Lock()
		m.timerAt = time.Time{} // the tick's schedule re-arms the timer
		m.tmu.Unlock()
	}

	ctx := e.tickCtx
	res, err := e.Tick(ctx, meetingID)
	switch {
	case err == nil:
		if len(res.Events) > 0 {
			e.cfg.logger.DebugContext(ctx, "stage: tick recorded lapses", "meeting", meetingID, "version", res.Version)
		}
	case errors.Is(err, ErrClosed) || ctx.Err() != nil:
	default:
		e.cfg.logger.WarnContext(ctx, "stage: scheduled tick failed; retrying", "meeting", meetingID, "err", err, "retry", tickRetry)
		if m == nil {
			return
		}
		m.tmu.Lock()
		if !m.stopped {
			m.timerAt = time.Time{}
			m.timer.Reset(tickRetry)
		}
		m.tmu.Unlock()
	}
}
