package webhook

import (
	"encoding/json"
	"slices"

	"github.com/productdb/stage/events"
)

// Payload is the JSON body of every delivery:
//
//	{"id":"0193...","type":"Kicked","meeting":"m1","version":7,"seq":42,
//	 "event":{...the event in the log's wire format...},
//	 "media_stop":["bob"]}
//
// id is the event's id: the same on every retry of a delivery, so a
// receiver drops what it has already handled. event is the event exactly
// as the log stores it (package events' wire format, with "seq").
type Payload struct {
	// ID is the event's id (a UUID v7): the delivery's dedupe key.
	ID string `json:"id"`
	// Type is the event's type ("Kicked", "StageLeft", ...).
	Type events.Type `json:"type"`
	// Meeting is the event's meeting.
	Meeting string `json:"meeting"`
	// Version is the event's version in its meeting (1, 2, ...): deliveries
	// of one meeting come in version order.
	Version uint64 `json:"version"`
	// Seq is the event's stream position.
	Seq uint64 `json:"seq"`
	// Event is the event in the log's wire format.
	Event json.RawMessage `json:"event"`
	// MediaStop lists the users whose audio and video the media server
	// should stop because of this event (see [MediaStop]); [] when none.
	MediaStop []string `json:"media_stop"`
}

// MediaStop returns the users whose media to stop because of e: the
// users an event takes off the stage.
//
//   - StageLeft: the actor, unless they only declined an invitation.
//   - Kicked: every kicked user (a revoked invitation is among them: its
//     user was not publishing, and stopping is a no-op for them).
//   - ParticipantLeft, StageBanned: the user, when their status before was
//     OnStage.
//   - PermissionsChanged to NotAllowed: the user (they are off stage after;
//     the event does not say whether they were on it).
//   - Lapsed: each lapse whose user was OnStage (a speaking slot that ended,
//     a reconnect grace that expired on stage).
//   - StageEnded: every user who was on stage (its OnStage list).
//
// Every other event stops nothing: nil. Stopping the media of a user who
// is not publishing must be a no-op for the receiver.
func MediaStop(e *events.Envelope) []string {
	const on = "OnStage"
	switch p := e.Payload.(type) {
	case *events.StageLeft:
		if !p.Declined && e.Actor != "" {
			return []string{e.Actor}
		}
	case *events.Kicked:
		return slices.Clone(p.Users)
	case *events.ParticipantLeft:
		if p.Status == on {
			return []string{p.UserID}
		}
	case *events.StageBanned:
		if p.Status == on {
			return []string{p.UserID}
		}
	case *events.PermissionsChanged:
		if p.Permissions.StageAccess == events.NotAllowed {
			return []string{p.UserID}
		}
	case *events.StageEnded:
		return slices.Clone(p.OnStage)
	case *events.Lapsed:
		var out []string
		for _, l := range p.Lapses {
			if l.Status == on && !slices.Contains(out, l.UserID) {
				out = append(out, l.UserID)
			}
		}
		return out
	}
	return nil
}

// payloadOf returns the delivery body of e.
func payloadOf(e *events.Envelope) ([]byte, error) {
	wire, err := events.Marshal(e)
	if err != nil {
		return nil, err
	}
	stop := MediaStop(e)
	if stop == nil {
		stop = []string{}
	}
	return json.Marshal(Payload{ID: e.ID.String(), Type: e.Type, Meeting: e.MeetingID, Version: e.Version, Seq: e.Seq, Event: wire, MediaStop: stop})
}
