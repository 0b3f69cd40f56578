package aggregate

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/productdb/stage/events"
)

// MaxReasonLen is the longest free-text reason on a deny or kick, in bytes.
const MaxReasonLen = 1024

// MaxCommandIDLen is the longest command or correlation id, in bytes.
const MaxCommandIDLen = 256

// Decision is what [Decide] returns for an accepted command.
type Decision struct {
	// Events are the events to append, in order. Their ID, PrevHash, Hash and
	// Seq are unset: the caller gives each a fresh id, seals it to the
	// previous event's hash and appends. Every command yields one event,
	// preceded by a Lapsed event when deadlines had passed unrecorded (see
	// the package documentation); a Tick with nothing due yields none.
	Events []events.Envelope
	// Rejected lists the ineligible targets of a list command, in the order
	// given. When no target is eligible the command fails (with the first
	// target's error) and Rejected still lists every one of them.
	Rejected []Rejection
	// Duplicate is true when the command's id was already applied: Events is
	// empty and First..Last are the versions of the events it produced then.
	Duplicate   bool
	First, Last uint64
	// Err, when set, is the command's outcome even though Events must be
	// appended: a Join on a full stage records SeatWaitlisted and fails with
	// an [*Error] wrapping ErrStageFull. Append Events, then return Err.
	Err error
}

// Decide checks cmd against the stage rules in state s at time now and
// returns the events it produces, or an [*Error] wrapping one of the sentinel
// errors. It reads s and never changes it; it does no I/O and consults no
// clock: the same inputs always give the same decision.
//
// A meeting with no events exists once AddParticipant starts it: any
// other command on it (but a Tick, which yields nothing) fails with
// ErrNoMeeting.
//
// Membership commands (AddParticipant, RemoveParticipant,
// UpdatePermissions, Disconnect, Reconnect) are the backend's: one with an
// actor fails with ErrPermissionDenied, so that no user's command can move
// another user outside the stage rules, and a log shows whose authority
// each event rests on (the backend's events have no actor).
//
// A command whose key (its ID scoped to its Actor, see [events.KeyOf]) is
// in s's recent window is a retry: Decide returns a Decision with
// Duplicate set and no events. Whether the retry is the same command is
// the caller's to check, with [SameCommand] on the events it recorded: the
// same key for a different command fails with ErrKeyReused.
func Decide(s *State, cmd Command, now time.Time) (Decision, error) {
	name := "Command"
	if cmd.Action != nil {
		name = cmd.Action.Name()
	}
	if err := validate(name, cmd, now); err != nil {
		return Decision{}, err
	}
	if first, last, ok := s.Applied(events.KeyOf(cmd.Actor, cmd.ID)); ok {
		return Decision{Duplicate: true, First: first, Last: last}, nil
	}
	if err := exists(s, name, cmd.Action); err != nil {
		return Decision{}, err
	}
	// Deadlines that passed unrecorded are recorded first, and the command is
	// decided on the state they leave.
	var pre []events.Envelope
	if lapses := DueLapses(s, now); len(lapses) > 0 {
		ld := decider{s: s, cmd: cmd, now: now, name: name}
		le := ld.event(&events.Lapsed{Lapses: lapses})
		le.Actor = ""
		if _, ok := cmd.Action.(Tick); ok {
			return Decision{Events: []events.Envelope{le}}, nil
		}
		pre = []events.Envelope{le}
		s = s.Clone()
		Evolve(s, &le)
	}
	d := decider{s: s, cmd: cmd, now: now, name: name}
	var p events.Payload
	var err error
	switch a := cmd.Action.(type) {
	case Tick:
		return Decision{}, nil
	case Configure:
		p, err = d.configure(a)
	case BanFromStage:
		p, err = d.ban(a)
	case LiftBan:
		p, err = d.liftBan(a)
	case Disconnect:
		p, err = d.disconnect(a)
	case Reconnect:
		p, err = d.reconnect(a)
	case AddParticipant:
		p, err = d.addParticipant(a)
	case RemoveParticipant:
		p, err = d.removeParticipant(a)
	case UpdatePermissions:
		p, err = d.updatePermissions(a)
	case RequestAccess:
		p, err = d.self(d.requestAccess)
	case CancelRequestAccess:
		p, err = d.self(d.cancelRequest)
	case Join:
		p, err = d.self(d.join)
	case Leave:
		p, err = d.self(d.leave)
	case GrantAccess:
		if err = d.moderator(); err != nil {
			break
		}
		if err = d.notEnded(""); err != nil {
			break
		}
		p, err = d.list(a.Users, d.canGrant, func(u []string, sk []events.Skip) events.Payload {
			var invited []string
			for _, v := range u {
				if d.s.members[v].Status == OffStage {
					invited = append(invited, v)
				}
			}
			return &events.AccessGranted{Users: u, Invited: invited, Skipped: sk}
		})
	case DenyAccess:
		p, err = d.list(a.Users, d.canDeny, func(u []string, sk []events.Skip) events.Payload {
			return &events.AccessDenied{Users: u, Reason: a.Reason, Skipped: sk}
		})
	case Kick:
		p, err = d.list(a.Users, d.canKick, func(u []string, sk []events.Skip) events.Payload {
			return &events.Kicked{Users: u, Reason: a.Reason, Skipped: sk}
		})
	case StartStage:
		p, err = d.startStage()
	case EndStage:
		p, err = d.endStage()
	case CloseRequests:
		p, err = d.closeRequests(a)
	case OpenRequests:
		p, err = d.openRequests()
	case PromoteCoHost:
		p, err = d.promote(a)
	case DemoteCoHost:
		p, err = d.demote(a)
	case DeclineInvitation:
		p, err = d.self(d.declineInvitation)
	case BringOnStage:
		p, err = d.bringOnStage(a)
	default:
		err = reject(name, "", ErrInvalidCommand, "unknown action %T", cmd.Action)
	}
	if err != nil {
		return Decision{Rejected: d.rejected}, err
	}
	return Decision{Events: append(pre, d.event(p)), Rejected: d.rejected, Err: d.err}, nil
}

