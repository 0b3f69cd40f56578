package projections

import (
	"slices"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// NotificationType names a notification as the client SDKs expect it.
type NotificationType string

// The notification types of the client SDKs.
const (
	// StageStatusUpdate tells a user their own stage status changed
	// (Notification.Status is the new one).
	StageStatusUpdate NotificationType = "stageStatusUpdate"
	// StageAccessRequestUpdate tells a host the request queue changed
	// (Notification.Requests is the queue after the event, oldest first).
	StageAccessRequestUpdate NotificationType = "stageAccessRequestUpdate"
	// NewStageRequest tells a host that Notification.UserID asked to come on stage.
	NewStageRequest NotificationType = "newStageRequest"
	// StageRequestApproved tells a user a host accepted their request (or
	// invited them): they may now join.
	StageRequestApproved NotificationType = "stageRequestApproved"
	// StageRequestRejected tells a user their pending request was denied
	// (or withdrawn by a permission change).
	StageRequestRejected NotificationType = "stageRequestRejected"
)

// Notification is one message for one recipient, derived from one event.
type Notification struct {
	Type NotificationType `json:"type"`
	// Recipient is the user to deliver the notification to.
	Recipient string `json:"recipient"`
	MeetingID string `json:"meeting"`
	// Version and Seq locate the event the notification comes from.
	Version uint64    `json:"version"`
	Seq     uint64    `json:"seq,omitempty"`
	Time    time.Time `json:"time"`
	// Actor is who caused the event (empty for the backend).
	Actor string `json:"actor,omitempty"`
	// UserID is the user the notification is about: the requester, or the
	// user whose status changed.
	UserID string `json:"user,omitempty"`
	// Status is the user's new status (StageStatusUpdate).
	Status aggregate.Status `json:"status,omitempty"`
	// Requests is the request queue after the event (StageAccessRequestUpdate).
	Requests []AccessRequest `json:"requests,omitempty"`
}

// Notify returns the notifications event e causes, given the meeting's state
// before it (which Notify does not modify), in a deterministic order:
//
//   - StageStatusUpdate to every participant whose status changed;
//   - StageRequestApproved to every user moved to AcceptedToJoinStage by
//     someone else (a grant), StageRequestRejected to every user whose
//     pending request someone else ended without accepting it (a deny, or
//     a permission change);
//   - NewStageRequest to every host for each user who entered the queue;
//   - StageAccessRequestUpdate to every host when the queue changed.
//
// Hosts are the participants holding AcceptStageRequests after the event.
func Notify(before *aggregate.State, e *events.Envelope) []Notification {
	after, ts := Transitions(before, e)
	return notify(before, after, e, ts)
}

func notify(before, after *aggregate.State, e *events.Envelope, ts []Transition) []Notification {
	base := Notification{MeetingID: e.MeetingID, Version: e.Version, Seq: e.Seq, Time: e.Time, Actor: e.Actor}
	var out []Notification
	add := func(t NotificationType, to, about string) *Notification {
		n := base
		n.Type, n.Recipient, n.UserID = t, to, about
		out = append(out, n)
		return &out[len(out)-1]
	}
	var requested []string
	for _, t := range ts {
		if t.To != 0 {
			add(StageStatusUpdate, t.UserID, t.UserID).Status = t.To
		}
	}
	for _, t := range ts {
		switch {
		case t.To == aggregate.AcceptedToJoinStage && e.Actor != t.UserID:
			add(StageRequestApproved, t.UserID, t.UserID)
		case t.From == aggregate.RequestedToJoinStage && t.To == aggregate.OffStage && e.Actor != t.UserID:
			add(StageRequestRejected, t.UserID, t.UserID)
		}
		if t.To == aggregate.RequestedToJoinStage {
			requested = append(requested, t.UserID)
		}
	}
	var hosts []string
	for _, m := range after.Members() {
		if m.IsHost() {
			hosts = append(hosts, m.UserID)
		}
	}
	for _, u := range requested {
		for _, h := range hosts {
			add(NewStageRequest, h, u)
		}
	}
	q0, q1 := Requests(before), Requests(after)
	if !slices.EqualFunc(q0, q1, func(a, b AccessRequest) bool {
		return a.UserID == b.UserID && a.RequestedAt.Equal(b.RequestedAt)
	}) {
		for _, h := range hosts {
			add(StageAccessRequestUpdate, h, "").Requests = q1
		}
	}
	return out
}
