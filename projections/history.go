package projections

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// How a stage interval ended ([Stint.End]) or a request was settled
// ([RequestRecord.Outcome]). A Lapsed event ends them with the lapse's kind
// ("SlotEnded", "InvitationExpired", ...); events this package does not know
// end them with their type name.
const (
	EndLeft         = "left"              // the user left the stage
	EndKicked       = "kicked"            // a host kicked them
	EndRemoved      = "left-meeting"      // the backend removed them from the meeting
	EndPermissions  = "permissions"       // a permission change took them off stage / out of the queue
	EndBanned       = "banned"            // a host banned them from the stage
	EndStageEnded   = "stage-ended"       // a host ended the stage for everyone (StageEnded)
	EndBrought      = "brought-on-stage"  // a host brought the requester on stage (BroughtOnStage)
	OutcomeGranted  = "granted"           // a host accepted the request
	OutcomeDenied   = "denied"            // a host denied it
	OutcomeCanceled = "cancelled"         // the requester withdrew it
	OutcomeAuto     = "auto-accepted"     // the requester needed no approval
	OutcomePending  = "pending"           // not settled yet
	roleBackend     = "backend"           // actor of membership commands
	roleCoHost      = "co-host"           // a participant a host promoted (CoHostPromoted)
	roleOutsider    = "not a participant" // an actor the meeting does not know
)

// Stint is one interval a user spent on stage.
type Stint struct {
	UserID string `json:"user"`
	// Joined is when they went on stage; Left when they came off (zero while
	// still on stage).
	Joined        time.Time `json:"joined"`
	JoinedVersion uint64    `json:"joinedVersion"`
	Left          time.Time `json:"left,omitzero"`
	LeftVersion   uint64    `json:"leftVersion,omitempty"`
	// End says how it ended: EndLeft, EndKicked, EndRemoved, EndPermissions,
	// another event's type, or "" while on stage.
	End string `json:"end,omitempty"`
	// By is who ended it when it was not the user: the kicking host.
	By string `json:"by,omitempty"`
	// Reason is the recorded reason of a kick.
	Reason string `json:"reason,omitempty"`
	// BroughtBy is the host who brought the user on stage without their
	// consent (BroughtOnStage); empty when they joined themselves.
	BroughtBy string `json:"broughtBy,omitempty"`
}

// Duration returns how long the stint lasted, up to until while it is still open.
func (s Stint) Duration(until time.Time) time.Duration {
	if !s.Left.IsZero() {
		until = s.Left
	}
	return until.Sub(s.Joined)
}

// RequestRecord is one request to join the stage and how it was settled.
type RequestRecord struct {
	UserID      string    `json:"user"`
	RequestedAt time.Time `json:"requestedAt"`
	Version     uint64    `json:"version"`
	// Outcome is OutcomeGranted, OutcomeDenied (by AccessDenied, or by
	// RequestsClosed denying every pending request), OutcomeCanceled,
	// OutcomeAuto, OutcomePending, EndRemoved, EndPermissions,
	// EndStageEnded, EndBrought, a lapse's kind ("RequestExpired"), or
	// another event's type.
	Outcome string `json:"outcome"`
	// DecidedAt is when it was settled, by whom (the host; the requester for
	// a cancel; empty for the backend), in which version.
	DecidedAt      time.Time `json:"decidedAt,omitzero"`
	DecidedBy      string    `json:"decidedBy,omitempty"`
	DecidedVersion uint64    `json:"decidedVersion,omitempty"`
	// Wait is DecidedAt - RequestedAt (0 while pending).
	Wait time.Duration `json:"waitNs"`
	// Reason is the recorded reason of a deny.
	Reason string `json:"reason,omitempty"`
}

