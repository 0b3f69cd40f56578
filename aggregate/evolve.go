package aggregate

import (
	"time"

	"github.com/productdb/stage/events"
)

// Evolve applies one stored event to s, in place. It never fails: the log is
// the truth, and an event that the rules would not have allowed (one a
// verifier would report) is applied as far as it makes sense. Events must be
// applied in version order.
func Evolve(s *State, e *events.Envelope) {
	s.version = e.Version
	s.lastHash = e.Hash
	if e.Time.After(s.lastTime) {
		s.lastTime = e.Time
	}
	if e.CommandID != "" {
		s.recent.add(e.CommandID, e.Version)
	}
	set := func(user string, st Status) {
		m, ok := s.members[user]
		if !ok {
			return
		}
		m.Status = st
		m.Since = e.Time
		if st == RequestedToJoinStage {
			m.RequestedAt = e.Time
			m.requestVersion = e.Version
		} else {
			m.RequestedAt = time.Time{}
			m.requestVersion = 0
		}
	}
	switch p := e.Payload.(type) {
	case *events.ParticipantJoined:
		s.members[p.UserID] = &Member{UserID: p.UserID, Permissions: p.Permissions, Status: OffStage, Since: e.Time}
	case *events.ParticipantLeft:
		delete(s.members, p.UserID)
	case *events.PermissionsChanged:
		if m, ok := s.members[p.UserID]; ok {
			m.Permissions = p.Permissions
			if p.Permissions.StageAccess == NotAllowed && m.Status != OffStage {
				set(p.UserID, OffStage)
			}
		}
	case *events.AccessRequested:
		if p.AutoAccepted {
			set(e.Actor, AcceptedToJoinStage)
		} else {
			set(e.Actor, RequestedToJoinStage)
		}
	case *events.AccessRequestCancelled:
		set(e.Actor, OffStage)
	case *events.AccessGranted:
		for _, u := range p.Users {
			set(u, AcceptedToJoinStage)
		}
	case *events.AccessDenied:
		for _, u := range p.Users {
			set(u, OffStage)
		}
	case *events.StageJoined:
		set(e.Actor, OnStage)
	case *events.StageLeft:
		set(e.Actor, OffStage)
	case *events.Kicked:
		for _, u := range p.Users {
			set(u, OffStage)
		}
	}
}
