package aggregate

import (
	"cmp"
	"slices"
	"time"

	"github.com/productdb/stage/events"
)

// Phase is the stage's own state: backstage, live or ended.
type Phase uint8

// The phases. A meeting's stage is live from its start, or backstage when
// its settings say StartBackstage, until a host starts or ends it.
const (
	// PhaseBackstage: hosts, co-hosts and speakers (Allowed or invited
	// users) prepare on stage; a request that would queue fails with
	// ErrBackstage.
	PhaseBackstage Phase = iota + 1
	// PhaseLive: the stage as the seed rules describe it.
	PhaseLive
	// PhaseEnded: nobody can request, be granted, be brought or join
	// (ErrStageEnded); StageEnded moved everyone off.
	PhaseEnded
)

// String returns the phase's name as written in the log ("Backstage",
// "Live", "Ended"), or "None" for the zero Phase.
func (p Phase) String() string {
	switch p {
	case PhaseBackstage:
		return events.PhaseBackstage
	case PhaseLive:
		return events.PhaseLive
	case PhaseEnded:
		return events.PhaseEnded
	}
	return "None"
}

// MarshalText writes the phase's name.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a phase name written by MarshalText.
func (p *Phase) UnmarshalText(b []byte) error {
	*p = 0
	for q := PhaseBackstage; q <= PhaseEnded; q++ {
		if q.String() == string(b) {
			*p = q
		}
	}
	return nil
}

// Phase returns the stage's phase.
func (s *State) Phase() Phase {
	if s.phase != 0 {
		return s.phase
	}
	if s.settings.StartBackstage {
		return PhaseBackstage
	}
	return PhaseLive
}

// PhaseSince returns when the current phase began: the meeting's first
// event, a StageStarted or StageEnded, or the SettingsChanged that put a
// stage never started backstage or live.
func (s *State) PhaseSince() time.Time { return s.phaseSince }

// RequestsOpen reports whether users may request to come on stage (the
// meeting-wide switch; the phase and each user's rules still apply), and
// since when the switch is in its position (zero if never switched).
func (s *State) RequestsOpen() (open bool, since time.Time) { return !s.reqClosed, s.reqSwitchAt }

// reqEntry is one request in reqq: the user and the version of the event
// that made it (the member's requestVersion while it is pending).
type reqEntry struct {
	user    string
	version uint64
}

// live reports whether the entry is a pending request.
func (s *State) live(r reqEntry) bool {
	m, ok := s.members[r.user]
	return ok && m.Status == RequestedToJoinStage && m.requestVersion == r.version
}

// trimRequests drops stale entries from the head of reqq, and compacts it
// when stale entries outnumber the pending ones: each entry is dropped
// once, so the cost is constant per request, amortized.
func (s *State) trimRequests() {
	i := 0
	for i < len(s.reqq) && !s.live(s.reqq[i]) {
		i++
	}
	if i > 0 {
		s.reqq = slices.Delete(s.reqq, 0, i)
	}
	if len(s.reqq) > 2*s.requested+64 {
		s.reqq = slices.DeleteFunc(s.reqq, func(r reqEntry) bool { return !s.live(r) })
	}
}

// pending returns the users with a pending request, sorted by user id.
func (s *State) pending() []string {
	var out []string
	for _, r := range s.reqq {
		if s.live(r) {
			out = append(out, r.user)
		}
	}
	slices.Sort(out)
	return out
}

// rebuildRequests restores reqq from the members (after a snapshot).
func (s *State) rebuildRequests() {
	s.reqq = s.reqq[:0]
	for _, m := range s.members {
		if m.Status == RequestedToJoinStage {
			s.reqq = append(s.reqq, reqEntry{user: m.UserID, version: m.requestVersion})
		}
	}
	slices.SortFunc(s.reqq, func(a, b reqEntry) int {
		return cmp.Or(cmp.Compare(a.version, b.version), cmp.Compare(a.user, b.user))
	})
}

// evolveControl applies the stage-control events.
func (s *State) evolveControl(e *events.Envelope, set func(string, Status)) {
	t := e.Time
	switch p := e.Payload.(type) {
	case *events.StageStarted:
		s.phase, s.phaseSince = PhaseLive, t
	case *events.StageEnded:
		for _, l := range [...][]string{p.OnStage, p.Accepted, p.Requests} {
			for _, u := range l {
				if m, ok := s.members[u]; ok && m.Status != OffStage {
					set(u, OffStage)
				}
			}
		}
		s.phase, s.phaseSince = PhaseEnded, t
	case *events.RequestsClosed:
		s.reqClosed, s.reqSwitchAt = true, t
		for _, u := range p.Denied {
			if m, ok := s.members[u]; ok && m.Status == RequestedToJoinStage {
				set(u, OffStage)
				s.denied[u] = t
			}
		}
	case *events.RequestsOpened:
		s.reqClosed, s.reqSwitchAt = false, t
	case *events.CoHostPromoted:
		if m, ok := s.members[p.UserID]; ok {
			m.CoHost = true
			s.indexHost(m)
		}
	case *events.CoHostDemoted:
		if m, ok := s.members[p.UserID]; ok {
			m.CoHost = false
			s.indexHost(m)
		}
	case *events.InvitationDeclined:
		if m, ok := s.members[e.Actor]; ok && m.Status != OffStage {
			set(e.Actor, OffStage)
		}
	case *events.BroughtOnStage:
		if _, ok := s.members[p.UserID]; ok {
			set(p.UserID, OnStage)
		}
	}
}