// CanListRequests reports whether actor may list the meeting's pending
// requests (GetAccessRequests): nil for a host or co-host, else an [*Error] wrapping
// ErrPermissionDenied (ErrInvalidCommand for a malformed id, ErrNoMeeting
// for a meeting with no events).
func CanListRequests(s *State, actor string) error {
	const name = "GetAccessRequests"
	if err := events.ValidateID(actor); err != nil {
		return &Error{Command: name, Err: ErrInvalidCommand, Reason: "actor: " + err.Error(), Cause: err}
	}
	if err := exists(s, name, nil); err != nil {
		return err
	}
	m, ok := s.members[actor]
	if !ok || !m.IsModerator() {
		return reject(name, actor, ErrPermissionDenied, "only a host or co-host may list stage requests")
	}
	return nil
}

// exists returns an [*Error] wrapping ErrNoMeeting when s is the state of
// a meeting with no events and action is not one that may come first
// (AddParticipant starts a meeting; a Tick has nothing to do).
func exists(s *State, name string, action Action) error {
	if s.Version() > 0 {
		return nil
	}
	switch action.(type) {
	case AddParticipant, Tick:
		return nil
	}
	return reject(name, "", ErrNoMeeting, "the meeting has no events: AddParticipant starts it")
}

type decider struct {
	s        *State
	cmd      Command
	now      time.Time
	name     string
	rejected []Rejection
	err      error // the outcome of a command that still records an event
}

func (d *decider) event(p events.Payload) events.Envelope {
	return events.Envelope{
		MeetingID:     d.s.meetingID,
		Version:       d.s.version + 1,
		Type:          p.EventType(),
		Time:          d.now,
		Actor:         d.cmd.Actor,
		CommandID:     d.cmd.ID,
		CorrelationID: d.cmd.CorrelationID,
		Schema:        events.SchemaVersion,
		Payload:       p,
	}
}

