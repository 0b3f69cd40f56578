package events

import "fmt"

// Payload is the event-specific part of an [Envelope]. Each event type has
// exactly one payload type, defined in this file; the set is closed.
type Payload interface {
	// EventType is the Type the payload belongs to.
	EventType() Type
	payload()
}

// StageAccess is a participant's preset permission to come on stage.
type StageAccess string

// The values of StageAccess. They are written as these strings in the log.
const (
	// Allowed: may join the stage directly, with no approval.
	Allowed StageAccess = "Allowed"
	// CanRequest: must request and be accepted before joining.
	CanRequest StageAccess = "CanRequest"
	// NotAllowed: may never be on stage while the preset says so.
	NotAllowed StageAccess = "NotAllowed"
)

// Valid reports whether a is one of the three defined values.
func (a StageAccess) Valid() bool {
	return a == Allowed || a == CanRequest || a == NotAllowed
}

// Permissions are a participant's stage permissions, from their preset.
type Permissions struct {
	// StageAccess says whether, and how, the participant may come on stage.
	StageAccess StageAccess `json:"stageAccess"`
	// AcceptStageRequests is the host privilege: list requests, grant, deny, kick.
	AcceptStageRequests bool `json:"acceptStageRequests"`
}

// Validate reports an error unless StageAccess is one of the defined values.
func (p Permissions) Validate() error {
	if !p.StageAccess.Valid() {
		return fmt.Errorf("stage access %q is not Allowed, CanRequest or NotAllowed", string(p.StageAccess))
	}
	return nil
}

// Skip names a target of a list command (grant, deny, kick) that was not
// eligible, and why. Recording skips makes the event a complete account of
// the command: an auditor sees whom the host named, not only whom it moved.
type Skip struct {
	UserID string `json:"user"`
	// Reason is the rule that excluded the target: "NotParticipant",
	// "PermissionDenied" or "InvalidState".
	Reason string `json:"reason"`
}

// ParticipantJoined: the backend added a user to the meeting; they are OffStage.
type ParticipantJoined struct {
	UserID      string      `json:"user"`
	Permissions Permissions `json:"permissions"`
}

// ParticipantLeft: the backend removed a user from the meeting. Applying it
// takes them off stage and out of the request queue: one event, whatever
// their status was.
type ParticipantLeft struct {
	UserID string `json:"user"`
	// Status is the stage status the user had when they left, for the audit trail.
	Status string `json:"status"`
}

// PermissionsChanged: the backend changed a participant's permissions. When
// the new StageAccess is NotAllowed, applying it also moves a requested,
// accepted or on-stage user OffStage (recorded in Status).
type PermissionsChanged struct {
	UserID      string      `json:"user"`
	Permissions Permissions `json:"permissions"`
	// Status is the user's stage status after the change.
	Status string `json:"status"`
}

// AccessRequested: the actor asked to come on stage. AutoAccepted is true
// when their permissions (Allowed, or host) took them straight to
// AcceptedToJoinStage instead of the request queue.
type AccessRequested struct {
	AutoAccepted bool `json:"autoAccepted,omitempty"`
}

// AccessRequestCancelled: the actor withdrew their pending request.
type AccessRequestCancelled struct{}

// AccessGranted: the actor (a host) accepted the requests of, or invited,
// the users; each is now AcceptedToJoinStage.
type AccessGranted struct {
	Users   []string `json:"users"`
	Skipped []Skip   `json:"skipped,omitempty"`
}

// AccessDenied: the actor (a host) denied the users' pending requests.
type AccessDenied struct {
	Users   []string `json:"users"`
	Reason  string   `json:"reason,omitempty"`
	Skipped []Skip   `json:"skipped,omitempty"`
}

// StageJoined: the actor went on stage.
type StageJoined struct{}

// StageLeft: the actor left the stage, or declined an invitation when
// Declined is true.
type StageLeft struct {
	Declined bool `json:"declined,omitempty"`
}

// Kicked: the actor (a host) sent the users off stage or revoked their
// invitations.
type Kicked struct {
	Users   []string `json:"users"`
	Reason  string   `json:"reason,omitempty"`
	Skipped []Skip   `json:"skipped,omitempty"`
}

func (*ParticipantJoined) EventType() Type      { return TypeParticipantJoined }
func (*ParticipantLeft) EventType() Type        { return TypeParticipantLeft }
func (*PermissionsChanged) EventType() Type     { return TypePermissionsChanged }
func (*AccessRequested) EventType() Type        { return TypeAccessRequested }
func (*AccessRequestCancelled) EventType() Type { return TypeAccessRequestCancelled }
func (*AccessGranted) EventType() Type          { return TypeAccessGranted }
func (*AccessDenied) EventType() Type           { return TypeAccessDenied }
func (*StageJoined) EventType() Type            { return TypeStageJoined }
func (*StageLeft) EventType() Type              { return TypeStageLeft }
func (*Kicked) EventType() Type                 { return TypeKicked }

func (*ParticipantJoined) payload()      {}
func (*ParticipantLeft) payload()        {}
func (*PermissionsChanged) payload()     {}
func (*AccessRequested) payload()        {}
func (*AccessRequestCancelled) payload() {}
func (*AccessGranted) payload()          {}
func (*AccessDenied) payload()           {}
func (*StageJoined) payload()            {}
func (*StageLeft) payload()              {}
func (*Kicked) payload()                 {}

// newPayload returns an empty payload for t, or nil for an unknown type.
func newPayload(t Type) Payload {
	switch t {
	case TypeParticipantJoined:
		return new(ParticipantJoined)
	case TypeParticipantLeft:
		return new(ParticipantLeft)
	case TypePermissionsChanged:
		return new(PermissionsChanged)
	case TypeAccessRequested:
		return new(AccessRequested)
	case TypeAccessRequestCancelled:
		return new(AccessRequestCancelled)
	case TypeAccessGranted:
		return new(AccessGranted)
	case TypeAccessDenied:
		return new(AccessDenied)
	case TypeStageJoined:
		return new(StageJoined)
	case TypeStageLeft:
		return new(StageLeft)
	case TypeKicked:
		return new(Kicked)
	}
	return nil
}

// Types lists every event type, in declaration order.
func Types() []Type {
	return []Type{
		TypeParticipantJoined, TypeParticipantLeft, TypePermissionsChanged,
		TypeAccessRequested, TypeAccessRequestCancelled, TypeAccessGranted,
		TypeAccessDenied, TypeStageJoined, TypeStageLeft, TypeKicked,
	}
}
