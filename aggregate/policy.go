package aggregate

import (
	"cmp"
	"slices"
	"time"

	"github.com/productdb/stage/events"
)

// Settings are a meeting's stage policies (capacity, seat offers, expiring
// invitations, speaking slots, request cooldown, reconnect grace). The zero
// value turns every policy off; see [events.Settings] for each field.
type Settings = events.Settings

// Waiter is one user on the seat waitlist.
type Waiter struct {
	UserID string
	// Position is the place on the waitlist, 1 for the first.
	Position int
	// Since is when they were waitlisted.
	Since time.Time
	// Offered is true when a seat is held for them: their Join succeeds.
	// OfferedAt is when the offer was made; OfferDeadline is when it lapses
	// (zero when SeatOfferTTL is off: held until taken or declined).
	Offered       bool
	OfferedAt     time.Time
	OfferDeadline time.Time
}

// waiter is a waitlist entry as stored; the offered ones are a prefix.
type waiter struct {
	user      string
	since     time.Time
	offered   bool
	offeredAt time.Time
}

func (w waiter) equal(o waiter) bool {
	return w.user == o.user && w.since.Equal(o.since) && w.offered == o.offered && w.offeredAt.Equal(o.offeredAt)
}

// Ban is a stage ban: the user may not request, be invited or join from
// Since until Until (zero: until lifted).
type Ban struct {
	UserID string
	Since  time.Time
	Until  time.Time
}

func (b Ban) equal(o Ban) bool {
	return b.UserID == o.UserID && b.Since.Equal(o.Since) && b.Until.Equal(o.Until)
}

// activeAt reports whether the ban is in force at now.
func (b Ban) activeAt(now time.Time) bool { return b.Until.IsZero() || now.Before(b.Until) }

// Settings returns the meeting's policies.
func (s *State) Settings() Settings { return s.settings }

// Waitlist returns the seat waitlist in order; the users holding seat offers
// come first.
func (s *State) Waitlist() []Waiter {
	out := make([]Waiter, len(s.waitlist))
	for i, w := range s.waitlist {
		out[i] = Waiter{UserID: w.user, Position: i + 1, Since: w.since, Offered: w.offered, OfferedAt: w.offeredAt}
		if w.offered && s.settings.SeatOfferTTL > 0 {
			out[i].OfferDeadline = w.offeredAt.Add(s.settings.SeatOfferTTL)
		}
	}
	return out
}

// Bans returns the stage bans, ordered by user id.
func (s *State) Bans() []Ban {
	out := make([]Ban, 0, len(s.bans))
	for _, b := range s.bans {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Ban) int { return cmp.Compare(a.UserID, b.UserID) })
	return out
}

// BanOf returns userID's stage ban, if they have one.
func (s *State) BanOf(userID string) (Ban, bool) {
	b, ok := s.bans[userID]
	return b, ok
}

// DeniedAt returns when userID's request was last denied, if ever.
func (s *State) DeniedAt(userID string) (time.Time, bool) {
	t, ok := s.denied[userID]
	return t, ok
}

// OnStageCount returns how many participants are OnStage.
func (s *State) OnStageCount() int { return s.onStage }

// StatusDeadline returns when userID's current status lapses under the
// settings: the end of an invitation (InvitationTTL), of a pending request
// (RequestTTL) or of a speaking slot (SpeakingSlot). Zero when it does not
// lapse (a waitlisted user's
// invitation does not expire: their seat offer does).
func (s *State) StatusDeadline(userID string) time.Time {
	m, ok := s.members[userID]
	if !ok {
		return time.Time{}
	}
	switch {
	case m.Status == AcceptedToJoinStage && s.settings.InvitationTTL > 0 && !s.waitlisted(userID):
		return m.Since.Add(s.settings.InvitationTTL)
	case m.Status == OnStage && s.settings.SpeakingSlot > 0:
		return m.Since.Add(s.settings.SpeakingSlot)
	case m.Status == RequestedToJoinStage && s.settings.RequestTTL > 0:
		return m.RequestedAt.Add(s.settings.RequestTTL)
	}
	return time.Time{}
}

// GraceDeadline returns when a disconnected participant leaves the meeting
// unless they reconnect; zero when userID is connected or not a participant.
func (s *State) GraceDeadline(userID string) time.Time {
	m, ok := s.members[userID]
	if !ok || m.DisconnectedAt.IsZero() {
		return time.Time{}
	}
	return m.DisconnectedAt.Add(max(s.settings.ReconnectGrace, 0))
}

// waitlisted reports whether user is on the seat waitlist.
func (s *State) waitlisted(user string) bool {
	return s.waitIndex(user) >= 0
}

func (s *State) waitIndex(user string) int {
	return slices.IndexFunc(s.waitlist, func(w waiter) bool { return w.user == user })
}

// offers returns how many seat offers are out.
func (s *State) offers() int {
	n := 0
	for n < len(s.waitlist) && s.waitlist[n].offered {
		n++
	}
	return n
}

// unwait takes user off the seat waitlist, withdrawing their offer.
func (s *State) unwait(user string) {
	if i := s.waitIndex(user); i >= 0 {
		s.waitlist = slices.Delete(s.waitlist, i, i+1)
	}
}

// reconcileSeats offers the free seats, at time t, to the head of the
// waitlist: after it, the offers out are min(free seats, waitlist length).
// With no capacity set the waitlist is dissolved (its users stay accepted).
func (s *State) reconcileSeats(t time.Time) {
	limit := s.settings.MaxOnStage
	if limit <= 0 {
		s.waitlist = nil
		return
	}
	free := max(limit-s.onStage, 0)
	n := s.offers()
	for n > free {
		n--
		s.waitlist[n].offered, s.waitlist[n].offeredAt = false, time.Time{}
	}
	for n < free && n < len(s.waitlist) {
		s.waitlist[n].offered, s.waitlist[n].offeredAt = true, t
		n++
	}
}

