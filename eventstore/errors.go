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
