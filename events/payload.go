package events

import (
	"fmt"
	"time"
)

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
	// Reason is empty when the backend removed the user, and "Disconnected"
	// when they dropped out of the meeting with no reconnect grace in force.
	Reason string `json:"reason,omitempty"`
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

// AccessGranted: the actor (a host or co-host) accepted the requests of, or
// invited, the users; each is now AcceptedToJoinStage. Invited lists, in
// the order of Users, those of them who had no pending request: an
// invitation, not an approval. An event written before Invited existed has
// none, and tells the two apart only by the users' status before.
type AccessGranted struct {
	Users   []string `json:"users"`
	Invited []string `json:"invited,omitempty"`
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

// SettingsChanged: the actor (a host) set the meeting's stage policies.
// Settings replace the previous ones (recorded in Previous) as a whole.
type SettingsChanged struct {
	Settings Settings `json:"settings"`
	Previous Settings `json:"previous"`
}

// SeatWaitlisted: the actor tried to join a full stage (the command failed
// with ErrStageFull) and was put at the end of the seat waitlist, at
// Position (1 for the first). Status is their status before: an OffStage
// user with Allowed access becomes AcceptedToJoinStage; an accepted user
// stays so. MaxOnStage is the capacity in force.
type SeatWaitlisted struct {
	Position   int    `json:"position"`
	Status     string `json:"status"`
	MaxOnStage int    `json:"maxOnStage"`
}

// StageBanned: the actor (a host) banned the user from the stage until
// Until (zero: until lifted). Applying it moves the user OffStage and out of
// the request queue and the seat waitlist; Status is their status before.
// The user need not be a participant: a ban is about the user, and outlives
// their leaving and re-entering the meeting.
type StageBanned struct {
	UserID string    `json:"user"`
	Until  time.Time `json:"until,omitzero"`
	Status string    `json:"status"`
}

// BanLifted: the actor (a host) ended the user's stage ban early.
type BanLifted struct {
	UserID string `json:"user"`
}

// Disconnected: the backend saw the user's connection drop. The user keeps
// their status, queue position and seat for Grace (the ReconnectGrace in
// force); [Lapsed] records the end of the grace if they do not reconnect.
type Disconnected struct {
	UserID string   `json:"user"`
	Grace  Duration `json:"grace"`
}

// Reconnected: the backend saw the disconnected user come back within their
// grace; they keep everything they had.
type Reconnected struct {
	UserID string `json:"user"`
}

// Lapsed: deadlines passed and the engine recorded what followed, in the
// order it happened (by deadline). Applying a lapse uses its Deadline as the
// time of the change, never the event's time or a clock, so folding the log
// is deterministic: a seat freed by a lapse is offered to the next waitlisted
// user from the lapse's Deadline on.
type Lapsed struct {
	Lapses []Lapse `json:"lapses"`
}

// LapseKind says what lapsed.
type LapseKind string

// The lapse kinds.
const (
	// InvitationExpired: an AcceptedToJoinStage status reached InvitationTTL;
	// the user is OffStage.
	InvitationExpired LapseKind = "InvitationExpired"
	// SlotEnded: an OnStage status reached SpeakingSlot; the user is OffStage
	// and their seat is free.
	SlotEnded LapseKind = "SlotEnded"
	// SeatOfferLapsed: a seat offer went unused for SeatOfferTTL; the user
	// leaves the waitlist, OffStage, and the seat passes to the next.
	SeatOfferLapsed LapseKind = "SeatOfferLapsed"
	// GraceExpired: a disconnected user did not reconnect within
	// ReconnectGrace; they left the meeting as with ParticipantLeft.
	GraceExpired LapseKind = "GraceExpired"
	// BanExpired: a stage ban reached its end.
	BanExpired LapseKind = "BanExpired"
	// RequestExpired: a pending request reached RequestTTL; the user is
	// OffStage.
	RequestExpired LapseKind = "RequestExpired"
)

// Lapse is one deadline that passed: whose, what, when it started and ended,
// and the setting that set it.
type Lapse struct {
	UserID string    `json:"user"`
	Kind   LapseKind `json:"kind"`
	// Since is when the lapsed thing began: the status's start, the offer's,
	// the disconnection's or the ban's.
	Since time.Time `json:"since"`
	// Deadline is when it lapsed, and the time the change takes effect.
	Deadline time.Time `json:"deadline"`
	// Setting names the setting in force ("InvitationTTL", "SpeakingSlot",
	// "SeatOfferTTL", "ReconnectGrace", "RequestTTL"), and Limit its value; for
	// BanExpired, Setting is "BanUntil" and Limit the ban's length.
	Setting string   `json:"setting"`
	Limit   Duration `json:"limit"`
	// Status is the user's stage status before the lapse.
	Status string `json:"status"`
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
func (*SettingsChanged) EventType() Type        { return TypeSettingsChanged }
func (*SeatWaitlisted) EventType() Type         { return TypeSeatWaitlisted }
func (*StageBanned) EventType() Type            { return TypeStageBanned }
func (*BanLifted) EventType() Type              { return TypeBanLifted }
func (*Disconnected) EventType() Type           { return TypeDisconnected }
func (*Reconnected) EventType() Type            { return TypeReconnected }
func (*Lapsed) EventType() Type                 { return TypeLapsed }

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
func (*SettingsChanged) payload()        {}
func (*SeatWaitlisted) payload()         {}
func (*StageBanned) payload()            {}
func (*BanLifted) payload()              {}
func (*Disconnected) payload()           {}
func (*Reconnected) payload()            {}
func (*Lapsed) payload()                 {}

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
	case TypeSettingsChanged:
		return new(SettingsChanged)
	case TypeSeatWaitlisted:
		return new(SeatWaitlisted)
	case TypeStageBanned:
		return new(StageBanned)
	case TypeBanLifted:
		return new(BanLifted)
	case TypeDisconnected:
		return new(Disconnected)
	case TypeReconnected:
		return new(Reconnected)
	case TypeLapsed:
		return new(Lapsed)
	case TypeStageStarted:
		return new(StageStarted)
	case TypeStageEnded:
		return new(StageEnded)
	case TypeRequestsClosed:
		return new(RequestsClosed)
	case TypeRequestsOpened:
		return new(RequestsOpened)
	case TypeCoHostPromoted:
		return new(CoHostPromoted)
	case TypeCoHostDemoted:
		return new(CoHostDemoted)
	case TypeInvitationDeclined:
		return new(InvitationDeclined)
	case TypeBroughtOnStage:
		return new(BroughtOnStage)
	}
	return nil
}

// Types lists every event type, in declaration order.
func Types() []Type {
	return []Type{
		TypeParticipantJoined, TypeParticipantLeft, TypePermissionsChanged,
		TypeAccessRequested, TypeAccessRequestCancelled, TypeAccessGranted,
		TypeAccessDenied, TypeStageJoined, TypeStageLeft, TypeKicked,
		TypeSettingsChanged, TypeSeatWaitlisted, TypeStageBanned, TypeBanLifted,
		TypeDisconnected, TypeReconnected, TypeLapsed,
		TypeStageStarted, TypeStageEnded, TypeRequestsClosed, TypeRequestsOpened,
		TypeCoHostPromoted, TypeCoHostDemoted, TypeInvitationDeclined, TypeBroughtOnStage,
	}
}
