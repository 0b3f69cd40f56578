package projections

import (
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
	// StageAccessRequestUpdate tells a host how the request queue changed
	// (Notification.Queue: who entered it, at which position, and who
	// left it; Notification.QueueLength: its length after). Its size does
	// not grow with the queue: a client fetches the whole queue once
	// (GetAccessRequests, on connecting) and applies the changes.
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
	// Queue is how the event changed the request queue, and QueueLength
	// the queue's length after it (StageAccessRequestUpdate).
	Queue       []QueueChange `json:"queue,omitempty"`
	QueueLength int           `json:"queueLength,omitempty"`
}

// QueueChange is one user entering or leaving the request queue.
//
// A client that holds the queue (from GetAccessRequests, oldest first)
// applies the changes of each StageAccessRequestUpdate in order: it drops
// every user who left (positions close up), then puts each user who entered
// at Position (1 is the head; a new request always goes to the end).
// QueueLength checks the result; notifications carry the version of their
// event, so a client that missed one (a version gap) fetches the queue again.
type QueueChange struct {
	UserID string `json:"user"`
	// Change is QueueAdded or QueueRemoved.
	Change string `json:"change"`
	// Position is where an added user stands after the event (1-based);
	// 0 for a removal.
	Position int `json:"position,omitempty"`
}

// The changes of a QueueChange.
const (
	QueueAdded   = "added"
	QueueRemoved = "removed"
)

// Notify returns the notifications event e causes, given the meeting's state
// before it (which Notify does not modify: it applies e to a copy, which
// costs the size of the state; see [NotifyStep]), in a deterministic order:
//
//   - StageStatusUpdate to every participant whose status changed;
//   - StageRequestApproved to every user moved to AcceptedToJoinStage by
//     someone else (a grant), StageRequestRejected to every user whose
//     pending request someone else ended without accepting it (a deny, or
//     a permission change);
//   - NewStageRequest to every host for each user who entered the queue;
//   - StageAccessRequestUpdate to every host when the queue changed, with
//     the change, not the queue.
//
// Hosts are the participants holding AcceptStageRequests after the event.
func Notify(before *aggregate.State, e *events.Envelope) []Notification {
	return NotifyStep(before.Clone(), e)
}

// NotifyStep applies e to s in place, as aggregate.Evolve does, and returns
// the notifications it causes (as [Notify] does). Its cost is that of the
// users the event names and of the meeting's hosts, not of its audience:
// a watcher of a large meeting calls it for every event.
func NotifyStep(s *aggregate.State, e *events.Envelope) []Notification {
	ts := Step(s, e)
	return notify(s, e, ts)
}

func notify(after *aggregate.State, e *events.Envelope, ts []Transition) []Notification {
	base := Notification{MeetingID: e.MeetingID, Version: e.Version, Seq: e.Seq, Time: e.Time, Actor: e.Actor}
	var out []Notification
	add := func(t NotificationType, to, about string) *Notification {
		n := base
		n.Type, n.Recipient, n.UserID = t, to, about
		out = append(out, n)
		return &out[len(out)-1]
	}
	for _, t := range ts {
		if t.To != 0 {
			add(StageStatusUpdate, t.UserID, t.UserID).Status = t.To
		}
	}
	var removed, added []string
	for _, t := range ts {
		switch {
		case t.To == aggregate.AcceptedToJoinStage && e.Actor != t.UserID:
			add(StageRequestApproved, t.UserID, t.UserID)
		case t.From == aggregate.RequestedToJoinStage && t.To == aggregate.OffStage && e.Actor != t.UserID:
			add(StageRequestRejected, t.UserID, t.UserID)
		}
		switch {
		case t.To == aggregate.RequestedToJoinStage:
			added = append(added, t.UserID)
		case t.From == aggregate.RequestedToJoinStage:
			removed = append(removed, t.UserID)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return out
	}
	hosts := after.Hosts()
	for _, u := range added {
		for _, h := range hosts {
			add(NewStageRequest, h, u)
		}
	}
	// The users who entered stand at the end of the queue, in the order of
	// their requests (one event's requests share its time and version:
	// ordered by user id, as the transitions are).
	n := after.QueueLen()
	changes := make([]QueueChange, 0, len(removed)+len(added))
	for _, u := range removed {
		changes = append(changes, QueueChange{UserID: u, Change: QueueRemoved})
	}
	for i, u := range added {
		changes = append(changes, QueueChange{UserID: u, Change: QueueAdded, Position: n - len(added) + 1 + i})
	}
	for _, h := range hosts {
		u := add(StageAccessRequestUpdate, h, "")
		u.Queue, u.QueueLength = changes, n
	}
	return out
}
