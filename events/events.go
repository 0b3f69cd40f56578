package events

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the version of the wire format written by this package.
// Decoding accepts this version only; a later schema gets a new number and a
// decoder that reads both.
const SchemaVersion = 1

// Type names an event. The names are part of the audit format and never
// change; new events get new names.
type Type string

// The event types. Each has exactly one payload type (see [Payload]).
const (
	TypeParticipantJoined      Type = "ParticipantJoined"
	TypeParticipantLeft        Type = "ParticipantLeft"
	TypePermissionsChanged     Type = "PermissionsChanged"
	TypeAccessRequested        Type = "AccessRequested"
	TypeAccessRequestCancelled Type = "AccessRequestCancelled"
	TypeAccessGranted          Type = "AccessGranted"
	TypeAccessDenied           Type = "AccessDenied"
	TypeStageJoined            Type = "StageJoined"
	TypeStageLeft              Type = "StageLeft"
	TypeKicked                 Type = "Kicked"

	// The policy events (see [Settings]).
	TypeSettingsChanged Type = "SettingsChanged"
	TypeSeatWaitlisted  Type = "SeatWaitlisted"
	TypeStageBanned     Type = "StageBanned"
	TypeBanLifted       Type = "BanLifted"
	TypeDisconnected    Type = "Disconnected"
	TypeReconnected     Type = "Reconnected"
	TypeLapsed          Type = "Lapsed"

	// The stage-control events (stagecontrol.go).
	TypeStageStarted       Type = "StageStarted"
	TypeStageEnded         Type = "StageEnded"
	TypeRequestsClosed     Type = "RequestsClosed"
	TypeRequestsOpened     Type = "RequestsOpened"
	TypeCoHostPromoted     Type = "CoHostPromoted"
	TypeCoHostDemoted      Type = "CoHostDemoted"
	TypeInvitationDeclined Type = "InvitationDeclined"
	TypeBroughtOnStage     Type = "BroughtOnStage"
)

// Envelope is one stored event: the metadata every event carries, its
// payload, and its link in the meeting's hash chain.
//
// The fields from ID to Payload are set by whoever decides the event (the
// aggregate fills all but ID); [Envelope.Seal] sets PrevHash and Hash; the
// store sets Seq. Once sealed, an envelope must not change: [Envelope.Verify]
// detects any edit.
type Envelope struct {
	// ID is unique for every event (a UUID v7, so ids sort by creation time).
	ID uuid.UUID
	// MeetingID is the meeting (the stream subject's last token).
	MeetingID string
	// Version is the event's position in its meeting: 1, 2, 3, ... with no gap.
	Version uint64
	// Type names the event; it always equals Payload.EventType().
	Type Type
	// Time is when the event was decided (the engine clock's now).
	Time time.Time
	// Actor is the user whose command caused the event; empty for the
	// meeting-membership commands that the backend issues.
	Actor string
	// CommandID is the idempotency key of the command that caused the event.
	CommandID string
	// CorrelationID optionally ties the event to a wider request or trace.
	CorrelationID string
	// Schema is the wire schema version ([SchemaVersion]).
	Schema int
	// Payload is the event's own data; its concrete type is given by Type.
	Payload Payload
	// PrevHash is the Hash of the meeting's previous event (zero for version 1).
	PrevHash Hash
	// Hash is the SHA-256 of the canonical encoding of every field above.
	Hash Hash
	// Seq is the event's global position in the store that holds it (the
	// JetStream stream sequence). It is assigned on append, is zero before,
	// and is not covered by the hash: the same event copied to another store
	// keeps its hash.
	Seq uint64
}

// Users returns the users the event is about: the payload's targets for list
// events, the named user for membership events, the actor for the events a
// user causes for themselves, everyone a StageEnded or RequestsClosed moved,
// and nobody for StageStarted and RequestsOpened.
func (e *Envelope) Users() []string {
	if u, ok := e.user(); ok {
		return []string{u}
	}
	switch p := e.Payload.(type) {
	case *AccessGranted:
		return p.Users
	case *AccessDenied:
		return p.Users
	case *Kicked:
		return p.Users
	case *StageEnded:
		out := make([]string, 0, len(p.OnStage)+len(p.Accepted)+len(p.Requests))
		out = append(append(append(out, p.OnStage...), p.Accepted...), p.Requests...)
		return out
	case *RequestsClosed:
		return p.Denied
	case *Lapsed:
		out := make([]string, 0, len(p.Lapses))
		for _, l := range p.Lapses {
			if !slices.Contains(out, l.UserID) {
				out = append(out, l.UserID)
			}
		}
		return out
	}
	return nil // unreachable: user covers the rest
}

// user returns the one user of Users for the events about one user, and
// false for the list events and Lapsed.
func (e *Envelope) user() (string, bool) {
	switch p := e.Payload.(type) {
	case *ParticipantJoined:
		return p.UserID, true
	case *ParticipantLeft:
		return p.UserID, true
	case *PermissionsChanged:
		return p.UserID, true
	case *StageBanned:
		return p.UserID, true
	case *BanLifted:
		return p.UserID, true
	case *Disconnected:
		return p.UserID, true
	case *Reconnected:
		return p.UserID, true
	case *CoHostPromoted:
		return p.UserID, true
	case *CoHostDemoted:
		return p.UserID, true
	case *BroughtOnStage:
		return p.UserID, true
	case *AccessGranted, *AccessDenied, *Kicked, *Lapsed,
		*StageStarted, *StageEnded, *RequestsClosed, *RequestsOpened:
		return "", false
	default:
		return e.Actor, true
	}
}
