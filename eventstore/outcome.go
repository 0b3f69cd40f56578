package eventstore

import "errors"

// The outcome of a failed write. A store (and the engine above it) wraps
// every error of a write that did not plainly succeed in exactly one of
// ErrNotStored and ErrOutcomeUnknown, and adds ErrUnavailable when the
// cause is that no server (or no stream leader) could be reached. Match
// with errors.Is:
//
//	errors.Is(err, ErrNotStored)      // nothing was stored: retry as is
//	errors.Is(err, ErrOutcomeUnknown) // maybe stored: retry with the same idempotency key
//	errors.Is(err, ErrUnavailable)    // no server or leader reachable (with one of the two)
var (
	// ErrNotStored says the write stored nothing: it was refused, or it
	// never left the process, or the server answered that it did not
	// store it. Retrying it as it is cannot store it twice.
	ErrNotStored = errors.New("not stored")
	// ErrOutcomeUnknown says the write may or may not have been stored: it
	// was sent, and its answer was lost (a timeout, a connection lost
	// while waiting). Retry it with the same idempotency key: the retry
	// reports what happened the first time, or does it now.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrUnavailable says the store could not reach a server, or the
	// stream has no leader (an election, a lost quorum). It never comes
	// alone: errors.Is(err, ErrNotStored) or errors.Is(err,
	// ErrOutcomeUnknown) says whether the write may have happened. A store
	// reports it as soon as it knows, not after a timeout.
	ErrUnavailable = errors.New("unavailable")
)

// outcomeError wraps an error with its outcome sentinels.
type outcomeError struct {
	err   error
	kinds []error // ErrNotStored or ErrOutcomeUnknown, maybe ErrUnavailable
}

func (e *outcomeError) Error() string {
	s := e.kinds[0].Error()
	for _, k := range e.kinds[1:] {
		s = k.Error() + ", " + s
	}
	return s + ": " + e.err.Error()
}

func (e *outcomeError) Unwrap() []error { return append([]error{e.err}, e.kinds...) }

// Classified reports whether err already says its outcome: it wraps
// ErrNotStored or ErrOutcomeUnknown.
func Classified(err error) bool {
	return errors.Is(err, ErrNotStored) || errors.Is(err, ErrOutcomeUnknown)
}

// NotStored returns err marked as a write that stored nothing (wrapping
// [ErrNotStored]), or err itself if it is nil or already says its outcome.
func NotStored(err error) error { return mark(err, ErrNotStored, false) }

// OutcomeUnknown returns err marked as a write that may have been stored
// (wrapping [ErrOutcomeUnknown]), or err itself if it is nil or already
// says its outcome.
func OutcomeUnknown(err error) error { return mark(err, ErrOutcomeUnknown, false) }

// Unavailable returns err marked as a failure to reach a server or a
// leader (wrapping [ErrUnavailable]) and, if it does not say its outcome
// yet, as a write that stored nothing (stored false, wrapping
// [ErrNotStored]) or maybe did (stored true, [ErrOutcomeUnknown]).
func Unavailable(err error, maybeStored bool) error {
	if err == nil {
		return nil
	}
	kind := ErrNotStored
	if maybeStored {
		kind = ErrOutcomeUnknown
	}
	return mark(err, kind, true)
}

func mark(err, kind error, unavailable bool) error {
	if err == nil {
		return nil
	}
	var kinds []error
	if !Classified(err) {
		kinds = append(kinds, kind)
	}
	if unavailable && !errors.Is(err, ErrUnavailable) {
		kinds = append(kinds, ErrUnavailable)
	}
	if len(kinds) == 0 {
		return err
	}
	return &outcomeError{err: err, kinds: kinds}
}

// WriteOutcome marks an error of a write that was not sent (sent false)
// or sent (true) with its outcome, if it does not say it yet: a conflict,
// invalid events, a closed store, lost history or a cancelled context
// before sending stored nothing; any other error after sending may have
// stored the write.
func WriteOutcome(err error, sent bool) error {
	if err == nil || Classified(err) {
		return err
	}
	if !sent || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidEvents) ||
		errors.Is(err, ErrClosed) || errors.Is(err, ErrHistoryLost) {
		return NotStored(err)
	}
	return OutcomeUnknown(err)
}
