package stage

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// Commands of one meeting, many at a time.
//
// Commands of a meeting run one at a time under its lock, and each used to
// be one append: one round trip (and, syncing before each
// acknowledgement, one fsync) per command, whatever the number of callers.
// Now a command without a caller's idempotency key that arrives while
// another command holds the meeting joins the meeting's queue; the command
// holding the lock (the head), once it has decided, takes the queued
// commands that the rules accept as they stand on the state its own events
// leave (in queue order, each on the state the previous one leaves), seals
// their events after its own, and appends them all at once: all stored or
// none, each event with its own version and hash, each command with its own
// result. A queued command the rules do not simply accept (a rejection, a
// duplicate, a Join on a full stage) stays queued and runs on its own,
// with the whole of Execute's logic, when it gets the lock. A failed guard
// re-decides everything: the group's members go back to waiting. Commands
// with a caller's idempotency key run on their own (they are recorded in
// the command index before their append).

// maxGroupEvents bounds the events of one grouped append (a store takes at
// most natsstore.MaxBatch in one).
const maxGroupEvents = 256

// groupReq is a command waiting in a meeting's queue.
type groupReq struct {
	cmd     aggregate.Command
	name    string
	firstID [16]byte
	done    chan groupResult // buffered: the head never blocks on it
	claimed bool             // taken by a head (the meeting's qmu guards it)
}

// groupResult is what a head tells a member: its result and error, or
// retry (the group's append met a conflict: run again).
type groupResult struct {
	res   Result
	err   error
	retry bool
}

// queue is a meeting's commands waiting to join a head's append.
type queue struct {
	mu   sync.Mutex
	reqs []*groupReq
}

func (q *queue) add(r *groupReq) {
	q.mu.Lock()
	q.reqs = append(q.reqs, r)
	q.mu.Unlock()
}

// remove takes r out of the queue, and reports false if a head claimed it
// first (its result is then on r.done, or soon is).
func (q *queue) remove(r *groupReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r.claimed {
		return false
	}
	for i, x := range q.reqs {
		if x == r {
			q.reqs = slices.Delete(q.reqs, i, i+1) // clears the vacated slot
			break
		}
	}
	if len(q.reqs) == 0 {
		q.reqs = nil // an idle meeting holds no queue
	}
	return true
}

// member is a queued command a head took into its append.
type member struct {
	req    *groupReq
	events []events.Envelope
	rej    []aggregate.Rejection
}

// appendCost learns what one append of one event costs the store, to
// group only when that pays: when each append waits for the disk (the
// embedded default syncs before it acknowledges: about 280 us here), one
// append of many events is much cheaper per event; when an append is fast
// (lazy sync, about 25 us; the Memory store), JetStream's atomic batch
// (staged by the server: 2.3 ms for 3 events) costs more per event than
// appending them one by one, at every group size measured (64 and 256
// callers on one meeting).
//
// The estimate is the fastest of the last few single-event appends: load
// only adds to an append's time (waiting for a core), never takes from
// it. While grouping, one head in probeEvery appends alone, so that the
// estimate follows the store (a server that stops syncing, a disk that
// got faster).
type appendCost struct {
	always atomic.Bool // tests: group whatever appends cost

	mu      sync.Mutex
	samples [8]time.Duration
	n       int // samples taken
	heads   int // appends that could have grouped, for the probes
}

// groupAbove is the single-event append time above which grouping pays.
const groupAbove = 100 * time.Microsecond

// probeEvery: while grouping, one append in probeEvery goes alone.
const probeEvery = 128

// observe records how long an append of one event took.
func (c *appendCost) observe(d time.Duration) {
	c.mu.Lock()
	c.samples[c.n%len(c.samples)] = d
	c.n++
	c.mu.Unlock()
}

// worth reports whether a head with commands queued behind it should take
// them into its append: appends are slow (or not known yet), and this is
// not a probe.
func (c *appendCost) worth() bool {
	if c.always.Load() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n < len(c.samples)/2 {
		return true // not known yet
	}
	fastest := c.samples[0]
	for _, d := range c.samples[:min(c.n, len(c.samples))] {
		fastest = min(fastest, d)
	}
	if fastest < groupAbove {
		return false
	}
	c.heads++
	return c.heads%probeEvery != 0
}

// gather takes queued commands into the head's append. When commands are
// queued, it applies the head's sealed events to the meeting's state
// (applied true), then decides each queued command on the state so far and
// keeps those the rules accept as they stand, applying and sealing their
// events. It returns every event to append (the head's first) and the
// members. The caller holds the meeting's lock; once applied, the state is
// ahead of the store until the append succeeds (on failure the caller
// reloads it).
func (e *Engine) gather(m *meeting, head []events.Envelope) (all []events.Envelope, members []member, applied bool) {
	m.q.mu.Lock()
	defer m.q.mu.Unlock()
	if len(m.q.reqs) == 0 || len(head) >= maxGroupEvents || !e.cost.worth() {
		return head, nil, false
	}
	for i := range head {
		aggregate.Evolve(m.state, &head[i])
	}
	all = head
	kept := m.q.reqs[:0]
	for _, r := range m.q.reqs {
		if ok := len(all) < maxGroupEvents && e.join(m, r, &all, &members); !ok {
			kept = append(kept, r) // runs on its own, as a head
		}
	}
	clear(m.q.reqs[len(kept):])
	m.q.reqs = kept
	if len(kept) == 0 {
		m.q.reqs = nil
	}
	return all, members, true
}

// join decides r on the meeting's state and, if the rules accept it as it
// stands, seals and applies its events and adds it to the group.
func (e *Engine) join(m *meeting, r *groupReq, all *[]events.Envelope, members *[]member) bool {
	d, err := aggregate.Decide(m.state, r.cmd, e.now(m.state))
	if err != nil || d.Duplicate || d.Err != nil || len(d.Events) == 0 || len(*all)+len(d.Events) > maxGroupEvents {
		return false
	}
	prev := m.state.LastHash()
	for i := range d.Events {
		ev := &d.Events[i]
		ev.ID = r.firstID
		if i > 0 {
			ev.ID = newID()
		}
		if ev.Seal(prev) != nil {
			return false
		}
		prev = ev.Hash
	}
	for i := range d.Events {
		aggregate.Evolve(m.state, &d.Events[i])
	}
	r.claimed = true
	*all = append(*all, d.Events...)
	*members = append(*members, member{req: r, events: d.Events, rej: d.Rejected})
	return true
}

// finish tells each member the outcome of the group's append: on success
// (err nil) its own result, its events' positions counted back from pos,
// the position of the last event; on a conflict, to run again; otherwise
// the error, as its own.
func finish(meetingID string, members []member, pos uint64, err error, conflict bool) {
	if len(members) == 0 {
		return
	}
	if err != nil {
		for _, mb := range members {
			if conflict {
				mb.req.done <- groupResult{retry: true}
			} else {
				mb.req.done <- groupResult{err: fmt.Errorf("stage: %s on meeting %s: %w", mb.req.name, meetingID, err)}
			}
		}
		return
	}
	// The events of one append have consecutive positions: walk back
	// from the last.
	seq := pos
	for i := len(members) - 1; i >= 0; i-- {
		evs := members[i].events
		for j := len(evs) - 1; j >= 0; j-- {
			evs[j].Seq = seq
			seq--
		}
	}
	for _, mb := range members {
		last := mb.events[len(mb.events)-1]
		mb.req.done <- groupResult{res: Result{Version: last.Version, Events: mb.events, Rejected: mb.rej, Seq: last.Seq}}
	}
}
