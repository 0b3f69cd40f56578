package eventstore

import (
	"context"
	"iter"

	"github.com/productdb/stage/events"
)

// MeetingSubscriber is implemented by stores that can follow one meeting
// without reading the others: a watcher of one meeting then costs the
// store work for that meeting's events only, however many meetings the log
// holds and however busy they are. The engine checks for it with a type
// assertion (as it does for [Snapshotter]) and falls back to
// [Store.Subscribe], filtering, when a store lacks it.
type MeetingSubscriber interface {
	// SubscribeMeeting yields the meeting's events with Version >=
	// fromVersion (0 counts as 1), in version order, and then each new
	// event of the meeting as it is stored, with no gap and no duplicate,
	// until ctx is done (it then yields ctx's error once) or the caller
	// stops the iteration. Each event has its Seq set. A meeting with no
	// events yet yields nothing until its first is stored; reading its
	// events never reads the other meetings'.
	//
	// A meeting id that is not valid yields an error wrapping
	// events.ErrInvalidID. Stores that check what they read (the
	// JetStream store) end the iteration with a [*CorruptError] for an
	// event that does not decode, does not match its hash, or does not
	// follow the previous one yielded in version and hash chain; the link
	// of the first event yielded to the one before fromVersion is the
	// caller's to check, as with [Store.Load].
	SubscribeMeeting(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[events.Envelope, error]
}
