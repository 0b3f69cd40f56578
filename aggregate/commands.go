package aggregate

import "github.com/productdb/stage/events"

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
	// ID is the idempotency key. Deciding a command whose ID is in the
	// meeting's recent window yields a duplicate [Decision], not new events.
	// Required.
	ID string
	// CorrelationID optionally ties the events to a wider request or trace.
	CorrelationID string
	// Actor is the authenticated user issuing the command. Required for the
	// seed commands; optional for the membership commands the backend issues
	// (AddParticipant, RemoveParticipant, UpdatePermissions).
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
