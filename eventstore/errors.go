package eventstore

import (
	"errors"
	"fmt"

	"github.com/productdb/stage/events"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEvents}, args...)...)
}

// ErrCorrupt is wrapped by [*CorruptError]: a stored event that cannot be
// trusted.
var ErrCorrupt = errors.New("eventstore: corrupt event")

// CorruptError reports a stored event that is not what was written: it does
// not decode, its hash does not match its contents, it does not link to the
// previous event's hash, or its version is out of place. Readers return it
// instead of serving altered history.
type CorruptError struct {
	// Seq is the event's global position (the stream sequence).
	Seq uint64
	// MeetingID and Version locate the event, where they could be read.
	MeetingID string
	Version   uint64
	// Err says what is wrong.
	Err error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("eventstore: corrupt event at sequence %d (meeting %q, version %d): %v", e.Seq, e.MeetingID, e.Version, e.Err)
}

// Unwrap returns ErrCorrupt and the underlying error.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// CheckNext verifies that e may follow an event with version prevVersion and
// hash prevHash in its meeting: its version is the next one, its hash matches
// its contents and its PrevHash links to prevHash. It returns a
// [*CorruptError] otherwise.
func CheckNext(e *events.Envelope, prevVersion uint64, prevHash events.Hash) error {
	var err error
	switch {
	case e.Version != prevVersion+1:
		err = fmt.Errorf("version %d follows version %d", e.Version, prevVersion)
	case e.PrevHash != prevHash:
		err = fmt.Errorf("hash chain broken: prev %s, previous event's hash %s", e.PrevHash, prevHash)
	default:
		err = e.Verify()
	}
	if err != nil {
		return &CorruptError{Seq: e.Seq, MeetingID: e.MeetingID, Version: e.Version, Err: err}
	}
	return nil
}

// ErrHistoryLost is wrapped by [*HistoryLostError]: events the store had
// seen stored are no longer in the log.
var ErrHistoryLost = errors.New("eventstore: history lost")

// HistoryLostError reports that a log lost events it once held: a meeting
// (or, with MeetingID "", the stream as a whole) is shorter than, or
// different from, the high-water mark the store recorded when it stored
// or saw its events. A store returns it from Append to a meeting whose
// history is lost, and stores nothing; reads keep serving what remains.
// The loss stays until an operator accepts it, on the record (see the
// store's recovery).
type HistoryLostError struct {
	// MeetingID is the meeting that lost events, or "" for a loss of the
	// stream as a whole that names no meeting.
	MeetingID string
	// SeenVersion, SeenSeq and SeenHash are the high-water mark: the
	// meeting's last event the store recorded (its version, stream
	// sequence and hash). For a stream-wide loss SeenSeq is the last
	// stream sequence recorded, and SeenVersion and SeenHash are zero.
	SeenVersion uint64
	SeenSeq     uint64
	SeenHash    events.Hash
	// HaveVersion and HaveSeq are what the log holds now: the meeting's
	// last event (version and sequence; 0 and 0 when it holds none), or
	// for a stream-wide loss the stream's last sequence.
	HaveVersion uint64
	HaveSeq     uint64
	// Reason says what is missing, for a person.
	Reason string
}

func (e *HistoryLostError) Error() string {
	if e.MeetingID == "" {
		return fmt.Sprintf("eventstore: history lost: the log had sequence %d, it now ends at %d: %s", e.SeenSeq, e.HaveSeq, e.Reason)
	}
	return fmt.Sprintf("eventstore: history lost in meeting %s: the log had version %d (sequence %d), it now holds version %d (sequence %d): %s",
		e.MeetingID, e.SeenVersion, e.SeenSeq, e.HaveVersion, e.HaveSeq, e.Reason)
}

// Unwrap returns [ErrHistoryLost].
func (e *HistoryLostError) Unwrap() error { return ErrHistoryLost }
