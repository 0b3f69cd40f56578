package aggregate

import (
	"time"

	"github.com/productdb/stage/events"
)

// StageAccess is a participant's preset permission to come on stage.
type StageAccess = events.StageAccess

// The values of StageAccess.
const (
	// Allowed: may join the stage directly, no approval needed.
	Allowed = events.Allowed
	// CanRequest: must request and be accepted before joining.
	CanRequest = events.CanRequest
	// NotAllowed: may never be on stage while the preset says so.
	NotAllowed = events.NotAllowed
)

// Permissions are a participant's stage permissions.
type Permissions = events.Permissions

// Participant is a user entering the meeting with their permissions.
type Participant struct {
	UserID      string
	Permissions Permissions
}

// Command is one request to change a meeting's stage: who asks (Actor), what
// (Action), and the ids that make it idempotent and traceable.
type Command struct {
	// ID is the idempotency key, scoped to the Actor: deciding a command
	// whose ID the same actor used within the meeting's recent window yields
	// a duplicate [Decision], not new events. Required.
	ID string
	// CorrelationID optionally ties the events to a wider request or trace.
	CorrelationID string
	// Actor is the authenticated user issuing the command. Required for the
	// user's and hosts' commands; empty for the membership commands the
	// backend issues (AddParticipant, RemoveParticipant, UpdatePermissions,
	// Disconnect, Reconnect), which fail with ErrPermissionDenied when they
	// carry an actor; optional for Tick.
	Actor string
	// Action says what to do.
	Action Action
}

// Action is what a command asks. The set is closed: the types in this file.
type Action interface {
	// Name is the action's name, as used in errors ("GrantAccess", ...).
	Name() string
	action()
}

// AddParticipant: the backend adds a user to the meeting, OffStage.
type AddParticipant struct{ Participant Participant }

// RemoveParticipant: the backend removes a user from the meeting; they leave
// the stage and the request queue.
type RemoveParticipant struct{ UserID string }

// UpdatePermissions: the backend changes a participant's permissions.
type UpdatePermissions struct {
	UserID      string
	Permissions Permissions
}

// RequestAccess: the actor asks to come on stage.
type RequestAccess struct{}

// CancelRequestAccess: the actor withdraws a pending request.
type CancelRequestAccess struct{}

// GrantAccess: a host accepts the requests of, or invites, the users.
type GrantAccess struct{ Users []string }

// DenyAccess: a host denies the users' pending requests, with an optional
// free-text reason recorded in the event.
type DenyAccess struct {
	Users  []string
	Reason string
}

// Join: the actor goes on stage.
type Join struct{}

// Leave: the actor leaves the stage, or declines an invitation.
type Leave struct{}

// Kick: a host sends the users off stage or revokes their invitations, with
// an optional free-text reason recorded in the event.
type Kick struct {
	Users  []string
	Reason string
}

// Configure: a host sets the meeting's stage policies, replacing the previous
// settings as a whole. Lowering MaxOnStage below the number on stage fails
// with ErrInvalidState (nobody is pulled off the stage by a setting).
type Configure struct{ Settings Settings }

// BanFromStage: a host bans the user from the stage until Until (zero: until
// lifted; else it must be after the decision's time). The user is moved
// OffStage and out of the request queue and the waitlist. The user need not
// be a participant. Banning a banned user replaces the ban.
type BanFromStage struct {
	UserID string
	Until  time.Time
}

// LiftBan: a host ends the user's stage ban.
type LiftBan struct{ UserID string }

// Disconnect: the backend saw the participant's connection drop. With a
// ReconnectGrace they keep their status, queue position and seat for that
// long; without one they leave the meeting at once (ParticipantLeft with
// reason "Disconnected").
type Disconnect struct{ UserID string }

// Reconnect: the backend saw a disconnected participant come back within
// their grace; they keep everything.
type Reconnect struct{ UserID string }

// StartStage: a host takes the stage live, from backstage or after it
// ended (StageStarted).
type StartStage struct{}