// HistoryEntry is one event of the audit trail, told in words.
type HistoryEntry struct {
	Seq     uint64      `json:"seq,omitempty"`
	Version uint64      `json:"version"`
	Time    time.Time   `json:"time"`
	Type    events.Type `json:"type"`
	Actor   string      `json:"actor,omitempty"`
	// Role is the actor's role when the event happened: "host", "co-host",
	// "speaker" (Allowed), "viewer" (CanRequest), "viewer (not allowed)",
	// "backend" (no actor) or "not a participant".
	Role string `json:"role"`
	// Users are the users the event is about.
	Users []string `json:"users,omitempty"`
	// Text tells the event in a sentence, without the time, e.g.
	// "alice (host) granted bob's request after 42s".
	Text string `json:"text"`
}

// StagePeriod is one of the stage's own periods: a time it was backstage,
// live or ended (see [aggregate.State.Phase]).
type StagePeriod struct {
	Phase aggregate.Phase `json:"phase"`
	// Start is when the period began, at which version; By is who began it:
	// the host who started or ended the stage or changed the settings
	// (StartBackstage), empty for the meeting's start.
	Start        time.Time `json:"start"`
	StartVersion uint64    `json:"startVersion"`
	By           string    `json:"by,omitempty"`
	// End is when the next period began (zero while it lasts).
	End        time.Time `json:"end,omitzero"`
	EndVersion uint64    `json:"endVersion,omitempty"`
}

// Duration returns how long the period lasted, up to until while it lasts.
func (p StagePeriod) Duration(until time.Time) time.Duration {
	if !p.End.IsZero() {
		until = p.End
	}
	return until.Sub(p.Start)
}

// RequestsClosure is a time a host closed requests for the whole meeting
// (RequestsClosed), until one opened them again (RequestsOpened).
type RequestsClosure struct {
	Closed        time.Time `json:"closed"`
	ClosedVersion uint64    `json:"closedVersion"`
	ClosedBy      string    `json:"closedBy"`
	// Denied lists the pending requests the closing denied (the host chose
	// DenyPending), sorted.
	Denied []string `json:"denied,omitempty"`
	// Opened is when requests opened again (zero while closed).
	Opened        time.Time `json:"opened,omitzero"`
	OpenedVersion uint64    `json:"openedVersion,omitempty"`
	OpenedBy      string    `json:"openedBy,omitempty"`
}

// Duration returns how long requests stayed closed, up to until while they are.
func (c RequestsClosure) Duration(until time.Time) time.Duration {
	if !c.Opened.IsZero() {
		until = c.Opened
	}
	return until.Sub(c.Closed)
}

// History is a meeting's audit trail: every event in words, every interval
// on stage, every request and its outcome, and the stage's own periods.
// Build it with [NewHistory] and [History.Apply], or [HistoryOf]; the zero
// value is not usable.
type History struct {
	MeetingID string          `json:"meeting"`
	Entries   []HistoryEntry  `json:"entries"`
	Stints    []Stint         `json:"stints"`
	Requests  []RequestRecord `json:"requests"`
	// Periods are the stage's phases in order (backstage, live, ended),
	// from the first event on; the last one lasts. A meeting that never
	// used the stage controls has one, live. A period that lasted no time
	// (a meeting configured to start backstage at its first instant) is
	// not kept.
	Periods []StagePeriod `json:"periods"`
	// Closures are the times requests were closed for the whole meeting,
	// in order (nil when never).
	Closures []RequestsClosure `json:"requestsClosed,omitempty"`
	// Start and End are the times of the first and last event.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`

	state     *aggregate.State
	openStint map[string]int // user -> index in Stints
	openReq   map[string]int // user -> index in Requests
}

// NewHistory returns the empty history of a meeting.
func NewHistory(meetingID string) *History {
	return &History{MeetingID: meetingID, Entries: []HistoryEntry{}, Stints: []Stint{}, Requests: []RequestRecord{},
		Periods: []StagePeriod{}, state: aggregate.NewState(meetingID), openStint: map[string]int{}, openReq: map[string]int{}}
}

// HistoryOf folds evs (one meeting's events, in order) into a history.
func HistoryOf(meetingID string, evs []events.Envelope) *History {
	h := NewHistory(meetingID)
	for i := range evs {
		h.Apply(&evs[i])
	}
	return h
}