// kindRank orders lapses that fall due at the same instant.
func kindRank(k events.LapseKind) int {
	switch k {
	case events.BanExpired:
		return 0
	case events.SlotEnded:
		return 1
	case events.InvitationExpired:
		return 2
	case events.RequestExpired:
		return 3
	case events.SeatOfferLapsed:
		return 4
	}
	return 5 // GraceExpired
}

func lapseLess(a, b events.Lapse) bool {
	if c := a.Deadline.Compare(b.Deadline); c != 0 {
		return c < 0
	}
	if ra, rb := kindRank(a.Kind), kindRank(b.Kind); ra != rb {
		return ra < rb
	}
	return a.UserID < b.UserID
}

// nextLapse returns the earliest pending deadline of s, as the lapse it
// would be (ties broken by kind, then user id, so the order is total).
func (s *State) nextLapse() (events.Lapse, bool) {
	var best events.Lapse
	found := false
	consider := func(l events.Lapse) {
		if !found || lapseLess(l, best) {
			best, found = l, true
		}
	}
	st := s.settings
	if st.InvitationTTL > 0 || st.SpeakingSlot > 0 || s.disconnected > 0 {
		for u := range s.timed {
			m := s.members[u]
			switch {
			case m.Status == AcceptedToJoinStage && st.InvitationTTL > 0 && !s.waitlisted(m.UserID):
				consider(events.Lapse{UserID: m.UserID, Kind: events.InvitationExpired, Since: m.Since,
					Deadline: m.Since.Add(st.InvitationTTL), Setting: "InvitationTTL",
					Limit: events.Duration(st.InvitationTTL), Status: m.Status.String()})
			case m.Status == OnStage && st.SpeakingSlot > 0:
				consider(events.Lapse{UserID: m.UserID, Kind: events.SlotEnded, Since: m.Since,
					Deadline: m.Since.Add(st.SpeakingSlot), Setting: "SpeakingSlot",
					Limit: events.Duration(st.SpeakingSlot), Status: m.Status.String()})
			}
			if !m.DisconnectedAt.IsZero() {
				g := max(st.ReconnectGrace, 0)
				consider(events.Lapse{UserID: m.UserID, Kind: events.GraceExpired, Since: m.DisconnectedAt,
					Deadline: m.DisconnectedAt.Add(g), Setting: "ReconnectGrace",
					Limit: events.Duration(g), Status: m.Status.String()})
			}
		}
	}
	if st.RequestTTL > 0 && len(s.reqq) > 0 {
		// The head is the oldest pending request (trimRequests).
		if m, ok := s.members[s.reqq[0].user]; ok && m.Status == RequestedToJoinStage {
			consider(events.Lapse{UserID: m.UserID, Kind: events.RequestExpired, Since: m.RequestedAt,
				Deadline: m.RequestedAt.Add(st.RequestTTL), Setting: "RequestTTL",
				Limit: events.Duration(st.RequestTTL), Status: m.Status.String()})
		}
	}
	if st.SeatOfferTTL > 0 {
		for _, w := range s.waitlist {
			if !w.offered {
				break
			}
			consider(events.Lapse{UserID: w.user, Kind: events.SeatOfferLapsed, Since: w.offeredAt,
				Deadline: w.offeredAt.Add(st.SeatOfferTTL), Setting: "SeatOfferTTL",
				Limit: events.Duration(st.SeatOfferTTL), Status: s.Status(w.user).String()})
		}
	}
	for _, b := range s.bans {
		if !b.Until.IsZero() {
			consider(events.Lapse{UserID: b.UserID, Kind: events.BanExpired, Since: b.Since,
				Deadline: b.Until, Setting: "BanUntil", Limit: events.Duration(b.Until.Sub(b.Since)),
				Status: s.Status(b.UserID).String()})
		}
	}
	return best, found
}

// NextDeadline returns the earliest pending deadline of s (an invitation's,
// a request's, a speaking slot's, a seat offer's, a reconnect grace's or a
// ban's end), or
// the zero time when nothing is pending. A caller that records lapses
// (decides a [Tick]) at that time keeps the log up to date.
func NextDeadline(s *State) time.Time {
	l, ok := s.nextLapse()
	if !ok {
		return time.Time{}
	}
	return l.Deadline
}

// DueLapses returns the lapses due at now (deadline <= now), in the order
// they happen, each applied before the next is computed: a lapse can free a
// seat whose offer then lapses too. It is what deciding a [Tick] at now
// records.
func DueLapses(s *State, now time.Time) []events.Lapse {
	ls, _ := settle(s, now)
	return ls
}

// At returns the meeting's state as it is at now: s with every lapse due by
// now applied (see [DueLapses]), without recording them: Version, LastHash
// and the command window are s's. When nothing is due it returns s itself;
// either way, treat the result as read-only. Reads (status, roster, request
// list) use At so that they observe deadlines the log has not recorded yet.
func At(s *State, now time.Time) *State {
	_, c := settle(s, now)
	return c
}

// settle applies the lapses due at now to a clone of s (s itself is
// returned when none is due).
func settle(s *State, now time.Time) ([]events.Lapse, *State) {
	var out []events.Lapse
	c := s
	// Each lapse removes its own cause; the bound only guards against a
	// state folded from a log no rule could produce.
	for limit := 3*(len(s.members)+len(s.bans)) + 8; limit > 0; limit-- {
		l, ok := c.nextLapse()
		if !ok || l.Deadline.After(now) {
			return out, c
		}
		if c == s {
			c = s.Clone()
		}
		c.applyLapse(l, c.version)
		out = append(out, l)
	}
	return out, c
}
