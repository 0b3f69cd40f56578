package stage

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// DefaultSubscriberBuffer is the number of notifications a [Subscription]
// holds for its reader unless [WithSubscriberBuffer] says otherwise.
const DefaultSubscriberBuffer = 256

// ErrSlowConsumer ends a [Subscription] whose reader fell a whole buffer
// behind: the router dropped it rather than wait for it. Its client
// reconnects and resumes after the last notification ID it received
// ([Router.Subscribe] or [Engine.WatchAfter] with that ID).
var ErrSlowConsumer = errors.New("stage: subscriber too slow: its buffer was full")

// ErrRouterClosed ends the subscriptions of a [Router] that was closed, and
// is returned by Subscribe on it.
var ErrRouterClosed = errors.New("stage: router closed")

// RouterOption configures a [Router].
type RouterOption func(*routerConfig) error

type routerConfig struct{ buffer int }

// WithSubscriberBuffer sets how many notifications each subscription holds
// for its reader (default [DefaultSubscriberBuffer]; at least 1). A
// subscription that would need more is ended with [ErrSlowConsumer].
func WithSubscriberBuffer(n int) RouterOption {
	return func(c *routerConfig) error {
		if n < 1 {
			return fmt.Errorf("stage: WithSubscriberBuffer(%d): must be at least 1", n)
		}
		c.buffer = n
		return nil
	}
}

// Router follows one meeting with a single [Engine.Watch] and hands each
// notification to the subscriptions of its recipient: one subscription per
// meeting for the whole backend, and a cheap stream per user (an SSE
// connection, a socket). A notification for one user costs a map lookup
// and a send per subscription of that user, however many others are
// subscribed; one for [projections.Everyone] (the stage roster, one per
// event that changes the stage; the stage's phase; the requests switch)
// goes to every subscription.
//
// Slow consumers: each subscription has a bounded buffer
// ([WithSubscriberBuffer]); the router never waits for a reader. A
// subscription whose buffer is full when a notification comes is ended:
// its channel is closed and its Err is [ErrSlowConsumer]. Its client
// resumes after the last ID it received.
//
// A Router ends when it is closed ([ErrRouterClosed]), when its Engine is
// closed ([ErrClosed]), or on a store error; its subscriptions end with
// the same error. A Router is safe for concurrent use.
type Router struct {
	e       *Engine
	meeting string
	buffer  int
	cancel  context.CancelFunc
	done    chan struct{} // closed when the watch has ended
	ready   chan struct{} // closed once live (or ended)

	mu     sync.Mutex
	users  map[string][]*Subscription // by user id; Everyone-only ones under ""
	all    []*Subscription            // every open subscription; s.at is its index
	pos    projections.NotificationID // the last notification routed
	posID  string                     // pos as text
	isLive bool
	err    error // why it ended; nil while it runs
}

// Subscription is one reader's stream of a [Router]: one user's
// notifications and everyone's, in order, after a first [projections.Live]
// notification. Read it from C; when C is closed, Err says why.
type Subscription struct {
	r     *Router
	user  string
	c     chan projections.Notification
	after projections.NotificationID // notifications it covers are not delivered

	// Guarded by r.mu.
	ended   bool
	at      int // index in r.all
	err     error
	pending []projections.Notification // live ones held while it catches up
	catchUp bool
	stop    context.CancelFunc // ends the catch-up
	unhook  func() bool        // stops watching Subscribe's ctx
}

// NewRouter starts a Router on meetingID, following it from now on. It
// returns an error wrapping aggregate.ErrInvalidCommand for an invalid
// meeting id, [ErrClosed] after Close, or an option's error. Close it when
// done.
func (e *Engine) NewRouter(meetingID string, opts ...RouterOption) (*Router, error) {
	if err := validMeeting("NewRouter", meetingID); err != nil {
		return nil, err
	}
	cfg := routerConfig{buffer: DefaultSubscriberBuffer}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if e.tickCtx.Err() != nil {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := newRouter(e, meetingID, cfg.buffer)
	r.cancel = cancel
	go func() {
		defer close(r.done)
		for n, err := range e.Watch(ctx, meetingID, 0) {
			if err != nil {
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					err = ErrRouterClosed
				}
				r.end(err)
				return
			}
			r.route(n)
		}
		r.end(ErrRouterClosed)
	}()
	return r, nil
}

