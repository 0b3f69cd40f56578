package aggregate

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/productdb/stage/events"
)

// Status is a participant's place relative to the stage.
type Status uint8

// The statuses. The zero Status means "no status": the user is not a participant.
const (
	// OffStage: watching.
	OffStage Status = iota + 1
	// RequestedToJoinStage: has a pending request, waiting for a host.
	RequestedToJoinStage
	// AcceptedToJoinStage: accepted or invited; may now Join (or decline with Leave).
	AcceptedToJoinStage
	// OnStage: publishing.
	OnStage
)

// String returns the status's name as in the client SDKs, or "None" for the zero Status.
func (s Status) String() string {
	switch s {
	case OffStage:
		return "OffStage"
	case RequestedToJoinStage:
		return "RequestedToJoinStage"
	case AcceptedToJoinStage:
		return "AcceptedToJoinStage"
	case OnStage:
		return "OnStage"
	}
	return "None"
}

// MarshalText writes the status's name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status name written by MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	*s = ParseStatus(string(b))
	return nil
}

// ParseStatus returns the Status named name, or the zero Status.
func ParseStatus(name string) Status {
	for st := OffStage; st <= OnStage; st++ {
		if st.String() == name {
			return st
		}
	}
	return 0
}

// Member is one participant as the state knows them.
type Member struct {
	UserID      string
	Permissions Permissions
	Status      Status
	// Since is when the participant entered their current status.
	Since time.Time
	// RequestedAt is when they made their latest request; set while
	// RequestedToJoinStage, zero otherwise.
	RequestedAt time.Time
	// DisconnectedAt is when the backend reported the participant's
	// connection lost (Disconnect); zero while connected. During the
	// ReconnectGrace they keep everything; after it they leave the meeting.
	DisconnectedAt time.Time
	// CoHost is true while a host has made the participant a co-host
	// (PromoteCoHost): they grant, deny and kick like a host, within the
	// limits of the package documentation. It ends with their membership.
	CoHost bool
	// Invited is true while the participant is AcceptedToJoinStage by an
	// invitation (a grant with no request), not an approved request.
	Invited bool
	// requestVersion orders requests made at the same time.
	requestVersion uint64
}

// IsHost reports whether the member holds the host privilege
// (AcceptStageRequests, from the backend): a host, the owner's role.
func (m *Member) IsHost() bool { return m.Permissions.AcceptStageRequests }

// IsModerator reports whether the member moderates the stage: a host or a
// co-host. Moderators list, grant, deny and kick.
func (m *Member) IsModerator() bool { return m.IsHost() || m.CoHost }

// State is one meeting's stage, folded from its events by [Evolve]. The zero
// value is not usable; start from [NewState]. A State is not safe for
// concurrent use; [Decide] only reads it.
type State struct {
	meetingID string
	version   uint64
	lastHash  events.Hash
	lastTime  time.Time
	members   map[string]*Member

	// The policies (policy.go).
	settings     Settings
	waitlist     []waiter // seat waitlist in order; the offered ones are a prefix
	bans         map[string]Ban
	denied       map[string]time.Time // latest denial per user, for RequestCooldown
	onStage      int                  // members OnStage
	disconnected int                  // members with DisconnectedAt set
	// timed indexes the members who may have a deadline (accepted, on
	// stage or disconnected), so that finding the next deadline does not
	// walk a large audience.
	timed map[string]struct{}
	// hosts indexes the members holding AcceptStageRequests, and requested
	// counts the members in RequestedToJoinStage, so that the hosts and
	// the queue's length cost nothing in a large audience.
	hosts     []string // sorted; a meeting has few hosts
	cohosts   []string // sorted; the members with CoHost set
	requested int
	// reqq holds the requests in the order they were made, with stale
	// entries (requests since cancelled, denied, granted or lapsed) left
	// in place and dropped from the head as they reach it: the head is
	// always the oldest pending request, for RequestTTL, whatever the
	// audience's size (stagecontrol.go).
	reqq []reqEntry

	// The stage-control state (stagecontrol.go).
	phase       Phase     // set by StageStarted and StageEnded; 0 until then
	phaseSince  time.Time // when the phase began
	reqClosed   bool      // requests closed for the whole meeting
	reqSwitchAt time.Time // when requests were last closed or opened

	recent window
}

// NewState returns the empty state of a meeting: version 0, no participants.
func NewState(meetingID string) *State {
	return &State{meetingID: meetingID, members: map[string]*Member{},
		bans: map[string]Ban{}, denied: map[string]time.Time{}, timed: map[string]struct{}{}}
}

// MeetingID returns the meeting the state belongs to.
func (s *State) MeetingID() string { return s.meetingID }