// State returns the meeting's state after the events applied so far. It
// must not be modified.
func (h *History) State() *aggregate.State { return h.state }

// Apply adds the next event of the meeting to the history.
func (h *History) Apply(e *events.Envelope) {
	before := h.state
	if h.Start.IsZero() {
		h.Start = e.Time
	}
	if e.Time.After(h.End) {
		h.End = e.Time
	}
	h.Entries = append(h.Entries, HistoryEntry{
		Seq: e.Seq, Version: e.Version, Time: e.Time, Type: e.Type, Actor: e.Actor,
		Role: Role(before, e.Actor), Users: slices.Clone(e.Users()), Text: h.describe(before, e),
	})
	wasOpen, _ := h.state.RequestsOpen()
	for _, t := range step(h.state, e) {
		h.transition(e, t)
	}
	h.periods(e, wasOpen)
}

// periods follows the stage's phase and the requests switch after e.
func (h *History) periods(e *events.Envelope, wasOpen bool) {
	ph := h.state.Phase()
	switch n := len(h.Periods); {
	case n == 0:
		h.Periods = append(h.Periods, StagePeriod{Phase: ph, Start: e.Time, StartVersion: e.Version})
	case h.Periods[n-1].Phase == ph:
	case h.Periods[n-1].Start.Equal(e.Time):
		// It lasted no time: the new phase replaces it.
		h.Periods[n-1] = StagePeriod{Phase: ph, Start: e.Time, StartVersion: e.Version, By: e.Actor}
		if n > 1 && h.Periods[n-2].Phase == ph {
			h.Periods = h.Periods[:n-1]
			h.Periods[n-2].End, h.Periods[n-2].EndVersion = time.Time{}, 0
		}
	default:
		h.Periods[n-1].End, h.Periods[n-1].EndVersion = e.Time, e.Version
		h.Periods = append(h.Periods, StagePeriod{Phase: ph, Start: e.Time, StartVersion: e.Version, By: e.Actor})
	}
	open, _ := h.state.RequestsOpen()
	switch {
	case wasOpen && !open:
		c := RequestsClosure{Closed: e.Time, ClosedVersion: e.Version, ClosedBy: e.Actor}
		if p, ok := e.Payload.(*events.RequestsClosed); ok {
			c.Denied = slices.Clone(p.Denied)
		}
		h.Closures = append(h.Closures, c)
	case !wasOpen && open && len(h.Closures) > 0:
		c := &h.Closures[len(h.Closures)-1]
		c.Opened, c.OpenedVersion, c.OpenedBy = e.Time, e.Version, e.Actor
	}
}

func (h *History) transition(e *events.Envelope, t transition) {
	end := endOf(e, t.UserID)
	if t.From == aggregate.OnStage {
		if i, ok := h.openStint[t.UserID]; ok {
			s := &h.Stints[i]
			s.Left, s.LeftVersion, s.End = e.Time, e.Version, end
			if e.Actor != t.UserID {
				s.By = e.Actor
			}
			if k, ok := e.Payload.(*events.Kicked); ok {
				s.Reason = k.Reason
			}
			delete(h.openStint, t.UserID)
		}
	}
	if t.To == aggregate.OnStage {
		h.openStint[t.UserID] = len(h.Stints)
		st := Stint{UserID: t.UserID, Joined: e.Time, JoinedVersion: e.Version}
		if e.Type == events.TypeBroughtOnStage {
			st.BroughtBy = e.Actor
		}
		h.Stints = append(h.Stints, st)
	}
	if t.From == aggregate.RequestedToJoinStage {
		if i, ok := h.openReq[t.UserID]; ok {
			r := &h.Requests[i]
			r.Outcome, r.DecidedAt, r.DecidedBy, r.DecidedVersion = end, e.Time, e.Actor, e.Version
			r.Wait = e.Time.Sub(r.RequestedAt)
			if d, ok := e.Payload.(*events.AccessDenied); ok {
				r.Reason = d.Reason
			}
			delete(h.openReq, t.UserID)
		}
	}
	switch {
	case t.To == aggregate.RequestedToJoinStage:
		h.openReq[t.UserID] = len(h.Requests)
		h.Requests = append(h.Requests, RequestRecord{UserID: t.UserID, RequestedAt: e.Time, Version: e.Version, Outcome: OutcomePending})
	case e.Type == events.TypeAccessRequested && t.UserID == e.Actor && t.To == aggregate.AcceptedToJoinStage:
		h.Requests = append(h.Requests, RequestRecord{UserID: t.UserID, RequestedAt: e.Time, Version: e.Version,
			Outcome: OutcomeAuto, DecidedAt: e.Time, DecidedBy: e.Actor, DecidedVersion: e.Version})
	}
}

