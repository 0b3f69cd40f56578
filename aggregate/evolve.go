package aggregate

import (
	"slices"
	"time"

	"github.com/productdb/stage/events"
)

// Evolve applies one stored event to s, in place. It never fails: the log is
// the truth, and an event that the rules would not have allowed (one a
// verifier would report) is applied as far as it makes sense. Events must be
// applied in version order.
//
// Evolve consults no clock: every change takes effect at the event's Time,
// except the lapses of a [events.Lapsed] event, which take effect at their
// own Deadline. After each change, free seats go to the head of the seat
// waitlist as offers whose deadline is the change's time plus SeatOfferTTL.
func Evolve(s *State, e *events.Envelope) {
	s.version = e.Version
	s.lastHash = e.Hash
	if e.Time.After(s.lastTime) {
		s.lastTime = e.Time
	}
	if e.CommandID != "" {
		s.recent.add(e.CommandKey(), e.Version, e.Type == events.TypeLapsed)
	}
	t := e.Time
	if s.phaseSince.IsZero() {
		s.phaseSince = t // the stage's first period begins with the meeting
	}
	set := func(user string, st Status) { s.setStatus(user, st, t, e.Version) }
	switch p := e.Payload.(type) {
	case *events.ParticipantJoined:
		if _, ok := s.members[p.UserID]; ok {
			s.removeMember(p.UserID)
		}
		s.members[p.UserID] = &Member{UserID: p.UserID, Permissions: p.Permissions, Status: OffStage, Since: t}
		s.indexHost(s.members[p.UserID])
	case *events.ParticipantLeft:
		s.removeMember(p.UserID)
	case *events.PermissionsChanged:
		if m, ok := s.members[p.UserID]; ok {
			m.Permissions = p.Permissions
			s.indexHost(m)
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
		for _, u := range p.Invited {
			if m, ok := s.members[u]; ok && m.Status == AcceptedToJoinStage {
				m.Invited = true
			}
		}
	case *events.AccessDenied:
		for _, u := range p.Users {
			set(u, OffStage)
			s.denied[u] = t
		}
	case *events.StageJoined:
		set(e.Actor, OnStage)
	case *events.StageLeft:
		set(e.Actor, OffStage)
	case *events.Kicked:
		for _, u := range p.Users {
			set(u, OffStage)
		}
	case *events.SettingsChanged:
		before := s.Phase()
		s.settings = p.Settings
		if s.Phase() != before {
			s.phaseSince = t
		}
	case *events.SeatWaitlisted:
		if m, ok := s.members[e.Actor]; ok && !s.waitlisted(e.Actor) {
			if m.Status != AcceptedToJoinStage {
				set(e.Actor, AcceptedToJoinStage)
			}
			s.waitlist = append(s.waitlist, waiter{user: e.Actor, since: t})
		}
	case *events.StageBanned:
		s.bans[p.UserID] = Ban{UserID: p.UserID, Since: t, Until: p.Until}
		if m, ok := s.members[p.UserID]; ok && m.Status != OffStage {
			set(p.UserID, OffStage)
		}
	case *events.BanLifted:
		delete(s.bans, p.UserID)
	case *events.Disconnected:
		if m, ok := s.members[p.UserID]; ok && m.DisconnectedAt.IsZero() {
			m.DisconnectedAt = t
			s.disconnected++
			s.index(m)
		}
	case *events.Reconnected:
		if m, ok := s.members[p.UserID]; ok && !m.DisconnectedAt.IsZero() {
			m.DisconnectedAt = time.Time{}
			s.disconnected--
			s.index(m)
		}
	case *events.Lapsed:
		for _, l := range p.Lapses {
			s.applyLapse(l, e.Version)
		}
	default:
		s.evolveControl(e, set)
	}
	s.reconcileSeats(t)
}

// setStatus moves user to st at time t. Leaving AcceptedToJoinStage takes
// them off the seat waitlist.
func (s *State) setStatus(user string, st Status, t time.Time, version uint64) {
	m, ok := s.members[user]
	if !ok {
		return
	}
	if m.Status == OnStage {
		s.onStage--
	}
	if st == OnStage {
		s.onStage++
	}
	if m.Status == RequestedToJoinStage {
		s.requested--
	}
	if st == RequestedToJoinStage {
		s.requested++
	}
	if m.Status == RequestedToJoinStage || st == RequestedToJoinStage {
		defer s.trimRequests()
	}
	if st == RequestedToJoinStage {
		s.reqq = append(s.reqq, reqEntry{user: user, version: version})
	}
	m.Status = st
	m.Since = t
	m.Invited = false
	if st == RequestedToJoinStage {
		m.RequestedAt = t
		m.requestVersion = version
	} else {
		m.RequestedAt = time.Time{}
		m.requestVersion = 0
	}
	if st != AcceptedToJoinStage {
		s.unwait(user)
	}
	s.index(m)
}

// indexHost keeps m in s.hosts while it holds AcceptStageRequests, and in
// s.cohosts while it is a co-host.
func (s *State) indexHost(m *Member) {
	s.hosts = indexSorted(s.hosts, m.UserID, m.IsHost())
	s.cohosts = indexSorted(s.cohosts, m.UserID, m.CoHost)
}

// indexSorted returns the sorted list with user in it or not, as in says.
func indexSorted(list []string, user string, in bool) []string {
	i, found := slices.BinarySearch(list, user)
	switch {
	case in && !found:
		return slices.Insert(list, i, user)
	case !in && found:
		return slices.Delete(list, i, i+1)
	}
	return list
}

// unindexHost takes user out of s.hosts and s.cohosts.
func (s *State) unindexHost(user string) {
	s.hosts = indexSorted(s.hosts, user, false)
	s.cohosts = indexSorted(s.cohosts, user, false)
}

// index keeps m in s.timed while it may have a deadline.
func (s *State) index(m *Member) {
	if m.Status == AcceptedToJoinStage || m.Status == OnStage || !m.DisconnectedAt.IsZero() {
		s.timed[m.UserID] = struct{}{}
	} else {
		delete(s.timed, m.UserID)
	}
}

// removeMember takes user out of the meeting: off the stage and out of every
// queue. Their ban and latest denial stay: they are about the user.
func (s *State) removeMember(user string) {
	m, ok := s.members[user]
	if !ok {
		return
	}
	if m.Status == OnStage {
		s.onStage--
	}
	if m.Status == RequestedToJoinStage {
		s.requested--
		defer s.trimRequests()
	}
	if !m.DisconnectedAt.IsZero() {
		s.disconnected--
	}
	s.unwait(user)
	delete(s.timed, user)
	s.unindexHost(user)
	delete(s.members, user)
}

// applyLapse applies one lapse at its deadline.
func (s *State) applyLapse(l events.Lapse, version uint64) {
	t := l.Deadline
	switch l.Kind {
	case events.InvitationExpired, events.SlotEnded, events.SeatOfferLapsed, events.RequestExpired:
		if _, ok := s.members[l.UserID]; ok {
			s.setStatus(l.UserID, OffStage, t, version)
		}
	case events.GraceExpired:
		s.removeMember(l.UserID)
	case events.BanExpired:
		delete(s.bans, l.UserID)
	}
	s.reconcileSeats(t)
}