func validate(name string, cmd Command, now time.Time) error {
	bad := func(format string, args ...any) error {
		return reject(name, "", ErrInvalidCommand, format, args...)
	}
	badID := func(what string, err error) error {
		return &Error{Command: name, Err: ErrInvalidCommand, Reason: what + ": " + err.Error(), Cause: err}
	}
	if cmd.Action == nil {
		return bad("no action")
	}
	if err := checkText(cmd.ID, MaxCommandIDLen, false); err != nil || cmd.ID == "" {
		if err == nil {
			err = fmt.Errorf("empty")
		}
		return bad("command id: %v", err)
	}
	if err := checkText(cmd.CorrelationID, MaxCommandIDLen, false); err != nil {
		return bad("correlation id: %v", err)
	}
	if now.IsZero() {
		return bad("no time")
	}
	if !events.ValidTime(now) {
		return bad("time %s is outside the range an event can record", now)
	}
	// The backend's membership commands carry no actor; a Tick may or not.
	membership, tick := false, false
	switch a := cmd.Action.(type) {
	case Tick:
		tick = true
	case Disconnect:
		membership = true
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case Reconnect:
		membership = true
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case Configure:
		if err := a.Settings.Validate(); err != nil {
			return bad("settings: %v", err)
		}
	case BanFromStage:
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case LiftBan:
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case PromoteCoHost:
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case DemoteCoHost:
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case BringOnStage:
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case AddParticipant:
		membership = true
		if err := events.ValidateID(a.Participant.UserID); err != nil {
			return badID("user", err)
		}
		if err := a.Participant.Permissions.Validate(); err != nil {
			return bad("%v", err)
		}
	case RemoveParticipant:
		membership = true
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
	case UpdatePermissions:
		membership = true
		if err := events.ValidateID(a.UserID); err != nil {
			return badID("user", err)
		}
		if err := a.Permissions.Validate(); err != nil {
			return bad("%v", err)
		}
	case GrantAccess:
		return validateList(name, cmd.Actor, a.Users, "")
	case DenyAccess:
		return validateList(name, cmd.Actor, a.Users, a.Reason)
	case Kick:
		return validateList(name, cmd.Actor, a.Users, a.Reason)
	}
	if (membership || tick) && cmd.Actor == "" {
		return nil
	}
	if err := events.ValidateID(cmd.Actor); err != nil {
		return badID("actor", err)
	}
	if membership {
		return reject(name, cmd.Actor, ErrPermissionDenied,
			"%s is the backend's command: it carries no actor, and user %q may not issue it", name, cmd.Actor)
	}
	return nil
}

func validateList(name, actor string, users []string, reason string) error {
	if err := events.ValidateID(actor); err != nil {
		return &Error{Command: name, Err: ErrInvalidCommand, Reason: "actor: " + err.Error(), Cause: err}
	}
	if len(users) == 0 {
		return reject(name, "", ErrInvalidCommand, "no users given")
	}
	for _, u := range users {
		if err := events.ValidateID(u); err != nil {
			return &Error{Command: name, Err: ErrInvalidCommand, Reason: "user: " + err.Error(), Cause: err}
		}
	}
	if err := checkText(reason, MaxReasonLen, true); err != nil {
		return reject(name, "", ErrInvalidCommand, "reason: %v", err)
	}
	return nil
}