// onStageOrAccepted returns the members OnStage and those
// AcceptedToJoinStage, each sorted by user id; it walks the timed index,
// not the audience.
func (s *State) onStageOrAccepted() (on, accepted []string) {
	for u := range s.timed {
		switch s.members[u].Status {
		case OnStage:
			on = append(on, u)
		case AcceptedToJoinStage:
			accepted = append(accepted, u)
		}
	}
	slices.Sort(on)
	slices.Sort(accepted)
	return on, accepted
}

// The deciders of the stage-control commands.

func (d *decider) startStage() (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	ph := d.s.Phase()
	if ph == PhaseLive {
		return nil, reject(d.name, "", ErrInvalidState, "the stage is already live")
	}
	return &events.StageStarted{From: ph.String()}, nil
}

func (d *decider) endStage() (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	ph := d.s.Phase()
	if ph == PhaseEnded {
		return nil, reject(d.name, "", ErrInvalidState, "the stage has already ended")
	}
	on, accepted := d.s.onStageOrAccepted()
	return &events.StageEnded{From: ph.String(), OnStage: on, Accepted: accepted, Requests: d.s.pending()}, nil
}

func (d *decider) closeRequests(a CloseRequests) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	if d.s.reqClosed {
		return nil, reject(d.name, "", ErrInvalidState, "requests are already closed")
	}
	p := &events.RequestsClosed{DenyPending: a.DenyPending}
	if a.DenyPending {
		p.Denied = d.s.pending()
	}
	return p, nil
}

func (d *decider) openRequests() (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	if !d.s.reqClosed {
		return nil, reject(d.name, "", ErrInvalidState, "requests are already open")
	}
	return &events.RequestsOpened{}, nil
}

func (d *decider) promote(a PromoteCoHost) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	m, ok := d.s.members[a.UserID]
	switch {
	case !ok:
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	case m.IsHost():
		return nil, reject(d.name, a.UserID, ErrInvalidState, "already a host")
	case m.CoHost:
		return nil, reject(d.name, a.UserID, ErrInvalidState, "already a co-host")
	}
	return &events.CoHostPromoted{UserID: a.UserID}, nil
}

func (d *decider) demote(a DemoteCoHost) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	m, ok := d.s.members[a.UserID]
	switch {
	case !ok:
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	case !m.CoHost:
		return nil, reject(d.name, a.UserID, ErrInvalidState, "not a co-host")
	}
	return &events.CoHostDemoted{UserID: a.UserID}, nil
}

func (d *decider) declineInvitation(m *Member) (events.Payload, error) {
	if m.Status != AcceptedToJoinStage {
		return nil, reject(d.name, m.UserID, ErrInvalidState, "no invitation or approval to decline (status %s)", m.Status)
	}
	return &events.InvitationDeclined{Invited: m.Invited}, nil
}

func (d *decider) bringOnStage(a BringOnStage) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	if !d.s.settings.AllowBringOnStage {
		return nil, reject(d.name, a.UserID, ErrPermissionDenied, "the meeting's settings do not allow bringing users on stage (AllowBringOnStage)")
	}
	if err := d.notEnded(a.UserID); err != nil {
		return nil, err
	}
	m, ok := d.s.members[a.UserID]
	if !ok {
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	}
	if m.Permissions.StageAccess == NotAllowed {
		return nil, reject(d.name, a.UserID, ErrPermissionDenied, "stage access is NotAllowed")
	}
	if err := d.banned(a.UserID); err != nil {
		return nil, err
	}
	if m.Status == OnStage {
		return nil, reject(d.name, a.UserID, ErrInvalidState, "already on stage")
	}
	if limit := d.s.settings.MaxOnStage; limit > 0 {
		i := d.s.waitIndex(a.UserID)
		held := i >= 0 && d.s.waitlist[i].offered
		if !held && d.s.onStage+d.s.offers() >= limit {
			return nil, reject(d.name, a.UserID, ErrStageFull, "all %d seats are taken or held", limit)
		}
	}
	return &events.BroughtOnStage{UserID: a.UserID, Status: m.Status.String()}, nil
}

// notEnded fails with ErrStageEnded while the stage has ended.
func (d *decider) notEnded(user string) error {
	if d.s.Phase() == PhaseEnded {
		return reject(d.name, user, ErrStageEnded, "the stage ended at %s; a host may start it again", stamp(d.s.phaseSince))
	}
	return nil
}

// mayQueue checks the phase and the requests switch for a request that
// would wait in the queue.
func (d *decider) mayQueue(m *Member) error {
	if d.s.Phase() == PhaseBackstage {
		return reject(d.name, m.UserID, ErrBackstage, "the stage is backstage since %s: only hosts, co-hosts and speakers may come on stage until a host starts it", stamp(d.s.phaseSince))
	}
	if d.s.reqClosed {
		return reject(d.name, m.UserID, ErrRequestsClosed, "a host closed requests at %s", stamp(d.s.reqSwitchAt))
	}
	return nil
}
