// Package eventstore stores the stage's events: the [Store] interface that the
// engine, projections and replay use, [Memory] (the in-process embedded
// default), and, in sub-packages, the JetStream store and the conformance
// suite (storetest) that every implementation passes.
//
// # Contract
//
// A store holds, per meeting, an ordered log of sealed [events.Envelope]s
// with versions 1, 2, 3, ... and no gap, and across meetings one global order
// in which every event has a position (its Seq, starting at 1, increasing,
// not necessarily dense). Appends are atomic and optimistic: all of a
// command's events are stored, or none, and only if the meeting's version is
// still the one the caller decided on.
//
// Events passed to Append and events yielded by reads are shared, not
// copied: callers must not modify them (their payloads included).
package eventstore

import (
	"context"
	"errors"
	"iter"

	"github.com/productdb/stage/events"
)

// ErrConflict is returned by Append when the meeting's current version is
// not the expected version: another writer appended first. Nothing was
// stored; catch up and decide again.
var ErrConflict = errors.New("eventstore: version conflict")

// ErrInvalidEvents is returned (wrapped) by Append for events that must not
// be stored: none at all, a bad meeting id, an event of another meeting,
// versions that do not follow the expected version one by one, or an event
// that fails [events.Envelope.Validate]. Nothing was stored.
var ErrInvalidEvents = errors.New("eventstore: invalid events")

// ErrClosed is returned by a store that has been closed.
var ErrClosed = errors.New("eventstore: closed")

// Store is an append-only event log, partitioned by meeting. Implementations
// are safe for concurrent use.
type Store interface {
	// Append stores evs as the meeting's next events, atomically, if the
	// meeting's current version is expectedVersion (0 for a new meeting); the
	// events' versions must be expectedVersion+1, +2, .... It returns the
	// global position (Seq) of the last event stored. On a version mismatch
	// it returns ErrConflict and stores nothing. An error other than
	// ErrConflict may be ambiguous (the events may or may not be stored, as
	// with a lost acknowledgement): catch up with Load to find out. A store
	// should say which: wrap [ErrNotStored] when nothing was stored,
	// [ErrOutcomeUnknown] when it may have been, and [ErrUnavailable] too
	// when no server or leader could be reached (see [WriteOutcome] for
	// how an error that says nothing is taken).
	Append(ctx context.Context, meetingID string, expectedVersion uint64, evs []events.Envelope) (uint64, error)

	// Load yields the meeting's events with Version >= fromVersion, in
	// version order, up to the last one stored when the read began. A meeting
	// with no events yields nothing. Each event has its Seq set.
	Load(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[events.Envelope, error]

	// ReadAll yields the events of every meeting with Seq >= from, in global
	// order, up to the last one stored when the read began.
	ReadAll(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error]

	// Subscribe yields the events of every meeting with Seq >= from, in
	// global order, and then each new event as it is stored, with no gap and
	// no duplicate, until ctx is done (it then yields ctx's error once) or
	// the caller stops the iteration.
	Subscribe(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error]
}

// CheckAppend validates an Append call's arguments as every store must:
// a valid meeting id, at least one event, each event well formed, of this
// meeting, with versions expectedVersion+1, +2, .... Errors wrap
// [ErrInvalidEvents]. Store implementations call it first.
func CheckAppend(meetingID string, expectedVersion uint64, evs []events.Envelope) error {
	if err := events.ValidateID(meetingID); err != nil {
		return errors.Join(ErrInvalidEvents, err)
	}
	if len(evs) == 0 {
		return invalid("no events to append")
	}
	for i := range evs {
		e := &evs[i]
		if e.MeetingID != meetingID {
			return invalid("event %d belongs to meeting %q, not %q", i, e.MeetingID, meetingID)
		}
		if want := expectedVersion + uint64(i) + 1; e.Version != want {
			return invalid("event %d has version %d, want %d", i, e.Version, want)
		}
		if err := e.Validate(); err != nil {
			return errors.Join(ErrInvalidEvents, err)
		}
		if e.Hash.IsZero() {
			return invalid("event %d (version %d) is not sealed", i, e.Version)
		}
	}
	return nil
}
