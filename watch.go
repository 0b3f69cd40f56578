package stage

import (
	"context"
	"iter"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

// Watch follows a meeting and yields the client notifications its events
// cause (see [projections.Notify]): each recipient's stage status updates,
// approvals and rejections, and the hosts' request updates, so a backend can
// forward them over its own sockets.
//
// fromVersion is the first meeting version to notify about: 1 replays the
// meeting from its start, v+1 resumes after a notification of version v,
// and 0 means only events stored after Watch has caught up. Watch reads the
// store, not the engine's cache, so it sees what every writer appended.
//
// The sequence ends when the caller stops ranging or ctx is done (it then
// yields ctx's error once), or after yielding a store error or an error
// wrapping eventstore.ErrCorrupt for an event that breaks the hash chain.
//
// Watch reads only the watched meeting's events when the store implements
// [eventstore.MeetingSubscriber] (the in-memory store and the JetStream
// store do; on JetStream each watcher is an ordered consumer filtered on
// the meeting's subject): a watcher then costs the same however many other
// meetings the store holds or writes. With another store it follows the
// whole log ([eventstore.Store.Subscribe]) and skips the other meetings'
// events, and a meeting with no events yet costs a read of the whole log.
func (e *Engine) Watch(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[projections.Notification, error] {
	return func(yield func(projections.Notification, error) bool) {
		if err := validMeeting("Watch", meetingID); err != nil {
			yield(projections.Notification{}, err)
			return
		}
		s := aggregate.NewState(meetingID)
		live := fromVersion != 0
		var last uint64 // Seq of the last event applied
		apply := func(ev *events.Envelope) bool {
			if err := eventstore.CheckNext(ev, s.Version(), s.LastHash()); err != nil {
				yield(projections.Notification{}, err)
				return false
			}
			last = max(last, ev.Seq)
			if !live || ev.Version < fromVersion {
				aggregate.Evolve(s, ev)
				return true
			}
			// Applies ev: the cost of the users it names, not the meeting's.
			for _, n := range projections.NotifyStep(s, ev) {
				if !yield(n, nil) {
					return false
				}
			}
			return true
		}
		for ev, err := range e.store.Load(ctx, meetingID, 1) {
			if err != nil {
				yield(projections.Notification{}, err)
				return
			}
			if !apply(&ev) {
				return
			}
		}
		live = true
		if fromVersion == 0 {
			fromVersion = s.Version() + 1
		}
		if ms, ok := e.store.(eventstore.MeetingSubscriber); ok {
			for ev, err := range ms.SubscribeMeeting(ctx, meetingID, s.Version()+1) {
				if err != nil {
					yield(projections.Notification{}, err)
					return
				}
				if !apply(&ev) {
					return
				}
			}
			return
		}
		for ev, err := range e.store.Subscribe(ctx, last+1) {
			if err != nil {
				yield(projections.Notification{}, err)
				return
			}
			if ev.MeetingID != meetingID || ev.Version <= s.Version() {
				continue
			}
			if !apply(&ev) {
				return
			}
		}
	}
}