func newRouter(e *Engine, meetingID string, buffer int) *Router {
	return &Router{e: e, meeting: meetingID, buffer: buffer, done: make(chan struct{}), ready: make(chan struct{}),
		users: map[string][]*Subscription{}, cancel: func() {}}
}

// route hands n to its recipients' subscriptions (to all for Everyone).
func (r *Router) route(n projections.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n.Type == projections.Live {
		r.pos, r.posID, r.isLive = projections.NotificationID{Version: n.Version, Index: -1}, n.ID, true
		close(r.ready)
		return
	}
	if n.Version == r.pos.Version && r.pos.Index >= 0 {
		r.pos.Index++
	} else {
		r.pos = projections.NotificationID{Version: n.Version}
	}
	r.posID = n.ID
	if n.Recipient == projections.Everyone {
		for i := len(r.all) - 1; i >= 0; i-- { // backwards, as below
			r.deliver(r.all[i], n)
		}
		return
	}
	// Backwards: deliver may drop subs[i], moving the last one into its place.
	subs := r.users[n.Recipient]
	for i := len(subs) - 1; i >= 0; i-- {
		r.deliver(subs[i], n)
	}
}

// deliver sends n to s without waiting, or ends s; r.mu is held.
func (r *Router) deliver(s *Subscription, n projections.Notification) {
	if s.after.Covers(n.Version, r.pos.Index) {
		return
	}
	if s.catchUp {
		if len(s.pending) < r.buffer {
			s.pending = append(s.pending, n)
			return
		}
	} else {
		select {
		case s.c <- n:
			return
		default:
		}
	}
	r.drop(s, ErrSlowConsumer)
}

// drop ends s with err; r.mu is held.
func (r *Router) drop(s *Subscription, err error) {
	if s.ended {
		return
	}
	s.ended, s.err = true, err
	if s.stop != nil {
		s.stop()
	}
	if s.unhook != nil {
		s.unhook()
	}
	last := r.all[len(r.all)-1]
	r.all[s.at], last.at = last, s.at
	r.all[len(r.all)-1] = nil
	r.all = r.all[:len(r.all)-1]
	subs := r.users[s.user]
	for i, o := range subs {
		if o == s {
			subs[i] = subs[len(subs)-1]
			subs[len(subs)-1] = nil
			subs = subs[:len(subs)-1]
			break
		}
	}
	if len(subs) == 0 {
		delete(r.users, s.user)
	} else {
		r.users[s.user] = subs
	}
	if !s.catchUp {
		close(s.c)
	}
}

// end ends the router and its subscriptions with err.
func (r *Router) end(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	r.err = err
	if !r.isLive {
		close(r.ready)
	}
	for len(r.all) > 0 {
		r.drop(r.all[len(r.all)-1], err)
	}
}

// Subscribe opens a stream of userID's notifications (and everyone's):
// its first is a [projections.Live] notification whose ID is where it
// starts, then every later notification of userID or [projections.Everyone],
// in order. userID [projections.Everyone] subscribes to everyone's only (an
// anonymous viewer).
//
// lastID resumes a client that already received notifications (SSE's
// Last-Event-ID): the subscription first yields userID's and everyone's
// notifications after lastID, read from the store, then Live, then the
// live ones, with no gap and no duplicate. "" starts from now.
//
// Subscribe waits (bounded by ctx) until the router is live; the
// subscription then lasts until ctx is done (Err is then ctx's error), its
// Close, or the router's end. It returns an
// error wrapping aggregate.ErrInvalidCommand for an invalid user id or
// lastID, the router's error once it has ended, or ctx's error.
func (r *Router) Subscribe(ctx context.Context, userID, lastID string) (*Subscription, error) {
	if userID != projections.Everyone {
		if err := events.ValidateID(userID); err != nil {
			return nil, invalidID("Subscribe", "user", err)
		}
	}
	after, err := projections.ParseNotificationID(lastID)
	if err != nil {
		return nil, &aggregate.Error{Command: "Subscribe", Err: aggregate.ErrInvalidCommand, Reason: "last notification id: " + err.Error(), Cause: err}
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	s := &Subscription{r: r, user: userID, c: make(chan projections.Notification, r.buffer), after: r.pos}
	if lastID != "" && !atOrPast(after, r.pos) {
		// Behind the router: catch up from the store up to r.pos.
		cctx, stop := context.WithCancel(context.Background())
		s.catchUp, s.stop = true, stop
		go s.catchUpFrom(cctx, lastID, r.pos, r.posID)
	} else {
		if lastID != "" {
			s.after = after // at or past the router: skip up to lastID
		}
		s.c <- projections.Notification{ID: r.posID, Type: projections.Live, Recipient: projections.Everyone,
			MeetingID: r.meeting, Version: r.pos.Version}
	}
	s.at = len(r.all)
	r.all = append(r.all, s)
	s.unhook = context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.drop(s, ctx.Err())
	})
	r.users[userID] = append(r.users[userID], s)
	return s, nil
}