// EndStage: a host ends the stage for everyone in one event (StageEnded):
// whoever is on stage or accepted goes OffStage, pending requests are
// closed, and until a host starts it again nobody can request, be granted
// or join.
type EndStage struct{}

// CloseRequests: a host closes requests for the whole meeting
// (RequestsClosed): RequestAccess that would queue fails with
// ErrRequestsClosed. Pending requests stay, unless DenyPending, which
// denies them all in the same event.
type CloseRequests struct{ DenyPending bool }

// OpenRequests: a host opens requests again (RequestsOpened).
type OpenRequests struct{}

// PromoteCoHost: a host makes a participant a co-host (CoHostPromoted).
type PromoteCoHost struct{ UserID string }

// DemoteCoHost: a host takes the co-host role from a participant
// (CoHostDemoted).
type DemoteCoHost struct{ UserID string }

// DeclineInvitation: the actor declines their invitation or approved
// request, explicitly (InvitationDeclined); they are OffStage.
type DeclineInvitation struct{}

// BringOnStage: a host moves a user straight OnStage without their consent
// (BroughtOnStage), when the meeting's settings allow it
// (AllowBringOnStage); never a NotAllowed or banned user, never past
// MaxOnStage.
type BringOnStage struct{ UserID string }

// Tick records the lapses due at the decision's time as one Lapsed event
// (nothing when none is due). The engine issues it at each meeting's next
// deadline; anyone may, at any time: a tick never changes what is due.
type Tick struct{}

func (AddParticipant) Name() string      { return "AddParticipant" }
func (RemoveParticipant) Name() string   { return "RemoveParticipant" }
func (UpdatePermissions) Name() string   { return "UpdatePermissions" }
func (RequestAccess) Name() string       { return "RequestAccess" }
func (CancelRequestAccess) Name() string { return "CancelRequestAccess" }
func (GrantAccess) Name() string         { return "GrantAccess" }
func (DenyAccess) Name() string          { return "DenyAccess" }
func (Join) Name() string                { return "Join" }
func (Leave) Name() string               { return "Leave" }
func (Kick) Name() string                { return "Kick" }
func (Configure) Name() string           { return "Configure" }
func (BanFromStage) Name() string        { return "BanFromStage" }
func (LiftBan) Name() string             { return "LiftBan" }
func (Disconnect) Name() string          { return "Disconnect" }
func (Reconnect) Name() string           { return "Reconnect" }
func (Tick) Name() string                { return "Tick" }
func (StartStage) Name() string          { return "StartStage" }
func (EndStage) Name() string            { return "EndStage" }
func (CloseRequests) Name() string       { return "CloseRequests" }
func (OpenRequests) Name() string        { return "OpenRequests" }
func (PromoteCoHost) Name() string       { return "PromoteCoHost" }
func (DemoteCoHost) Name() string        { return "DemoteCoHost" }
func (DeclineInvitation) Name() string   { return "DeclineInvitation" }
func (BringOnStage) Name() string        { return "BringOnStage" }

func (AddParticipant) action()      {}
func (RemoveParticipant) action()   {}
func (UpdatePermissions) action()   {}
func (RequestAccess) action()       {}
func (CancelRequestAccess) action() {}
func (GrantAccess) action()         {}
func (DenyAccess) action()          {}
func (Join) action()                {}
func (Leave) action()               {}
func (Kick) action()                {}
func (Configure) action()           {}
func (BanFromStage) action()        {}
func (LiftBan) action()             {}
func (Disconnect) action()          {}
func (Reconnect) action()           {}
func (Tick) action()                {}
func (StartStage) action()          {}
func (EndStage) action()            {}
func (CloseRequests) action()       {}
func (OpenRequests) action()        {}
func (PromoteCoHost) action()       {}
func (DemoteCoHost) action()        {}
func (DeclineInvitation) action()   {}
func (BringOnStage) action()        {}