// checkText accepts valid UTF-8 of at most max bytes with no control
// characters (newlines and tabs too, unless prose is set).
func checkText(s string, max int, prose bool) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes, longer than %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("invalid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(prose && (r == '\n' || r == '\t')) {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

func (d *decider) addParticipant(a AddParticipant) (events.Payload, error) {
	u := a.Participant.UserID
	if _, ok := d.s.members[u]; ok {
		return nil, reject(d.name, u, ErrInvalidState, "already a participant")
	}
	return &events.ParticipantJoined{UserID: u, Permissions: a.Participant.Permissions}, nil
}

func (d *decider) removeParticipant(a RemoveParticipant) (events.Payload, error) {
	m, ok := d.s.members[a.UserID]
	if !ok {
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	}
	return &events.ParticipantLeft{UserID: a.UserID, Status: m.Status.String()}, nil
}

func (d *decider) updatePermissions(a UpdatePermissions) (events.Payload, error) {
	m, ok := d.s.members[a.UserID]
	if !ok {
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	}
	st := m.Status
	if a.Permissions.StageAccess == NotAllowed {
		st = OffStage
	}
	return &events.PermissionsChanged{UserID: a.UserID, Permissions: a.Permissions, Status: st.String()}, nil
}

// self looks up the actor, who must be a participant, and lets decide
// choose the event.
func (d *decider) self(decide func(*Member) (events.Payload, error)) (events.Payload, error) {
	m, ok := d.s.members[d.cmd.Actor]
	if !ok {
		return nil, reject(d.name, d.cmd.Actor, ErrNotParticipant, "not in the meeting")
	}
	return decide(m)
}

func (d *decider) requestAccess(m *Member) (events.Payload, error) {
	if m.Permissions.StageAccess == NotAllowed {
		return nil, reject(d.name, m.UserID, ErrPermissionDenied, "stage access is NotAllowed")
	}
	if err := d.banned(m.UserID); err != nil {
		return nil, err
	}
	if m.Status != OffStage {
		return nil, reject(d.name, m.UserID, ErrInvalidState, "status is %s, not OffStage", m.Status)
	}
	if err := d.notEnded(m.UserID); err != nil {
		return nil, err
	}
	auto := m.Permissions.StageAccess == Allowed || m.IsModerator()
	if !auto {
		if err := d.mayQueue(m); err != nil {
			return nil, err
		}
	}
	if cd := d.s.settings.RequestCooldown; cd > 0 {
		if at, ok := d.s.denied[m.UserID]; ok && d.now.Before(at.Add(cd)) {
			e := reject(d.name, m.UserID, ErrCooldown, "denied at %s; may request again at %s (RequestCooldown %v)",
				stamp(at), stamp(at.Add(cd)), cd)
			e.Until = at.Add(cd)
			return nil, e
		}
	}
	return &events.AccessRequested{AutoAccepted: auto}, nil
}

func (d *decider) cancelRequest(m *Member) (events.Payload, error) {
	if m.Status != RequestedToJoinStage {
		return nil, reject(d.name, m.UserID, ErrInvalidState, "no pending request (status %s)", m.Status)
	}
	return &events.AccessRequestCancelled{}, nil
}

func (d *decider) join(m *Member) (events.Payload, error) {
	if m.Status == OnStage {
		return nil, reject(d.name, m.UserID, ErrInvalidState, "already on stage")
	}
	if err := d.banned(m.UserID); err != nil {
		return nil, err
	}
	if err := d.notEnded(m.UserID); err != nil {
		return nil, err
	}
	if err := d.mayJoin(m); err != nil {
		return nil, err
	}
	limit := d.s.settings.MaxOnStage
	if limit <= 0 {
		return &events.StageJoined{}, nil
	}
	if i := d.s.waitIndex(m.UserID); i >= 0 {
		if d.s.waitlist[i].offered {
			return &events.StageJoined{}, nil
		}
		return nil, reject(d.name, m.UserID, ErrStageFull, "all %d seats are taken or held; already waitlisted at position %d", limit, i+1)
	}
	if d.s.onStage+d.s.offers() < limit {
		return &events.StageJoined{}, nil
	}
	p := &events.SeatWaitlisted{Position: len(d.s.waitlist) + 1, Status: m.Status.String(), MaxOnStage: limit}
	d.err = reject(d.name, m.UserID, ErrStageFull, "all %d seats are taken or held; waitlisted at position %d", limit, p.Position)
	return p, nil
}

// mayJoin checks the seed rules of Join for a user not on stage.
func (d *decider) mayJoin(m *Member) error {
	switch {
	case m.Status == AcceptedToJoinStage:
	case m.Permissions.StageAccess == NotAllowed:
		return reject(d.name, m.UserID, ErrPermissionDenied, "stage access is NotAllowed")
	case m.Status == OffStage && m.Permissions.StageAccess == Allowed:
	case m.Permissions.StageAccess == CanRequest:
		return reject(d.name, m.UserID, ErrPermissionDenied, "stage access is CanRequest and the user was not accepted (status %s)", m.Status)
	default:
		return reject(d.name, m.UserID, ErrInvalidState, "status is %s", m.Status)
	}
	return nil
}

func (d *decider) leave(m *Member) (events.Payload, error) {
	switch m.Status {
	case OnStage:
		return &events.StageLeft{}, nil
	case AcceptedToJoinStage:
		return &events.StageLeft{Declined: true}, nil
	}
	return nil, reject(d.name, m.UserID, ErrInvalidState, "status is %s, neither OnStage nor AcceptedToJoinStage", m.Status)
}

// list decides a moderator's command on a list of users: the actor must be a
// host or co-host; each distinct target is checked by eligible; the eligible ones go in
// one event, the others in Rejected (and the event's Skipped). With no
// eligible target the command fails with the first target's error, and
// Rejected lists them all.
func (d *decider) list(users []string, eligible func(*Member, string) error,
	build func([]string, []events.Skip) events.Payload) (events.Payload, error) {
	if err := d.moderator(); err != nil {
		return nil, err
	}
	actor := d.s.members[d.cmd.Actor]
	var ok2 []string
	var skips []events.Skip
	var first error
	for i, u := range users {
		if dupBefore(users, i) {
			continue
		}
		var err error
		if m, in := d.s.members[u]; !in {
			err = reject(d.name, u, ErrNotParticipant, "not in the meeting")
		} else if _, grant := d.cmd.Action.(GrantAccess); !grant && !actor.IsHost() && m.IsModerator() && u != actor.UserID {
			err = reject(d.name, u, ErrPermissionDenied, "a co-host may not deny or kick a host or another co-host")
		} else {
			err = eligible(m, u)
		}
		if err != nil {
			if first == nil {
				first = err
			}
			d.rejected = append(d.rejected, Rejection{UserID: u, Err: err})
			skips = append(skips, events.Skip{UserID: u, Reason: ReasonCode(err)})
			continue
		}
		ok2 = append(ok2, u)
	}
	if len(ok2) == 0 {
		return nil, first
	}
	return build(ok2, skips), nil
}

// moderator checks that the actor is a participant who is a host or a
// co-host.
func (d *decider) moderator() error {
	actor, ok := d.s.members[d.cmd.Actor]
	if !ok || !actor.IsModerator() {
		why := "the actor is neither host nor co-host"
		if !ok {
			why = "the actor is not a participant"
		}
		return reject(d.name, d.cmd.Actor, ErrPermissionDenied, "%s", why)
	}
	return nil
}

func dupBefore(users []string, i int) bool {
	for _, u := range users[:i] {
		if u == users[i] {
			return true
		}
	}
	return false
}

func (d *decider) canGrant(m *Member, u string) error {
	if m.Permissions.StageAccess == NotAllowed {
		return reject(d.name, u, ErrPermissionDenied, "stage access is NotAllowed")
	}
	if err := d.banned(u); err != nil {
		return err
	}
	if m.Status != RequestedToJoinStage && m.Status != OffStage {
		return reject(d.name, u, ErrInvalidState, "status is %s", m.Status)
	}
	return nil
}

func (d *decider) canDeny(m *Member, u string) error {
	if m.Status != RequestedToJoinStage {
		return reject(d.name, u, ErrInvalidState, "no pending request (status %s)", m.Status)
	}
	return nil
}

func (d *decider) canKick(m *Member, u string) error {
	if m.Status != OnStage && m.Status != AcceptedToJoinStage {
		return reject(d.name, u, ErrInvalidState, "neither on stage nor accepted (status %s)", m.Status)
	}
	return nil
}
