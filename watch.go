package stage

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

// Watch follows a meeting and yields the client notifications its events
// cause (see [projections.Notify] and docs/notifications.md): each
// recipient's stage status updates, approvals, invitations and rejections,
// the hosts' request updates, and the stage roster changes for everyone, so
// a backend can forward them over its own sockets (or hand the meeting to a
// [Router], which watches it once for all its users).
//
// fromVersion is the first meeting version to notify about: 1 replays the
// meeting from its start, v+1 resumes after the notifications of version v,
// and 0 means only events stored after Watch has caught up. To resume
// after one notification of a version shared by several, use
// [Engine.WatchAfter] with its ID. Watch reads the store, not the engine's
// cache, so it sees what every writer appended.
//
// Once caught up with the store, Watch yields one notification of type
// [projections.Live]: its Version is the meeting version it caught up to,
// and every notification of a later event follows. "Subscribe, then act"
// is race-free that way: a command issued after the Live notification was
// received is always notified (a command issued before may be part of the
// catch-up, and with fromVersion 0 then not notified). Its ID is the
// resume point: WatchAfter from it misses nothing.
//
// The sequence ends when the caller stops ranging; when ctx is done (it
// then yields ctx's error once); when the Engine is closed (it then yields
// [ErrClosed] once, also while it waits for events); when the store is
// closed under it (an error wrapping both ErrClosed and
// eventstore.ErrClosed); or after yielding a store error or an error
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
	var after projections.NotificationID
	if fromVersion > 0 {
		after = projections.NotificationID{Version: fromVersion - 1, Index: -1}
	}
	return e.watch(ctx, "Watch", meetingID, after, fromVersion == 0)
}

// WatchAfter is [Engine.Watch] resuming after the notification whose ID is
// lastID (as a [projections.Notification] carries it, and as SSE's
// Last-Event-ID sends it back): it skips every notification up to and
// including that one and yields the rest, then the Live notification, then
// the live ones. lastID may also be the ID of a Live notification ("<v>":
// everything of version v was delivered), "0" for the meeting's whole story,
// or "" for only what is stored after it has caught up (Watch with
// fromVersion 0). Ids are explained in [projections.NotificationID].
//
// An id that does not parse yields an error wrapping
// aggregate.ErrInvalidCommand and projections.ErrInvalidNotificationID.
func (e *Engine) WatchAfter(ctx context.Context, meetingID, lastID string) iter.Seq2[projections.Notification, error] {
	after, err := projections.ParseNotificationID(lastID)
	if err != nil {
		return func(yield func(projections.Notification, error) bool) {
			yield(projections.Notification{}, &aggregate.Error{Command: "WatchAfter", Err: aggregate.ErrInvalidCommand,
				Reason: "last notification id: " + err.Error(), Cause: err})
		}
	}
	return e.watch(ctx, "WatchAfter", meetingID, after, lastID == "")
}

// watch yields the notifications after the ones after covers (all of those
// of the catch-up when fromNow), then Live, then the live ones.
func (e *Engine) watch(ctx context.Context, name, meetingID string, after projections.NotificationID, fromNow bool) iter.Seq2[projections.Notification, error] {
	return func(yield func(projections.Notification, error) bool) {
		if err := validMeeting(name, meetingID); err != nil {
			yield(projections.Notification{}, err)
			return
		}
		if e.tickCtx.Err() != nil {
			yield(projections.Notification{}, ErrClosed)
			return
		}
		// Close cancels tickCtx: it ends the watch with ErrClosed.
		wctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		defer context.AfterFunc(e.tickCtx, func() { cancel(ErrClosed) })()
		fail := func(err error) {
			switch {
			case ctx.Err() != nil:
				err = ctx.Err()
			case errors.Is(context.Cause(wctx), ErrClosed):
				err = ErrClosed
			case errors.Is(err, eventstore.ErrClosed):
				err = fmt.Errorf("%w: %w", ErrClosed, err) // the store was closed under it
			}
			yield(projections.Notification{}, err)
		}

		s := aggregate.NewState(meetingID)
		catching := fromNow
		var last uint64 // Seq of the last event applied
		apply := func(ev *events.Envelope) bool {
			if err := eventstore.CheckNext(ev, s.Version(), s.LastHash()); err != nil {
				yield(projections.Notification{}, err)
				return false
			}
			last = max(last, ev.Seq)
			if catching || ev.Version < after.Version || ev.Version == after.Version && after.Index < 0 {
				aggregate.Evolve(s, ev)
				return true
			}
			// Applies ev: the cost of the users it names, not the meeting's.
			for i, n := range projections.NotifyStep(s, ev) {
				if after.Covers(ev.Version, i) {
					continue
				}
				if !yield(n, nil) {
					return false
				}
			}
			return true
		}
		for ev, err := range e.store.Load(wctx, meetingID, 1) {
			if err != nil {
				fail(err)
				return
			}
			if !apply(&ev) {
				return
			}
		}
		catching = false
		if fromNow || after.Version < s.Version() || after.Version == s.Version() && after.Index >= 0 {
			after = projections.NotificationID{Version: s.Version(), Index: -1}
		}
		live := projections.Notification{ID: after.String(), Type: projections.Live, Recipient: projections.Everyone,
			MeetingID: meetingID, Version: s.Version(), Time: s.LastTime()}
		if !yield(live, nil) {
			return
		}
		if ms, ok := e.store.(eventstore.MeetingSubscriber); ok {
			for ev, err := range ms.SubscribeMeeting(wctx, meetingID, s.Version()+1) {
				if err != nil {
					fail(err)
					return
				}
				if !apply(&ev) {
					return
				}
			}
			return
		}
		for ev, err := range e.store.Subscribe(wctx, last+1) {
			if err != nil {
				fail(err)
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