// endOf names how event e ended user's stint or request.
func endOf(e *events.Envelope, user string) string {
	switch e.Type {
	case events.TypeStageLeft:
		return EndLeft
	case events.TypeKicked:
		return EndKicked
	case events.TypeParticipantLeft:
		return EndRemoved
	case events.TypePermissionsChanged:
		return EndPermissions
	case events.TypeAccessGranted:
		return OutcomeGranted
	case events.TypeAccessDenied:
		return OutcomeDenied
	case events.TypeAccessRequestCancelled:
		return OutcomeCanceled
	case events.TypeStageBanned:
		return EndBanned
	case events.TypeStageEnded:
		return EndStageEnded
	case events.TypeRequestsClosed:
		return OutcomeDenied
	case events.TypeBroughtOnStage:
		return EndBrought
	case events.TypeLapsed:
		if p, ok := e.Payload.(*events.Lapsed); ok {
			for _, l := range p.Lapses {
				if l.UserID == user {
					return string(l.Kind)
				}
			}
		}
	}
	return string(e.Type)
}

// ForUser returns the part of the history about user: the events they
// caused or were named in, their stints and their requests, with the
// stage's periods and closures (the meeting's, not theirs).
func (h *History) ForUser(user string) *History {
	out := &History{MeetingID: h.MeetingID, Start: h.Start, End: h.End,
		Entries: []HistoryEntry{}, Stints: []Stint{}, Requests: []RequestRecord{},
		Periods: slices.Clone(h.Periods), Closures: slices.Clone(h.Closures)}
	for _, e := range h.Entries {
		if e.Actor == user || slices.Contains(e.Users, user) {
			out.Entries = append(out.Entries, e)
		}
	}
	for _, s := range h.Stints {
		if s.UserID == user {
			out.Stints = append(out.Stints, s)
		}
	}
	for _, r := range h.Requests {
		if r.UserID == user {
			out.Requests = append(out.Requests, r)
		}
	}
	return out
}

