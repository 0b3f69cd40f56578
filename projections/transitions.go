package projections

import (
	"slices"
	"strings"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// transition is one user's status change caused by one event. From or To is
// the zero Status when the user was not (or is no longer) a participant.
type transition struct {
	UserID   string
	From, To aggregate.Status
}

// step applies e to s in place, like [aggregate.Evolve], and returns the
// status changes it caused, ordered by user id.
//
// For the event types this package knows, only the users the event names are
// compared; for any other type (a policy event added later, say) every
// participant is, so new events need no change here to be reported.
func step(s *aggregate.State, e *events.Envelope) []transition {
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
	var out []transition
	for i, u := range users {
		if to := s.Status(u); to != from[i] {
			out = append(out, transition{UserID: u, From: from[i], To: to})
		}
	}
	if !known(e.Type) {
		// A new event might also add participants.
		for _, m := range s.Members() {
			if _, found := slices.BinarySearch(users, m.UserID); !found {
				out = append(out, transition{UserID: m.UserID, To: m.Status})
			}
		}
		slices.SortFunc(out, func(a, b transition) int { return strings.Compare(a.UserID, b.UserID) })
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
