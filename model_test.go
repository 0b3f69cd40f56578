package stage_test

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// This file is a plain model of one meeting's stage, written from the tables
// of stage-rules.md and nothing else: it shares no code with package
// aggregate (only the names of statuses and permissions). The property test
// runs every command on the Engine and on the model and compares.

// op is a command as the model sees it.
type op struct {
	name   string // the action: "RequestAccess", "GrantAccess", ...
	actor  string
	user   string // the user of a membership command
	users  []string
	perms  aggregate.Permissions
	reason string
	deny   bool // CloseRequests: deny the pending requests
}

// command is the op as an aggregate.Command for the Engine.
func (o op) command() aggregate.Command {
	c := aggregate.Command{Actor: o.actor}
	switch o.name {
	case "AddParticipant":
		c.Action = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: o.user, Permissions: o.perms}}
	case "RemoveParticipant":
		c.Action = aggregate.RemoveParticipant{UserID: o.user}
	case "UpdatePermissions":
		c.Action = aggregate.UpdatePermissions{UserID: o.user, Permissions: o.perms}
	case "RequestAccess":
		c.Action = aggregate.RequestAccess{}
	case "CancelRequestAccess":
		c.Action = aggregate.CancelRequestAccess{}
	case "GrantAccess":
		c.Action = aggregate.GrantAccess{Users: o.users}
	case "DenyAccess":
		c.Action = aggregate.DenyAccess{Users: o.users, Reason: o.reason}
	case "Join":
		c.Action = aggregate.Join{}
	case "Leave":
		c.Action = aggregate.Leave{}
	case "Kick":
		c.Action = aggregate.Kick{Users: o.users, Reason: o.reason}
	case "StartStage":
		c.Action = aggregate.StartStage{}
	case "EndStage":
		c.Action = aggregate.EndStage{}
	case "CloseRequests":
		c.Action = aggregate.CloseRequests{DenyPending: o.deny}
	case "OpenRequests":
		c.Action = aggregate.OpenRequests{}
	case "PromoteCoHost":
		c.Action = aggregate.PromoteCoHost{UserID: o.user}
	case "DemoteCoHost":
		c.Action = aggregate.DemoteCoHost{UserID: o.user}
	case "DeclineInvitation":
		c.Action = aggregate.DeclineInvitation{}
	default:
		panic("unknown op " + o.name)
	}
	return c
}

// membership reports whether the backend issues the op (no actor rules).
func (o op) membership() bool {
	return o.name == "AddParticipant" || o.name == "RemoveParticipant" || o.name == "UpdatePermissions"
}

type modelUser struct {
	perms       aggregate.Permissions
	status      aggregate.Status
	since       time.Time // when the current status began
	requestedAt time.Time // time of the latest request, while requested
	requestV    uint64    // version of the latest request, while requested
	cohost      bool      // promoted by a host, until demoted or gone
}

// outcome is what a command did: the version it was stored at and the
// targets it skipped. A failed command has err set.
type outcome struct {
	err      error // one of aggregate's four sentinels
	version  uint64
	rejected []modelRejection
	// The stored command, when, and whether the store's command index
	// recorded its key (it was given one by the caller).
	op      op
	at      time.Time
	indexed bool
}

type modelRejection struct {
	user string
	kind error
}

type modelMeeting struct {
	users   map[string]*modelUser
	version uint64
	// lastTime is the time of the latest event: the engine never stamps
	// an event earlier, whatever its clock says.
	lastTime time.Time
	// applied lists the scoped idempotency keys (scoped) of the stored
	// commands, oldest first: the last aggregate.CommandWindow of them are
	// remembered by the state, and those recorded in the store's command
	// index for the key retention.
	applied  []string
	outcomes map[string]outcome // by scoped key, the latest stored outcome
	// The stage controls (docs/stage-controls.md): the stage ended (until
	// started again), requests closed for the meeting.
	ended, closed bool
}

// keyRetention is the memory store's default, which the property test uses.
const keyRetention = eventstore.DefaultKeyRetention

// scoped is a key as the engine keys it: the actor's own (the backend's
// commands have the empty actor).
func scoped(actor, key string) string { return actor + "\x00" + key }

func newModelMeeting() *modelMeeting {
	return &modelMeeting{users: map[string]*modelUser{}, outcomes: map[string]outcome{}}
}

// remembered reports whether the scoped key sk is one of the last
// CommandWindow stored commands, or was recorded in the command index less
// than the key retention before now.
func (mm *modelMeeting) remembered(sk string, now time.Time) bool {
	recent := mm.applied[max(0, len(mm.applied)-aggregate.CommandWindow):]
	if slices.Contains(recent, sk) {
		return true
	}
	out, ok := mm.outcomes[sk]
	return ok && out.indexed && now.Sub(out.at) < keyRetention
}