// Users returns every user the history mentions, in order of first mention.
func (h *History) Users() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range h.Entries {
		for _, u := range append([]string{e.Actor}, e.Users...) {
			if u != "" && !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// Role names user's role in state s: "host", "co-host" (a participant a
// host promoted), "speaker" (Allowed), "viewer" (CanRequest), "viewer (not
// allowed)", "backend" for the empty actor, or "not a participant".
func Role(s *aggregate.State, user string) string {
	if user == "" {
		return roleBackend
	}
	m, ok := s.Member(user)
	if !ok {
		return roleOutsider
	}
	if m.CoHost && !m.IsHost() {
		return roleCoHost
	}
	return roleOf(m.Permissions)
}

// roleOf names the preset p is (aggregate.PresetOf), "viewer (not
// allowed)" for the view-only one, as the tool always printed it.
func roleOf(p aggregate.Permissions) string {
	if pr := aggregate.PresetOf(p); pr != aggregate.PresetViewOnly {
		return string(pr)
	}
	return "viewer (not allowed)"
}

// describe tells e in words, from the state before it.
func (h *History) describe(s *aggregate.State, e *events.Envelope) string {
	who := e.Actor
	if who == "" {
		who = "the backend"
	} else {
		who += " (" + Role(s, e.Actor) + ")"
	}
	waited := func(u string) string {
		if i, ok := h.openReq[u]; ok {
			return " after " + FormatDuration(e.Time.Sub(h.Requests[i].RequestedAt))
		}
		return ""
	}
	onFor := func(u string) string {
		if i, ok := h.openStint[u]; ok {
			return " after " + FormatDuration(e.Time.Sub(h.Stints[i].Joined))
		}
		return ""
	}
	reason := func(r string) string {
		if r == "" {
			return ""
		}
		return fmt.Sprintf(" (reason: %q)", r)
	}
	var b strings.Builder
	switch p := e.Payload.(type) {
	case *events.ParticipantJoined:
		fmt.Fprintf(&b, "%s joined the meeting as %s", p.UserID, roleOf(p.Permissions))
	case *events.ParticipantLeft:
		if p.Reason == "Disconnected" {
			fmt.Fprintf(&b, "%s dropped out of the meeting", p.UserID)
		} else {
			fmt.Fprintf(&b, "%s left the meeting", p.UserID)
		}
		if st := aggregate.ParseStatus(p.Status); st != aggregate.OffStage && st != 0 {
			fmt.Fprintf(&b, " (was %s)", p.Status)
		}
	case *events.PermissionsChanged:
		fmt.Fprintf(&b, "%s is now %s (stage access %s)", p.UserID, roleOf(p.Permissions), p.Permissions.StageAccess)
		if old := s.Status(p.UserID); old != 0 && old.String() != p.Status {
			fmt.Fprintf(&b, ", moved from %s to %s", old, p.Status)
		}
	case *events.AccessRequested:
		fmt.Fprintf(&b, "%s requested to join the stage", who)
		if p.AutoAccepted {
			b.WriteString(", accepted automatically")
		}
	case *events.AccessRequestCancelled:
		fmt.Fprintf(&b, "%s cancelled their request%s", who, waited(e.Actor))
	case *events.AccessGranted:
		var granted, invited []string
		for _, u := range p.Users {
			// The event names the invited (Invited); a grant recorded
			// before it did has none, and the state before tells.
			if !slices.Contains(p.Invited, u) && (len(p.Invited) > 0 || s.Status(u) == aggregate.RequestedToJoinStage) {
				granted = append(granted, u+"'s request"+waited(u))
			} else {
				invited = append(invited, u)
			}
		}
		var parts []string
		if len(granted) > 0 {
			parts = append(parts, "granted "+strings.Join(granted, ", "))
		}
		if len(invited) > 0 {
			parts = append(parts, "invited "+strings.Join(invited, ", "))
		}
		fmt.Fprintf(&b, "%s %s", who, strings.Join(parts, " and "))
		writeSkips(&b, p.Skipped)
	case *events.AccessDenied:
		var parts []string
		for _, u := range p.Users {
			parts = append(parts, u+"'s request"+waited(u))
		}
		fmt.Fprintf(&b, "%s denied %s%s", who, strings.Join(parts, ", "), reason(p.Reason))
		writeSkips(&b, p.Skipped)
	case *events.StageJoined:
		fmt.Fprintf(&b, "%s joined the stage", who)
	case *events.StageLeft:
		if p.Declined {
			fmt.Fprintf(&b, "%s declined the invitation", who)
		} else {
			fmt.Fprintf(&b, "%s left the stage%s", who, onFor(e.Actor))
		}
	case *events.Kicked:
		var kicked, revoked []string
		for _, u := range p.Users {
			if s.Status(u) == aggregate.AcceptedToJoinStage {
				revoked = append(revoked, u+"'s invitation")
			} else {
				kicked = append(kicked, u+" off the stage"+onFor(u))
			}
		}
		var parts []string
		if len(kicked) > 0 {
			parts = append(parts, "kicked "+strings.Join(kicked, ", "))
		}
		if len(revoked) > 0 {
			parts = append(parts, "revoked "+strings.Join(revoked, ", "))
		}
		fmt.Fprintf(&b, "%s %s%s", who, strings.Join(parts, " and "), reason(p.Reason))
		writeSkips(&b, p.Skipped)
	case *events.SettingsChanged:
		fmt.Fprintf(&b, "%s set the stage policies: %s", who, describeSettings(p.Settings))
	case *events.SeatWaitlisted:
		fmt.Fprintf(&b, "%s tried to join a full stage (%d seats) and was waitlisted at position %d", who, p.MaxOnStage, p.Position)
	case *events.StageBanned:
		until := "until lifted"
		if !p.Until.IsZero() {
			until = "until " + p.Until.UTC().Format("15:04:05") + " (" + FormatDuration(p.Until.Sub(e.Time)) + ")"
		}
		fmt.Fprintf(&b, "%s banned %s from the stage %s", who, p.UserID, until)
		if st := aggregate.ParseStatus(p.Status); st != aggregate.OffStage && st != 0 {
			fmt.Fprintf(&b, " (was %s)", p.Status)
		}
	case *events.BanLifted:
		fmt.Fprintf(&b, "%s lifted %s's stage ban", who, p.UserID)
	case *events.Disconnected:
		fmt.Fprintf(&b, "%s's connection dropped (keeps their place for %s)", p.UserID, FormatDuration(time.Duration(p.Grace)))
	case *events.Reconnected:
		fmt.Fprintf(&b, "%s reconnected", p.UserID)
	case *events.StageStarted:
		switch p.From {
		case events.PhaseBackstage:
			fmt.Fprintf(&b, "%s started the stage: live after %s backstage", who, FormatDuration(e.Time.Sub(s.PhaseSince())))
		case events.PhaseEnded:
			fmt.Fprintf(&b, "%s started the stage again: live, %s after it ended", who, FormatDuration(e.Time.Sub(s.PhaseSince())))
		default:
			fmt.Fprintf(&b, "%s started the stage (from %s)", who, p.From)
		}
	case *events.StageEnded:
		fmt.Fprintf(&b, "%s ended the stage for everyone", who)
		if p.From == events.PhaseBackstage {
			b.WriteString(" (it was backstage)")
		}
		var parts []string
		if len(p.OnStage) > 0 {
			var on []string
			for _, u := range p.OnStage {
				if f := onFor(u); f != "" {
					u += " (" + f[1:] + ")"
				}
				on = append(on, u)
			}
			parts = append(parts, "moved off the stage "+strings.Join(on, ", "))
		}
		if len(p.Accepted) > 0 {
			var acc []string
			for _, u := range p.Accepted {
				if m, _ := s.Member(u); m.Invited {
					acc = append(acc, u+"'s invitation")
				} else {
					acc = append(acc, u+"'s approved request")
				}
			}
			parts = append(parts, "withdrew "+strings.Join(acc, ", "))
		}
		if len(p.Requests) > 0 {
			var reqs []string
			for _, u := range p.Requests {
				reqs = append(reqs, u+"'s request"+waited(u))
			}
			parts = append(parts, "closed "+strings.Join(reqs, ", "))
		}
		if len(parts) == 0 {
			b.WriteString(": nobody was on stage, accepted or waiting")
		} else {
			b.WriteString(": " + strings.Join(parts, "; "))
		}
	case *events.RequestsClosed:
		fmt.Fprintf(&b, "%s closed requests for the whole meeting", who)
		switch {
		case p.DenyPending && len(p.Denied) > 0:
			var parts []string
			for _, u := range p.Denied {
				parts = append(parts, u+"'s request"+waited(u))
			}
			fmt.Fprintf(&b, " and denied every pending one: %s", strings.Join(parts, ", "))
		case p.DenyPending:
			b.WriteString(" and denied every pending one (none was)")
		case s.QueueLen() > 0:
			var q []string
			for _, m := range s.Queue() {
				q = append(q, m.UserID)
			}
			fmt.Fprintf(&b, "; the pending requests stay (%s)", strings.Join(q, ", "))
		}
	case *events.RequestsOpened:
		fmt.Fprintf(&b, "%s opened requests", who)
		if _, since := s.RequestsOpen(); !since.IsZero() {
			fmt.Fprintf(&b, " (closed for %s)", FormatDuration(e.Time.Sub(since)))
		}
	case *events.CoHostPromoted:
		fmt.Fprintf(&b, "%s made %s a co-host", who, p.UserID)
	case *events.CoHostDemoted:
		fmt.Fprintf(&b, "%s took %s's co-host role", who, p.UserID)
	case *events.InvitationDeclined:
		if p.Invited {
			fmt.Fprintf(&b, "%s declined the invitation", who)
		} else {
			fmt.Fprintf(&b, "%s declined their approved request", who)
		}
	case *events.BroughtOnStage:
		fmt.Fprintf(&b, "%s brought %s on stage without their consent (the settings allow it)", who, p.UserID)
		if st := aggregate.ParseStatus(p.Status); st != aggregate.OffStage && st != 0 {
			fmt.Fprintf(&b, "; was %s%s", p.Status, waited(p.UserID))
		}
	case *events.Lapsed:
		var parts []string
		for _, l := range p.Lapses {
			part := describeLapse(l)
			if !l.Deadline.Equal(e.Time) {
				part += " (at " + l.Deadline.UTC().Format("15:04:05") + ")"
			}
			parts = append(parts, part)
		}
		b.WriteString(strings.Join(parts, "; "))
	default:
		fmt.Fprintf(&b, "%s: %s", who, e.Type)
		if us := e.Users(); len(us) > 0 && !(len(us) == 1 && us[0] == e.Actor) {
			fmt.Fprintf(&b, " %s", strings.Join(us, ", "))
		}
	}
	return b.String()
}

func describeSettings(s events.Settings) string {
	if s.IsZero() {
		return "none (no seat limit, no deadlines)"
	}
	var parts []string
	if s.MaxOnStage > 0 {
		parts = append(parts, fmt.Sprintf("%d seats", s.MaxOnStage))
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"seat offers last", s.SeatOfferTTL}, {"invitations last", s.InvitationTTL},
		{"speaking slots of", s.SpeakingSlot}, {"request cooldown", s.RequestCooldown},
		{"reconnect grace", s.ReconnectGrace}, {"requests last", s.RequestTTL},
	} {
		if d.d > 0 {
			parts = append(parts, d.name+" "+FormatDuration(d.d))
		}
	}
	if s.StartBackstage {
		parts = append(parts, "the stage starts backstage")
	}
	if s.AllowBringOnStage {
		parts = append(parts, "hosts may bring users on stage")
	}
	return strings.Join(parts, ", ")
}

func describeLapse(l events.Lapse) string {
	after := FormatDuration(l.Deadline.Sub(l.Since))
	switch l.Kind {
	case events.InvitationExpired:
		return fmt.Sprintf("%s's invitation expired after %s", l.UserID, after)
	case events.SlotEnded:
		return fmt.Sprintf("%s's speaking slot ended after %s", l.UserID, after)
	case events.SeatOfferLapsed:
		return fmt.Sprintf("%s's seat offer lapsed after %s", l.UserID, after)
	case events.GraceExpired:
		return fmt.Sprintf("%s did not reconnect within %s and left the meeting", l.UserID, after)
	case events.BanExpired:
		return fmt.Sprintf("%s's stage ban ended after %s", l.UserID, after)
	case events.RequestExpired:
		return fmt.Sprintf("%s's request expired after %s", l.UserID, after)
	}
	return fmt.Sprintf("%s: %s lapsed after %s", l.UserID, l.Kind, after)
}

func writeSkips(b *strings.Builder, skips []events.Skip) {
	if len(skips) == 0 {
		return
	}
	var parts []string
	for _, s := range skips {
		parts = append(parts, s.UserID+" ("+s.Reason+")")
	}
	fmt.Fprintf(b, "; skipped %s", strings.Join(parts, ", "))
}

// FormatDuration writes d for people: "42s", "3m12s", "1h02m05s"; rounded
// to the second, or to the millisecond under a second.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