// atOrPast reports whether a client that received every notification up
// to after has everything the router routed up to pos. A pos with a
// negative Index (a live point: every notification of its version) is
// reached only by an id of a later version or the same whole version;
// Covers alone would take "v.0" for at "v" and skip the rest of v.
func atOrPast(after, pos projections.NotificationID) bool {
	if pos.Index < 0 {
		return after.Version > pos.Version || after.Version == pos.Version && after.Index < 0
	}
	return after.Covers(pos.Version, pos.Index)
}

// catchUpFrom sends s's notifications after lastID up to pos, read from
// the store, then Live, then the ones routed meanwhile.
func (s *Subscription) catchUpFrom(ctx context.Context, lastID string, pos projections.NotificationID, posID string) {
	r := s.r
	fail := func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !s.ended {
			r.drop(s, err)
		}
		close(s.c)
	}
	send := func(n projections.Notification) bool {
		select {
		case s.c <- n:
			return true
		case <-ctx.Done():
			fail(ErrRouterClosed)
			return false
		}
	}
	for n, err := range r.e.WatchAfter(ctx, r.meeting, lastID) {
		if err != nil {
			fail(err)
			return
		}
		if n.Type == projections.Live {
			break
		}
		id, _ := projections.ParseNotificationID(n.ID)
		if !pos.Covers(id.Version, id.Index) {
			break
		}
		if (n.Recipient == s.user || n.Recipient == projections.Everyone) && !send(n) {
			return
		}
	}
	if !send(projections.Notification{ID: posID, Type: projections.Live, Recipient: projections.Everyone,
		MeetingID: r.meeting, Version: pos.Version}) {
		return
	}
	for {
		r.mu.Lock()
		if s.ended {
			r.mu.Unlock()
			close(s.c)
			return
		}
		batch := s.pending
		s.pending = nil
		if len(batch) == 0 {
			s.catchUp = false // route sends to s.c from now on
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for _, n := range batch {
			if !send(n) {
				return
			}
		}
	}
}

// C returns the subscription's notifications. It is closed when the
// subscription ends; Err then says why.
func (s *Subscription) C() <-chan projections.Notification { return s.c }

// Err returns why the subscription ended: [ErrSlowConsumer],
// [ErrRouterClosed], [ErrClosed], a store error, the error of Subscribe's
// ctx, or nil while it runs or after its own Close.
func (s *Subscription) Err() error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return s.err
}

// Close ends the subscription (its channel is closed). It is idempotent.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if !s.ended {
		s.r.drop(s, nil)
	}
}

// Close stops the router: its watch ends, and its subscriptions end with
// [ErrRouterClosed]. It waits for the watch to end. Close is idempotent.
func (r *Router) Close() error {
	r.cancel()
	<-r.done
	return nil
}

// Done is closed when the router has ended; Err then says why.
func (r *Router) Done() <-chan struct{} { return r.done }

// Err returns why the router ended ([ErrRouterClosed], [ErrClosed], a
// store error), or nil while it runs.
func (r *Router) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Subscribers returns the number of open subscriptions.
func (r *Router) Subscribers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}
