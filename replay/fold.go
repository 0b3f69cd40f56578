package replay

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// Filter selects the events to replay. The zero Filter selects everything.
type Filter struct {
	// MeetingID keeps only that meeting's events, when set.
	MeetingID string
	// UpToVersion keeps only events with Version <= UpToVersion, when not 0.
	UpToVersion uint64
	// UpTo keeps only events at or before UpTo, when not zero.
	UpTo time.Time
}

// Keep reports whether e passes the filter.
func (f Filter) Keep(e *events.Envelope) bool {
	return (f.MeetingID == "" || e.MeetingID == f.MeetingID) &&
		(f.UpToVersion == 0 || e.Version <= f.UpToVersion) &&
		(f.UpTo.IsZero() || !e.Time.After(f.UpTo))
}

// Events yields src's events that pass f, in stream order, stopping at the
// first error. With a meeting set, it stops reading once the meeting is past
// the version or time limit.
func (f Filter) Events(ctx context.Context, src Source) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for e, err := range src.Events(ctx, f.MeetingID) {
			if err != nil {
				yield(e, err)
				return
			}
			if f.Keep(&e) {
				if !yield(e, nil) {
					return
				}
				continue
			}
			if f.MeetingID != "" && e.MeetingID == f.MeetingID {
				return // a meeting's versions and times only grow
			}
		}
	}
}

// Fold replays the events of src that pass f and returns each meeting's
// state, by meeting id.
func Fold(ctx context.Context, src Source, f Filter) (map[string]*aggregate.State, error) {
	out := map[string]*aggregate.State{}
	for e, err := range f.Events(ctx, src) {
		if err != nil {
			return out, err
		}
		s := out[e.MeetingID]
		if s == nil {
			s = aggregate.NewState(e.MeetingID)
			out[e.MeetingID] = s
		}
		aggregate.Evolve(s, &e)
	}
	return out, nil
}

// State replays one meeting (f.MeetingID, required) up to f's limits and
// returns its state. With a time limit, deadlines that had passed by then
// (expired invitations, ended speaking slots, ...) count even if the log
// recorded them later, as the engine's reads count them (aggregate.At):
// the state is the one the engine would have served at that time. A meeting
// with no event in src is an error wrapping [ErrUnknownMeeting]; one whose
// first event is past the limits has the empty state of version 0.
func State(ctx context.Context, src Source, f Filter) (*aggregate.State, error) {
	s := aggregate.NewState(f.MeetingID)
	if err := foldMeeting(ctx, src, f, func(e *events.Envelope) { aggregate.Evolve(s, e) }); err != nil {
		return nil, err
	}
	if !f.UpTo.IsZero() {
		s = aggregate.At(s, f.UpTo)
	}
	return s, nil
}

// Roster returns one meeting's roster (f.MeetingID, required) as of f's
// version or time: the same fold the live projection runs.
func Roster(ctx context.Context, src Source, f Filter) (projections.Roster, error) {
	s, err := State(ctx, src, f)
	if err != nil {
		return projections.Roster{}, err
	}
	return projections.RosterOf(s), nil
}

// History returns one meeting's audit trail (f.MeetingID, required) up to
// f's limits.
func History(ctx context.Context, src Source, f Filter) (*projections.History, error) {
	h := projections.NewHistory(f.MeetingID)
	if err := foldMeeting(ctx, src, f, h.Apply); err != nil {
		return nil, err
	}
	return h, nil
}

// foldMeeting calls apply for each event of f.MeetingID (required) in src
// that f keeps. A meeting with no event in src is an error wrapping
// [ErrUnknownMeeting].
func foldMeeting(ctx context.Context, src Source, f Filter, apply func(*events.Envelope)) error {
	if f.MeetingID == "" {
		return errors.New("replay: no meeting given")
	}
	seen := false
	for e, err := range src.Events(ctx, f.MeetingID) {
		if err != nil {
			return err
		}
		seen = true
		if !f.Keep(&e) {
			break
		}
		apply(&e)
	}
	if !seen {
		return fmt.Errorf("%w: %q", ErrUnknownMeeting, f.MeetingID)
	}
	return nil
}

// Meeting summarises one meeting of a log.
type Meeting struct {
	ID string `json:"meeting"`
	// Events is how many events it has; Version its last version.
	Events  int    `json:"events"`
	Version uint64 `json:"version"`
	// First and Last are the times of its first and last event.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Meetings lists the meetings of src, in order of first appearance.
func Meetings(ctx context.Context, src Source) ([]Meeting, error) {
	idx := map[string]int{}
	var out []Meeting
	for e, err := range src.Events(ctx, "") {
		if err != nil {
			return nil, err
		}
		i, ok := idx[e.MeetingID]
		if !ok {
			i = len(out)
			idx[e.MeetingID] = i
			out = append(out, Meeting{ID: e.MeetingID, First: e.Time})
		}
		m := &out[i]
		m.Events++
		m.Version = max(m.Version, e.Version)
		if e.Time.After(m.Last) {
			m.Last = e.Time
		}
	}
	return slices.Clip(out), nil
}
