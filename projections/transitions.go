package projections

import (
	"slices"
	"strings"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// Transition is one user's status change caused by one event. From or To is
// the zero Status when the user was not (or is no longer) a participant.
type Transition struct {
	UserID   string
	From, To aggregate.Status
}

// Transitions applies e to a copy of before and returns the copy and the
// status changes e caused, ordered by user id. before is not modified.
func Transitions(before *aggregate.State, e *events.Envelope) (*aggregate.State, []Transition) {
	after := before.Clone()
	return after, Step(after, e)
}

// Step applies e to s in place, like [aggregate.Evolve], and returns the
// status changes it caused, ordered by user id.
//
// For the event types this package knows, only the users the event names are
// compared; for any other type (a policy event added later, say) every
// participant is, so new events need no change here to be reported.
func Step(s *aggregate.State, e *events.Envelope) []Transition {
	var users []string
	if known(e.Type) {
		users = append(users, e.Users()...)
		if e.Actor != "" {
			users = append(users, e.Actor)
		}
	} else {
		for _, m := range s.Members() {
			users = append(users, m.UserID)
		}
	}
	slices.Sort(users)
	users = slices.Compact(users)
	from := make([]aggregate.Status, len(users))
	for i, u := range users {
		from[i] = s.Status(u)
	}
	aggregate.Evolve(s, e)
	var out []Transition
	for i, u := range users {
		if to := s.Status(u); to != from[i] {
			out = append(out, Transition{UserID: u, From: from[i], To: to})
		}
	}
	if !known(e.Type) {
		// A new event might also add participants.
		for _, m := range s.Members() {
			if _, found := slices.BinarySearch(users, m.UserID); !found {
				out = append(out, Transition{UserID: m.UserID, To: m.Status})
			}
		}
		slices.SortFunc(out, func(a, b Transition) int { return strings.Compare(a.UserID, b.UserID) })
	}
	return out
}
func known(t events.Type) bool {
	switch t {
	case events.TypeParticipantJoined, events.TypeParticipantLeft, events.TypePermissionsChanged,
		events.TypeAccessRequested, events.TypeAccessRequestCancelled, events.TypeAccessGranted,
		events.TypeAccessDenied, events.TypeStageJoined, events.TypeStageLeft, events.TypeKicked:
		return true
	}
	return false
}
