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
	// Invited is true when the user was AcceptedToJoinStage by an
	// invitation before the event, CoHost when they were a co-host.
	Invited, CoHost bool
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

// known reports whether the status changes of an event of type t are
// confined to the users it names ([events.Envelope.Users]) and its actor:
// every event type of package events is (the seat waitlist's offers, which
// any event may move, change no status).
func known(t events.Type) bool {
	switch t {
	case events.TypeParticipantJoined, events.TypeParticipantLeft, events.TypePermissionsChanged,
		events.TypeAccessRequested, events.TypeAccessRequestCancelled, events.TypeAccessGranted,
		events.TypeAccessDenied, events.TypeStageJoined, events.TypeStageLeft, events.TypeKicked,
		events.TypeSettingsChanged, events.TypeSeatWaitlisted, events.TypeStageBanned, events.TypeBanLifted,
		events.TypeDisconnected, events.TypeReconnected, events.TypeLapsed,
		events.TypeStageStarted, events.TypeStageEnded, events.TypeRequestsClosed, events.TypeRequestsOpened,
		events.TypeCoHostPromoted, events.TypeCoHostDemoted, events.TypeInvitationDeclined, events.TypeBroughtOnStage:
		return true
	}
	return false
}
