package replay

import (
	"errors"
	"fmt"
	"time"
)

// ErrTruncated is wrapped by the errors of a source whose end is gone: a
// stream that reports a last sequence whose message it no longer holds, or
// that stops delivering before it (see [WithIdleTimeout]), and a file whose
// last line stops in the middle of an event. [Verify] reports it as a
// [Truncated] finding.
var ErrTruncated = errors.New("replay: log truncated")

// ErrMissing is wrapped by the errors of a source that lost messages in its
// middle: a stream whose sequences skip. [Verify] reports it as a [Missing]
// finding, and reading goes on.
var ErrMissing = errors.New("replay: messages missing")

// DefaultIdleTimeout is how long a JetStream source waits for the next
// message of a read before it reports the rest of the stream as gone (see
// [WithIdleTimeout]).
const DefaultIdleTimeout = 5 * time.Second

// LostError is a stream's report of messages it should hold and does not.
// It wraps [ErrTruncated] when the lost messages are the stream's end, and
// [ErrMissing] otherwise.
type LostError struct {
	// Stream is the stream's name; MeetingID the meeting read ("" for the
	// whole stream).
	Stream    string
	MeetingID string
	// From and To are the lost stream sequences (0 when unknown: see Count).
	From, To uint64
	// Count is how many messages the stream itself counts as gone, when
	// From and To are unknown (a meeting's read sees only its subject).
	Count uint64
	// End: the lost messages are the stream's end (To is the last sequence
	// the stream reports).
	End bool
	// Idle is the idle timeout that ran out, when the stream stopped
	// delivering messages rather than reporting that it holds no more.
	Idle time.Duration
	// DeniesDeletes: the stream denies deletes and purges, so nothing but
	// a loss can explain the gap.
	DeniesDeletes bool
}

func (e *LostError) Error() string {
	why := ": deleted, purged or lost"
	if e.DeniesDeletes {
		why = ", though it denies deletes and purges: lost by the server"
	}
	among := ""
	if e.MeetingID != "" {
		among = fmt.Sprintf(" (events of meeting %s may be among them)", e.MeetingID)
	}
	switch {
	case e.End && e.Idle > 0:
		return fmt.Sprintf("replay: stream %s reports last sequence %d but no message came within %v after %s: the end of the log is missing%s (a slow server needs a longer idle timeout)",
			e.Stream, e.To, e.Idle, after(e.From), among)
	case e.End && e.From <= 1:
		return fmt.Sprintf("replay: stream %s reports last sequence %d but holds none of its messages%s%s", e.Stream, e.To, why, among)
	case e.End && e.MeetingID != "":
		return fmt.Sprintf("replay: stream %s reports last sequence %d but holds no message there: the end of the log is missing%s%s", e.Stream, e.To, why, among)
	case e.End:
		return fmt.Sprintf("replay: stream %s reports last sequence %d but its messages end at %d: the end of the log is missing%s", e.Stream, e.To, e.From-1, why)
	case e.From == 0:
		return fmt.Sprintf("replay: stream %s has lost %d messages%s%s", e.Stream, e.Count, why, among)
	}
	return fmt.Sprintf("replay: stream %s has no message at %s%s%s", e.Stream, seqs(e.From, e.To), why, among)
}

// Unwrap returns ErrTruncated for a lost end, ErrMissing otherwise.
func (e *LostError) Unwrap() error {
	if e.End {
		return ErrTruncated
	}
	return ErrMissing
}

func after(from uint64) string {
	if from <= 1 {
		return "the start"
	}
	return fmt.Sprintf("sequence %d", from-1)
}

func seqs(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("sequence %d", from)
	}
	return fmt.Sprintf("sequences %d to %d", from, to)
}
