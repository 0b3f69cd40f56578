// Package projections holds the read models folded from a meeting's events:
// the roster (who is on stage, accepted, requesting, and the request queue),
// the client notifications each event causes ([Notify]), and the audit
// history ([History]: every event in words, stage intervals, request
// outcomes with wait times and deciders).
//
// A [Runner] keeps every meeting's roster current by following the store's
// subscription; after a command, WaitFor its Result.Position to read your
// own write:
//
//	r, _ := projections.NewRunner(store)
//	go r.Run(ctx)
//	res, _ := eng.RequestAccess(ctx, "webinar-1", "bob")
//	r.WaitFor(ctx, res.Position)
//	roster, _ := r.Roster(ctx, "webinar-1") // includes bob's request
//
// A projection is a fold: the engine's live roster and the replay tool's
// roster at a past version are computed by the same code from the same
// events, so they cannot disagree.
package projections

import (
	"iter"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// AccessRequest is one pending request to join the stage.
type AccessRequest struct {
	UserID string `json:"user"`
	// RequestedAt is when the user made the request.
	RequestedAt time.Time `json:"requestedAt"`
	// Position is the request's place in the queue, 1 for the oldest.
	Position int `json:"position"`
}

// Entry is one participant in a roster.
type Entry struct {
	UserID      string                `json:"user"`
	Status      aggregate.Status      `json:"status"`
	Permissions aggregate.Permissions `json:"permissions"`
	// Since is when the participant entered their current status.
	Since time.Time `json:"since"`
}

// Roster is a meeting's stage at one version.
type Roster struct {
	MeetingID string `json:"meeting"`
	// Version is the meeting version the roster reflects.
	Version uint64 `json:"version"`
	// OnStage and Accepted list user ids, sorted.
	OnStage  []string `json:"onStage"`
	Accepted []string `json:"accepted"`
	// Requests is the request queue, oldest first.
	Requests []AccessRequest `json:"requests"`
	// Participants lists everyone in the meeting, sorted by user id.
	Participants []Entry `json:"participants"`
}

// RosterOf returns the roster of state s.
func RosterOf(s *aggregate.State) Roster {
	r := Roster{MeetingID: s.MeetingID(), Version: s.Version(),
		OnStage: []string{}, Accepted: []string{}, Requests: []AccessRequest{}, Participants: []Entry{}}
	for _, m := range s.Members() {
		r.Participants = append(r.Participants, Entry{UserID: m.UserID, Status: m.Status, Permissions: m.Permissions, Since: m.Since})
		switch m.Status {
		case aggregate.OnStage:
			r.OnStage = append(r.OnStage, m.UserID)
		case aggregate.AcceptedToJoinStage:
			r.Accepted = append(r.Accepted, m.UserID)
		}
	}
	r.Requests = Requests(s)
	return r
}

// Requests returns the pending requests of s, oldest first.
func Requests(s *aggregate.State) []AccessRequest {
	q := s.Queue()
	out := make([]AccessRequest, len(q))
	for i, m := range q {
		out[i] = AccessRequest{UserID: m.UserID, RequestedAt: m.RequestedAt, Position: i + 1}
	}
	return out
}

// Fold applies evs, in order, to a new state of meetingID and returns it. It
// stops at the first error the sequence yields.
func Fold(meetingID string, evs iter.Seq2[events.Envelope, error]) (*aggregate.State, error) {
	s := aggregate.NewState(meetingID)
	for e, err := range evs {
		if err != nil {
			return s, err
		}
		aggregate.Evolve(s, &e)
	}
	return s, nil
}
