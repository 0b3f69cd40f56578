package stage

import "github.com/productdb/stage/aggregate"

// CachedStateForTest returns a copy of the engine's cached state of the
// meeting (nil when it holds none), for tests that compare it with a replay.
func (e *Engine) CachedStateForTest(meetingID string) *aggregate.State {
	e.mu.Lock()
	m := e.meetings[meetingID]
	e.mu.Unlock()
	if m == nil {
		return nil
	}
	m.lock <- struct{}{}
	defer func() { <-m.lock }()
	if m.state == nil {
		return nil
	}
	return m.state.Clone()
}

// GroupAlwaysForTest makes the engine group queued commands whatever its
// appends cost, for tests whose store is fast.
func (e *Engine) GroupAlwaysForTest() { e.cost.always.Store(true) }
