// Package projections holds the read models folded from a meeting's events:
// the roster (who is on stage, accepted, requesting, the request queue, the
// stage's phase and whether requests are open),
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
//	r.WaitFor(ctx, res.Seq)
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

// RosterEntry is one participant in a roster: who, their status and
// permissions, and since when (see [aggregate.Member] for the state's
// view of a participant, and [aggregate.Participant] for the input of
// AddParticipant).
type RosterEntry struct {
	UserID      string                `json:"user"`
	Status      aggregate.Status      `json:"status"`
	Permissions aggregate.Permissions `json:"permissions"`
	// Since is when the participant entered their current status.
	Since time.Time `json:"since"`
	// Deadline is when the status lapses under the meeting's settings (the
	// end of an invitation or of a speaking slot); zero when it does not.
	Deadline time.Time `json:"deadline,omitzero"`
	// DisconnectedAt is when the participant's connection dropped; zero
	// while connected.
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	// CoHost is true while a host's PromoteCoHost holds (see
	// docs/stage-controls.md); a host is told by Permissions.
	CoHost bool `json:"coHost,omitempty"`
	// Invited is true while the participant is AcceptedToJoinStage by an
	// invitation (a grant without a request), false for an approved
	// request.
	Invited bool `json:"invited,omitempty"`
}

// StageState is the stage's own state: its phase and the meeting-wide
// requests switch (see docs/stage-controls.md).
type StageState struct {
	// Phase is Backstage, Live or Ended, and Since when it began: the
	// meeting's first event, a StageStarted or StageEnded, or the
	// SettingsChanged that put a stage never started backstage or live.
	Phase aggregate.Phase `json:"phase"`
	Since time.Time       `json:"since"`
	// RequestsOpen is whether users may request to come on stage (a
	// request that would queue fails while closed), and RequestsSince when
	// a host last closed or opened them (zero: never).
	RequestsOpen  bool      `json:"requestsOpen"`
	RequestsSince time.Time `json:"requestsSince,omitzero"`
}

// Waiting is one user on the seat waitlist.
type Waiting struct {
	UserID string `json:"user"`
	// Position is the place on the waitlist, 1 for the first.
	Position int `json:"position"`
	// Since is when they were waitlisted.
	Since time.Time `json:"since"`
}

// SeatOffer is a seat held for a waitlisted user: their Join succeeds
// until Deadline (zero: until they take or decline it).
type SeatOffer struct {
	UserID    string    `json:"user"`
	OfferedAt time.Time `json:"offeredAt"`
	Deadline  time.Time `json:"deadline,omitzero"`
}

// StageBan is a user banned from the stage until Until (zero: until lifted).
type StageBan struct {
	UserID string    `json:"user"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
}

// Disconnection is a participant whose connection dropped, within their
// reconnect grace: they leave the meeting at Deadline unless they reconnect.
type Disconnection struct {
	UserID   string           `json:"user"`
	Status   aggregate.Status `json:"status"`
	Since    time.Time        `json:"since"`
	Deadline time.Time        `json:"deadline"`
}

// Roster is a meeting's stage at one version.
type Roster struct {
	MeetingID string `json:"meeting"`
	// Version is the meeting version the roster reflects.
	Version uint64 `json:"version"`
	// Stage is the stage's phase and whether requests are open.
	Stage StageState `json:"stage"`
	// OnStage and Accepted list user ids, sorted.
	OnStage  []string `json:"onStage"`
	Accepted []string `json:"accepted"`
	// Requests is the request queue, oldest first.
	Requests []AccessRequest `json:"requests"`
	// Participants lists everyone in the meeting, sorted by user id.
	Participants []RosterEntry `json:"participants"`

	// The policies; each list is nil when empty.

	// Settings are the meeting's stage policies (zero: all off).
	Settings aggregate.Settings `json:"settings,omitzero"`
	// Waitlist is the seat waitlist in order, the users holding seat
	// offers first.
	Waitlist []Waiting `json:"waitlist,omitempty"`
	// SeatOffers are the seats held for the head of the waitlist, in
	// waitlist order.
	SeatOffers []SeatOffer `json:"seatOffers,omitempty"`
	// Bans are the stage bans, sorted by user id.
	Bans []StageBan `json:"bans,omitempty"`
	// Disconnected lists the participants within their reconnect grace,
	// sorted by user id.
	Disconnected []Disconnection `json:"disconnected,omitempty"`
}

// RosterOf returns the roster of state s, as its events left it. To see a
// live meeting as it is at a given time (with the lapses due by then
// applied, recorded or not), use [RosterAt].
func RosterOf(s *aggregate.State) Roster {
	open, openSince := s.RequestsOpen()
	r := Roster{MeetingID: s.MeetingID(), Version: s.Version(),
		Stage:   StageState{Phase: s.Phase(), Since: s.PhaseSince(), RequestsOpen: open, RequestsSince: openSince},
		OnStage: []string{}, Accepted: []string{}, Requests: []AccessRequest{}, Participants: []RosterEntry{},
		Settings: s.Settings()}
	for _, m := range s.Members() {
		r.Participants = append(r.Participants, RosterEntry{UserID: m.UserID, Status: m.Status, Permissions: m.Permissions,
			Since: m.Since, Deadline: s.StatusDeadline(m.UserID), DisconnectedAt: m.DisconnectedAt,
			CoHost: m.CoHost, Invited: m.Invited})
		if !m.DisconnectedAt.IsZero() {
			r.Disconnected = append(r.Disconnected, Disconnection{UserID: m.UserID, Status: m.Status,
				Since: m.DisconnectedAt, Deadline: s.GraceDeadline(m.UserID)})
		}
		switch m.Status {
		case aggregate.OnStage:
			r.OnStage = append(r.OnStage, m.UserID)
		case aggregate.AcceptedToJoinStage:
			r.Accepted = append(r.Accepted, m.UserID)
		}
	}
	r.Requests = Requests(s)
	for _, w := range s.Waitlist() {
		r.Waitlist = append(r.Waitlist, Waiting{UserID: w.UserID, Position: w.Position, Since: w.Since})
		if w.Offered {
			r.SeatOffers = append(r.SeatOffers, SeatOffer{UserID: w.UserID, OfferedAt: w.OfferedAt, Deadline: w.OfferDeadline})
		}
	}
	for _, b := range s.Bans() {
		r.Bans = append(r.Bans, StageBan{UserID: b.UserID, Since: b.Since, Until: b.Until})
	}
	return r
}

// RosterAt returns the roster of state s as it is at now: RosterOf of
// [aggregate.At](s, now), with every lapse due by now applied (the Version
// is still s's). The Engine's Roster is RosterAt at its clock's now.
func RosterAt(s *aggregate.State, now time.Time) Roster {
	return RosterOf(aggregate.At(s, now))
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