// same reports whether two ops are one command, as a retry must be: list
// targets compare as sets.
func (o op) same(p op) bool {
	set := func(u []string) []string {
		c := slices.Clone(u)
		slices.Sort(c)
		return slices.Compact(c)
	}
	return o.name == p.name && o.actor == p.actor && o.user == p.user && o.perms == p.perms &&
		o.reason == p.reason && o.deny == p.deny && slices.Equal(set(o.users), set(p.users))
}

func isHost(u *modelUser) bool { return u != nil && u.perms.AcceptStageRequests }

// isModerator: a host or a co-host.
func isModerator(u *modelUser) bool { return isHost(u) || u != nil && u.cohost }

// decide applies o at time now, if the rules allow it, and returns what
// happened. A failed op changes nothing. indexed says the caller gave the
// key (the engine then records it in the store's command index).
func (mm *modelMeeting) decide(o op, key string, now time.Time, indexed bool) outcome {
	fail := func(kind error) outcome { return outcome{err: kind} }
	next := mm.version + 1
	move := func(u *modelUser, st aggregate.Status) {
		u.status, u.since = st, now
		u.requestedAt, u.requestV = time.Time{}, 0
		if st == aggregate.RequestedToJoinStage {
			u.requestedAt, u.requestV = now, next
		}
	}
	me := mm.users[o.actor]
	var rejected []modelRejection
	if o.membership() && o.actor != "" {
		return fail(aggregate.ErrPermissionDenied) // the backend's authority only
	}
	if mm.version == 0 && o.name != "AddParticipant" {
		return fail(aggregate.ErrNoMeeting) // AddParticipant starts a meeting
	}

	switch o.name {
	case "AddParticipant":
		if mm.users[o.user] != nil {
			return fail(aggregate.ErrInvalidState)
		}
		mm.users[o.user] = &modelUser{perms: o.perms, status: aggregate.OffStage, since: now}
	case "RemoveParticipant":
		if mm.users[o.user] == nil {
			return fail(aggregate.ErrNotParticipant)
		}
		delete(mm.users, o.user)
	case "UpdatePermissions":
		u := mm.users[o.user]
		if u == nil {
			return fail(aggregate.ErrNotParticipant)
		}
		u.perms = o.perms
		if o.perms.StageAccess == aggregate.NotAllowed && u.status != aggregate.OffStage {
			move(u, aggregate.OffStage)
		}

	case "RequestAccess":
		switch {
		case me == nil:
			return fail(aggregate.ErrNotParticipant)
		case me.perms.StageAccess == aggregate.NotAllowed:
			return fail(aggregate.ErrPermissionDenied)
		case me.status != aggregate.OffStage:
			return fail(aggregate.ErrInvalidState)
		case mm.ended:
			return fail(aggregate.ErrStageEnded)
		case me.perms.StageAccess == aggregate.Allowed || isModerator(me):
			move(me, aggregate.AcceptedToJoinStage)
		case mm.closed:
			return fail(aggregate.ErrRequestsClosed)
		default:
			move(me, aggregate.RequestedToJoinStage)
		}
	case "CancelRequestAccess":
		switch {
		case me == nil:
			return fail(aggregate.ErrNotParticipant)
		case me.status != aggregate.RequestedToJoinStage:
			return fail(aggregate.ErrInvalidState)
		}
		move(me, aggregate.OffStage)
	case "Join":
		switch {
		case me == nil:
			return fail(aggregate.ErrNotParticipant)
		case me.status == aggregate.OnStage:
			return fail(aggregate.ErrInvalidState)
		case mm.ended:
			return fail(aggregate.ErrStageEnded)
		case me.status == aggregate.AcceptedToJoinStage,
			me.status == aggregate.OffStage && me.perms.StageAccess == aggregate.Allowed:
			move(me, aggregate.OnStage)
		case me.perms.StageAccess != aggregate.Allowed: // CanRequest not accepted, or NotAllowed
			return fail(aggregate.ErrPermissionDenied)
		default: // Allowed but with a pending request (made while CanRequest)
			return fail(aggregate.ErrInvalidState)
		}
	case "Leave":
		switch {
		case me == nil:
			return fail(aggregate.ErrNotParticipant)
		case me.status != aggregate.OnStage && me.status != aggregate.AcceptedToJoinStage:
			return fail(aggregate.ErrInvalidState)
		}
		move(me, aggregate.OffStage)

	case "DeclineInvitation":
		switch {
		case me == nil:
			return fail(aggregate.ErrNotParticipant)
		case me.status != aggregate.AcceptedToJoinStage:
			return fail(aggregate.ErrInvalidState)
		}
		move(me, aggregate.OffStage)

	// The host's controls: hosts only (co-hosts too are refused).
	case "StartStage", "EndStage", "CloseRequests", "OpenRequests", "PromoteCoHost", "DemoteCoHost":
		if !isHost(me) {
			return fail(aggregate.ErrPermissionDenied)
		}
		u := mm.users[o.user]
		switch o.name {
		case "StartStage":
			if !mm.ended {
				return fail(aggregate.ErrInvalidState)
			}
			mm.ended = false
		case "EndStage":
			if mm.ended {
				return fail(aggregate.ErrInvalidState)
			}
			for _, u := range mm.users {
				if u.status != aggregate.OffStage {
					move(u, aggregate.OffStage)
				}
			}
			mm.ended = true
		case "CloseRequests":
			if mm.closed {
				return fail(aggregate.ErrInvalidState)
			}
			mm.closed = true
			for _, u := range mm.users {
				if o.deny && u.status == aggregate.RequestedToJoinStage {
					move(u, aggregate.OffStage)
				}
			}
		case "OpenRequests":
			if !mm.closed {
				return fail(aggregate.ErrInvalidState)
			}
			mm.closed = false
		case "PromoteCoHost":
			switch {
			case u == nil:
				return fail(aggregate.ErrNotParticipant)
			case isHost(u) || u.cohost:
				return fail(aggregate.ErrInvalidState)
			}
			u.cohost = true
		case "DemoteCoHost":
			switch {
			case u == nil:
				return fail(aggregate.ErrNotParticipant)
			case !u.cohost:
				return fail(aggregate.ErrInvalidState)
			}
			u.cohost = false
		}

	case "GrantAccess", "DenyAccess", "Kick":
		if !isModerator(me) {
			return fail(aggregate.ErrPermissionDenied)
		}
		if o.name == "GrantAccess" && mm.ended {
			return fail(aggregate.ErrStageEnded)
		}
		var eligible []*modelUser
		seen := map[string]bool{}
		for _, name := range o.users {
			if seen[name] {
				continue
			}
			seen[name] = true
			u := mm.users[name]
			var why error
			switch {
			case u == nil:
				why = aggregate.ErrNotParticipant
			case o.name != "GrantAccess" && !isHost(me) && isModerator(u) && name != o.actor:
				why = aggregate.ErrPermissionDenied // a co-host does not act on hosts and co-hosts
			case o.name == "GrantAccess" && u.perms.StageAccess == aggregate.NotAllowed:
				why = aggregate.ErrPermissionDenied
			case o.name == "GrantAccess" && u.status != aggregate.RequestedToJoinStage && u.status != aggregate.OffStage:
				why = aggregate.ErrInvalidState
			case o.name == "DenyAccess" && u.status != aggregate.RequestedToJoinStage:
				why = aggregate.ErrInvalidState
			case o.name == "Kick" && u.status != aggregate.OnStage && u.status != aggregate.AcceptedToJoinStage:
				why = aggregate.ErrInvalidState
			}
			if why != nil {
				rejected = append(rejected, modelRejection{name, why})
			} else {
				eligible = append(eligible, u)
			}
		}
		if len(eligible) == 0 {
			return fail(rejected[0].kind)
		}
		to := aggregate.OffStage
		if o.name == "GrantAccess" {
			to = aggregate.AcceptedToJoinStage
		}
		for _, u := range eligible {
			move(u, to)
		}
	default:
		panic("unknown op " + o.name)
	}
	mm.version = next
	mm.applied = append(mm.applied, scoped(o.actor, key))
	out := outcome{version: next, rejected: rejected, op: o, at: now, indexed: indexed}
	mm.outcomes[scoped(o.actor, key)] = out
	return out
}

// queue is the model's request queue, oldest request first.
func (mm *modelMeeting) queue() []string {
	var q []string
	for name, u := range mm.users {
		if u.status == aggregate.RequestedToJoinStage {
			q = append(q, name)
		}
	}
	slices.SortFunc(q, func(a, b string) int {
		ua, ub := mm.users[a], mm.users[b]
		if c := ua.requestedAt.Compare(ub.requestedAt); c != 0 {
			return c
		}
		return cmp.Compare(ua.requestV, ub.requestV)
	})
	return q
}

// fakeClock is a clock the test moves forward by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
