package projections

import (
	"slices"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// transition is one user's status change caused by one event. From or To is
// the zero Status when the user was not (or is no longer) a participant.
type transition struct {
	UserID   string
	From, To aggregate.Status
	// Invited is true when the user was AcceptedToJoinStage by an
	// invitation before the event, CoHost when they were a co-host.
	Invited, CoHost bool
}

// step applies e to s in place, like [aggregate.Evolve], and returns the
// status changes it caused, ordered by user id. Only the users the event
// names ([events.Envelope.Users], which holds the actor of the events a
// user causes for themselves) are compared: an event
// changes no one else's status (the seat waitlist's offers, which any
// event may move, are not statuses), so the cost is that of the event, not
// of the audience. TestNotifyStep_namedUsersAndClientModel holds every
// event type to this against a comparison of every participant.
func step(s *aggregate.State, e *events.Envelope) []transition {
	users := slices.Clone(e.Users()) // a list event's Users is its payload's
	slices.Sort(users)
	users = slices.Compact(users)
	type was struct {
		status          aggregate.Status
		invited, coHost bool
	}
	from := make([]was, len(users))
	for i, u := range users {
		if m, ok := s.Member(u); ok {
			from[i] = was{m.Status, m.Invited, m.CoHost}
		}
	}
	aggregate.Evolve(s, e)
	var out []transition
	for i, u := range users {
		if to := s.Status(u); to != from[i].status {
			out = append(out, transition{UserID: u, From: from[i].status, To: to,
				Invited: from[i].status == aggregate.AcceptedToJoinStage && from[i].invited, CoHost: from[i].coHost})
		}
	}
	return out
}