// Version returns the version of the last event applied (0 for none).
func (s *State) Version() uint64 { return s.version }

// LastHash returns the Hash of the last event applied (zero for none): the
// PrevHash of the next event.
func (s *State) LastHash() events.Hash { return s.lastHash }

// LastTime returns the latest event time applied.
func (s *State) LastTime() time.Time { return s.lastTime }

// Member returns the participant userID, if they are one.
func (s *State) Member(userID string) (Member, bool) {
	m, ok := s.members[userID]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// Status returns userID's status, or the zero Status when they are not a participant.
func (s *State) Status(userID string) Status {
	if m, ok := s.members[userID]; ok {
		return m.Status
	}
	return 0
}

// Members returns every participant, ordered by user id.
func (s *State) Members() []Member {
	out := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.UserID, b.UserID) })
	return out
}

// Len returns the number of participants.
func (s *State) Len() int { return len(s.members) }

// Hosts returns the participants holding AcceptStageRequests, ordered by
// user id. It costs the number of hosts, not of participants.
func (s *State) Hosts() []string {
	return slices.Clone(s.hosts)
}

// Moderators returns the hosts and co-hosts, ordered by user id: the
// participants who see and decide stage requests. It costs their number,
// not the audience's.
func (s *State) Moderators() []string {
	out := make([]string, 0, len(s.hosts)+len(s.cohosts))
	out = append(append(out, s.hosts...), s.cohosts...)
	slices.Sort(out)
	return slices.Compact(out)
}

// CoHosts returns the co-hosts, ordered by user id.
func (s *State) CoHosts() []string { return slices.Clone(s.cohosts) }

// QueueLen returns the number of pending requests (the length of Queue),
// in constant time.
func (s *State) QueueLen() int { return s.requested }

// Queue returns the pending requests, oldest first: the participants in
// RequestedToJoinStage ordered by the time of their latest request (ties by
// the order of the events).
func (s *State) Queue() []Member {
	var out []Member
	for _, m := range s.members {
		if m.Status == RequestedToJoinStage {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int {
		if c := a.RequestedAt.Compare(b.RequestedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.requestVersion, b.requestVersion)
	})
	return out
}

// Applied reports whether the command with key k (see [events.KeyOf]) is
// in the recent window, and the versions of the events it produced.
func (s *State) Applied(k events.CommandKey) (first, last uint64, ok bool) {
	a, ok := s.recent.find(k)
	return a.first, a.last, ok
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := *s
	c.members = make(map[string]*Member, len(s.members))
	for k, m := range s.members {
		mm := *m
		c.members[k] = &mm
	}
	c.recent = s.recent.clone()
	c.waitlist = slices.Clone(s.waitlist)
	c.bans = maps.Clone(s.bans)
	c.denied = maps.Clone(s.denied)
	c.timed = maps.Clone(s.timed)
	c.hosts = slices.Clone(s.hosts)
	c.cohosts = slices.Clone(s.cohosts)
	c.reqq = slices.Clone(s.reqq)
	return &c
}

// Equal reports whether s and o hold the same meeting state: version, hash,
// participants with their statuses and queue positions, the policies'
// state (settings, waitlist, offers, bans, denials, disconnections), and
// command window.
func (s *State) Equal(o *State) bool {
	if s.meetingID != o.meetingID || s.version != o.version || s.lastHash != o.lastHash ||
		!s.lastTime.Equal(o.lastTime) || len(s.members) != len(o.members) || !s.recent.equal(o.recent) {
		return false
	}
	for k, m := range s.members {
		om, ok := o.members[k]
		if !ok || m.UserID != om.UserID || m.Permissions != om.Permissions || m.Status != om.Status ||
			!m.Since.Equal(om.Since) || !m.RequestedAt.Equal(om.RequestedAt) || m.requestVersion != om.requestVersion ||
			!m.DisconnectedAt.Equal(om.DisconnectedAt) || m.CoHost != om.CoHost || m.Invited != om.Invited {
			return false
		}
	}
	if s.phase != o.phase || !s.phaseSince.Equal(o.phaseSince) || s.reqClosed != o.reqClosed ||
		!s.reqSwitchAt.Equal(o.reqSwitchAt) {
		return false
	}
	if s.settings != o.settings || s.onStage != o.onStage || s.disconnected != o.disconnected ||
		!slices.EqualFunc(s.waitlist, o.waitlist, waiter.equal) ||
		!maps.EqualFunc(s.bans, o.bans, Ban.equal) ||
		!maps.EqualFunc(s.denied, o.denied, time.Time.Equal) || !maps.Equal(s.timed, o.timed) {
		return false
	}
	return true
}
