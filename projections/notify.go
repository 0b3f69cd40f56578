package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// NotificationType names a notification as the client SDKs expect it.
// docs/notifications.md lists, for every command, the notifications it
// causes, to whom, and what each carries.
type NotificationType string

// The notification types of the client SDKs.
const (
	// StageStatusUpdate tells a user their own stage status changed
	// (Notification.Status is the new one). A user who leaves the meeting
	// (removed, or their reconnect grace expired) while not OffStage gets
	// one with Status OffStage: their last notification of the meeting.
	// Reason carries the deny or kick reason, the lapse kind, or the
	// ParticipantLeft reason, when the event has one.
	StageStatusUpdate NotificationType = "stageStatusUpdate"
	// StageAccessRequestUpdate tells a moderator (a host or co-host, see
	// [aggregate.State.Moderators]) how the request queue changed
	// (Notification.Queue: who entered it, at which position, and who
	// left it; Notification.QueueLength: its length after). Its size does
	// not grow with the queue: a client fetches the whole queue once
	// (GetAccessRequests, on connecting) and applies the changes. Its JSON
	// always holds "queue" and "queueLength", also when the queue emptied
	// ("queueLength": 0).
	StageAccessRequestUpdate NotificationType = "stageAccessRequestUpdate"
	// NewStageRequest tells a moderator (a host or co-host) that
	// Notification.UserID asked to come on stage.
	NewStageRequest NotificationType = "newStageRequest"
	// StageRequestApproved tells a user a host accepted their pending
	// request: they may now join.
	StageRequestApproved NotificationType = "stageRequestApproved"
	// StageInvitation tells a user a host invited them to the stage (a
	// grant without a pending request): they may now join, or decline.
	StageInvitation NotificationType = "stageInvitation"
	// StageRequestRejected tells a user their pending request was denied
	// (DenyAccess, whose Reason is the host's reason, if any, or a
	// CloseRequests that denied the pending requests) or withdrawn by a
	// permission change.
	StageRequestRejected NotificationType = "stageRequestRejected"
	// StageRosterUpdate tells everyone (Recipient is [Everyone]) who went
	// on or left the stage (Notification.Stage) and how many are on stage
	// after (Notification.OnStage; its JSON always holds "stage" and
	// "onStage"), and whose co-host role began or ended
	// (Notification.Roles). One notification per event, however large the audience:
	// a router fans it out.
	StageRosterUpdate NotificationType = "stageRosterUpdate"
	// StageRequestExpired tells a user their pending request lapsed: it
	// waited the meeting's RequestTTL (a Lapsed event of kind
	// RequestExpired). They may request again.
	StageRequestExpired NotificationType = "stageRequestExpired"
	// StageInvitationDeclined tells the moderators (hosts and co-hosts)
	// that Notification.UserID declined their invitation or approved
	// request (DeclineInvitation, or Leave while accepted);
	// Notification.Invited is true when it was an invitation.
	StageInvitationDeclined NotificationType = "stageInvitationDeclined"
	// BroughtOnStage tells a user a host brought them on stage without
	// their consent (BringOnStage); it follows their StageStatusUpdate to
	// OnStage.
	BroughtOnStage NotificationType = "broughtOnStage"
	// StageRoleUpdate tells a user their role changed: a host made them a
	// co-host or took the role back (Notification.Role is the new one:
	// [RoleCoHost], or [RoleHost] or [RoleParticipant]). A user who becomes
	// a moderator receives the moderators' notifications from then on and
	// fetches the request queue (GetAccessRequests).
	StageRoleUpdate NotificationType = "stageRoleUpdate"
	// StagePhaseUpdate tells everyone (Recipient is [Everyone]) the stage
	// changed phase (StageStarted, StageEnded, or a SettingsChanged that
	// put a stage never started backstage or live): Notification.Phase is
	// the new one (Backstage, Live, Ended) and Notification.Since when it
	// began. Both always present.
	StagePhaseUpdate NotificationType = "stagePhaseUpdate"
	// StageRequestsClosed tells everyone (Recipient is [Everyone]) that a
	// host closed requests for the whole meeting: a request that would
	// wait in the queue fails until StageRequestsOpened (a client hides
	// its "raise hand" button).
	StageRequestsClosed NotificationType = "stageRequestsClosed"
	// StageRequestsOpened tells everyone (Recipient is [Everyone]) that a
	// host opened requests again.
	StageRequestsOpened NotificationType = "stageRequestsOpened"
	// Live is not caused by an event: a watcher (stage.Engine.Watch, a
	// stage.Router subscription) yields it once, when it has caught up and
	// follows the meeting live. Its Version is the meeting version it
	// caught up to and its ID the resume point: every notification after
	// it is delivered, so a command issued after seeing Live is always
	// notified. Recipient is [Everyone].
	Live NotificationType = "live"
)

// Everyone is the Recipient of a notification meant for every watcher of
// the meeting (StageRosterUpdate, Live) rather than one user. No user id
// is empty, so it never names a user.
const Everyone = ""

// Notification is one message for one recipient (or for [Everyone]),
// derived from one event.
type Notification struct {
	// ID is the notification's stable id, "<version>.<index>": the
	// version of its event and its place among that event's notifications
	// (0 for the first). A client that saw it resumes after it (SSE's
	// Last-Event-ID; see [NotificationID]).
	ID   string           `json:"id"`
	Type NotificationType `json:"type"`
	// Recipient is the user to deliver the notification to, or [Everyone].
	Recipient string `json:"recipient"`
	MeetingID string `json:"meeting"`
	// Version and Seq locate the event the notification comes from.
	Version uint64 `json:"version"`
	Seq     uint64 `json:"seq,omitempty"`
	// Time is the event's time (absent on a live notification).
	Time time.Time `json:"time,omitzero"`
	// Actor is who caused the event (empty for the backend).
	Actor string `json:"actor,omitempty"`
	// Event is the type of the event the notification comes from: it
	// tells a kick from a lapse or a leave.
	Event events.Type `json:"event,omitempty"`
	// UserID is the user the notification is about: the requester, or the
	// user whose status changed.
	UserID string `json:"user,omitempty"`
	// Status is the user's new status (StageStatusUpdate).
	Status aggregate.Status `json:"status,omitempty"`
	// Reason is why, for the user it concerns: the host's deny or kick
	// reason, the lapse kind ("SlotEnded", ...), or "Disconnected".
	Reason string `json:"reason,omitempty"`
	// Queue is how the event changed the request queue, and QueueLength
	// the queue's length after it (StageAccessRequestUpdate).
	Queue       []QueueChange `json:"queue,omitempty"`
	QueueLength int           `json:"queueLength,omitempty"`
	// Stage is who went on or left the stage, and OnStage how many are on
	// stage after the event (StageRosterUpdate).
	Stage   []StageChange `json:"stage,omitempty"`
	OnStage int           `json:"onStage,omitempty"`
	// Roles is whose co-host role began or ended (StageRosterUpdate, with
	// an empty Stage when nobody went on or left the stage; a co-host who
	// leaves the meeting is listed as RoleParticipant), and Role the
	// user's new role (StageRoleUpdate): [RoleHost], [RoleCoHost] or
	// [RoleParticipant].
	Roles []RoleChange `json:"roles,omitempty"`
	Role  string       `json:"role,omitempty"`
	// Phase is the stage's phase after the event and Since when it began
	// (StagePhaseUpdate).
	Phase aggregate.Phase `json:"phase,omitempty"`
	Since time.Time       `json:"since,omitzero"`
	// Invited is true when the declined acceptance was an invitation
	// (StageInvitationDeclined).
	Invited bool `json:"invited,omitempty"`
}

// MarshalJSON writes the notification with the fields its type always
// carries, zero or not: "queue" and "queueLength" for a
// StageAccessRequestUpdate, "stage" and "onStage" for a StageRosterUpdate
// (an empty list is written [], never null).
func (n Notification) MarshalJSON() ([]byte, error) {
	type plain Notification // without this method
	w := struct {
		plain
		Queue       *[]QueueChange `json:"queue,omitempty"`
		QueueLength *int           `json:"queueLength,omitempty"`
		Stage       *[]StageChange `json:"stage,omitempty"`
		OnStage     *int           `json:"onStage,omitempty"`
		Roles       []RoleChange   `json:"roles,omitempty"` // after "stage"
	}{plain: plain(n), Roles: n.Roles}
	switch n.Type {
	case StageAccessRequestUpdate:
		q := n.Queue
		if q == nil {
			q = []QueueChange{}
		}
		w.Queue, w.QueueLength = &q, &n.QueueLength
	case StageRosterUpdate:
		s := n.Stage
		if s == nil {
			s = []StageChange{}
		}
		w.Stage, w.OnStage = &s, &n.OnStage
	default:
		if len(n.Queue) > 0 || n.QueueLength != 0 {
			w.Queue, w.QueueLength = &n.Queue, &n.QueueLength
		}
		if len(n.Stage) > 0 || n.OnStage != 0 {
			w.Stage, w.OnStage = &n.Stage, &n.OnStage
		}
	}
	return json.Marshal(w)
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

// StageChange is one user going on or leaving the stage.
type StageChange struct {
	UserID string `json:"user"`
	// Change is StageEntered or StageExited.
	Change string `json:"change"`
}

// The changes of a StageChange.
const (
	StageEntered = "joined"
	StageExited  = "left"
)

// RoleChange is one user whose role changed (a co-host promoted or
// demoted).
type RoleChange struct {
	UserID string `json:"user"`
	// Role is the user's role after: RoleHost, RoleCoHost or
	// RoleParticipant.
	Role string `json:"role"`
}

// The roles of a RoleChange and of Notification.Role: a host holds
// AcceptStageRequests (the backend gives it), a co-host was promoted by a
// host (see docs/stage-controls.md), a participant is neither.
const (
	RoleHost        = "host"
	RoleCoHost      = "coHost"
	RoleParticipant = "participant"
)

// moderatorRole returns u's role in s: host, co-host or participant.
func moderatorRole(s *aggregate.State, u string) string {
	m, _ := s.Member(u)
	switch {
	case m.IsHost():
		return RoleHost
	case m.CoHost:
		return RoleCoHost
	}
	return RoleParticipant
}

// NotificationID is a notification's place in its meeting's sequence of
// notifications: the version of its event, and its Index among that
// event's notifications. Its text form is "<version>.<index>", or
// "<version>" alone for "every notification of that version" (the ID of a
// Live notification). Ids order the notifications: a watcher resuming
// after an id skips every notification up to it and delivers the rest.
//
// Ids are stable as long as the notification rules are (a release that
// adds a notification to an event shifts the indexes of the ones after it,
// within that event; it says so in its notes).
type NotificationID struct {
	Version uint64
	// Index is the place among the event's notifications, 0 for the
	// first; a negative Index stands for all of them.
	Index int
}

// ErrInvalidNotificationID is returned by [ParseNotificationID] for text
// that is not a notification id.
var ErrInvalidNotificationID = errors.New("projections: invalid notification id")

// ParseNotificationID reads a notification id in the form String writes.
// The empty string is the zero NotificationID (nothing delivered yet).
func ParseNotificationID(s string) (NotificationID, error) {
	if s == "" {
		return NotificationID{}, nil
	}
	v, i, dotted := strings.Cut(s, ".")
	id := NotificationID{Index: -1}
	var err error
	if id.Version, err = strconv.ParseUint(v, 10, 64); err != nil {
		return NotificationID{}, fmt.Errorf("%w: %q", ErrInvalidNotificationID, s)
	}
	if dotted {
		n, err := strconv.ParseUint(i, 10, 31)
		if err != nil {
			return NotificationID{}, fmt.Errorf("%w: %q", ErrInvalidNotificationID, s)
		}
		id.Index = int(n)
	}
	return id, nil
}

// String writes the id: "<version>.<index>", or "<version>" for a
// negative Index.
func (id NotificationID) String() string {
	if id.Index < 0 {
		return strconv.FormatUint(id.Version, 10)
	}
	return strconv.FormatUint(id.Version, 10) + "." + strconv.Itoa(id.Index)
}

// Covers reports whether the notification of version v and index i comes
// at or before id: a watcher resuming after id skips it.
func (id NotificationID) Covers(v uint64, i int) bool {
	return v < id.Version || v == id.Version && (id.Index < 0 || i <= id.Index)
}

// Notify returns the notifications event e causes, given the meeting's state
// before it (which Notify does not modify: it applies e to a copy, which
// costs the size of the state; see [NotifyStep]), in a deterministic order:
//
//   - StageStatusUpdate to every participant whose status changed (one
//     who left the meeting while not OffStage gets OffStage);
//   - StageRequestApproved to every user moved from RequestedToJoinStage to
//     AcceptedToJoinStage by someone else (a grant of their request),
//     StageInvitation to every user a grant names as invited
//     (AccessGranted.Invited; for a grant recorded before that field
//     existed, every other user moved to AcceptedToJoinStage by someone
//     else), StageRequestRejected to every user whose pending request
//     someone else ended without accepting it (a deny, a RequestsClosed
//     that denied the pending requests, a permission change; a removal from
//     the meeting or a StageEnded does not count: they get their
//     StageStatusUpdate), StageRequestExpired to every user whose request
//     lapsed (RequestExpired), BroughtOnStage to every user a host brought
//     on stage (not to a host bringing themselves);
//   - StageRoleUpdate to a co-host promoted or demoted;
//   - NewStageRequest to every moderator (host or co-host) for each user
//     who entered the queue;
//   - StageAccessRequestUpdate to every moderator when the queue changed,
//     with the change, not the queue;
//   - StageInvitationDeclined to every moderator for each user who
//     declined their acceptance (DeclineInvitation, Leave while accepted);
//   - one StageRosterUpdate to [Everyone] when someone went on or left
//     the stage, or a co-host was promoted, demoted or left the meeting;
//   - one StagePhaseUpdate to [Everyone] when the stage's phase changed;
//   - one StageRequestsClosed or StageRequestsOpened to [Everyone] when a
//     host closed or opened requests.
//
// Moderators are the participants holding AcceptStageRequests or the
// co-host role after the event ([aggregate.State.Moderators]).
// Each notification's ID is its event's version and its index in the
// returned slice. docs/notifications.md has the table.
func Notify(before *aggregate.State, e *events.Envelope) []Notification {
	return NotifyStep(before.Clone(), e)
}

// NotifyStep applies e to s in place, as aggregate.Evolve does, and returns
// the notifications it causes (as [Notify] does). Its cost is that of the
// users the event names and of the meeting's moderators, not of its
// audience: a watcher of a large meeting calls it for every event.
func NotifyStep(s *aggregate.State, e *events.Envelope) []Notification {
	open, _ := s.RequestsOpen()
	before := stageBefore{phase: s.Phase(), requestsOpen: open}
	return notify(s, e, step(s, e), before)
}

// reason returns the reason the event gives for user u, if any.
func reason(e *events.Envelope, u string) string {
	switch p := e.Payload.(type) {
	case *events.AccessDenied:
		return p.Reason
	case *events.Kicked:
		return p.Reason
	case *events.ParticipantLeft:
		return p.Reason
	case *events.Lapsed:
		for i := len(p.Lapses) - 1; i >= 0; i-- {
			if p.Lapses[i].UserID == u {
				return string(p.Lapses[i].Kind)
			}
		}
	}
	return ""
}

// declines reports whether e is its actor declining their acceptance:
// InvitationDeclined, or StageLeft while accepted.
func declines(e *events.Envelope) bool {
	switch p := e.Payload.(type) {
	case *events.InvitationDeclined:
		return true
	case *events.StageLeft:
		return p.Declined
	}
	return false
}

// stageBefore is what the stage was before an event, besides the users'
// statuses: its phase and whether requests were open.
type stageBefore struct {
	phase        aggregate.Phase
	requestsOpen bool
}

// invited reports whether e, which moved user u (whose status before was
// from) to AcceptedToJoinStage, is an invitation: u is in the grant's
// Invited. A grant that names nobody invited (recorded before
// AccessGranted.Invited existed, or approving requests only) and any other
// event fall back to the status before: an invitation unless u had
// requested.
func invited(e *events.Envelope, u string, from aggregate.Status) bool {
	if p, ok := e.Payload.(*events.AccessGranted); ok && len(p.Invited) > 0 {
		return slices.Contains(p.Invited, u)
	}
	return from != aggregate.RequestedToJoinStage
}

func notify(after *aggregate.State, e *events.Envelope, ts []transition, before stageBefore) []Notification {
	base := Notification{MeetingID: e.MeetingID, Version: e.Version, Seq: e.Seq, Time: e.Time, Actor: e.Actor, Event: e.Type}
	var out []Notification
	add := func(t NotificationType, to, about string) *Notification {
		n := base
		n.Type, n.Recipient, n.UserID = t, to, about
		out = append(out, n)
		return &out[len(out)-1]
	}
	for _, t := range ts {
		switch {
		case t.To != 0:
			u := add(StageStatusUpdate, t.UserID, t.UserID)
			u.Status, u.Reason = t.To, reason(e, t.UserID)
		case t.From != aggregate.OffStage:
			// Left the meeting while requested, accepted or on stage.
			u := add(StageStatusUpdate, t.UserID, t.UserID)
			u.Status, u.Reason = aggregate.OffStage, reason(e, t.UserID)
		}
	}
	var removed, added []string
	var declined []transition
	var stage []StageChange
	for _, t := range ts {
		byOther := e.Actor != t.UserID
		switch {
		case t.To == aggregate.AcceptedToJoinStage && byOther && invited(e, t.UserID, t.From):
			add(StageInvitation, t.UserID, t.UserID)
		case t.To == aggregate.AcceptedToJoinStage && byOther:
			add(StageRequestApproved, t.UserID, t.UserID)
		case t.From == aggregate.RequestedToJoinStage && t.To == aggregate.OffStage && e.Type == events.TypeLapsed &&
			reason(e, t.UserID) == string(events.RequestExpired):
			add(StageRequestExpired, t.UserID, t.UserID)
		case t.From == aggregate.RequestedToJoinStage && t.To == aggregate.OffStage && byOther && e.Type != events.TypeStageEnded:
			add(StageRequestRejected, t.UserID, t.UserID).Reason = reason(e, t.UserID)
		case t.To == aggregate.OnStage && byOther && e.Type == events.TypeBroughtOnStage:
			add(BroughtOnStage, t.UserID, t.UserID)
		case t.From == aggregate.AcceptedToJoinStage && t.To == aggregate.OffStage && !byOther && declines(e):
			declined = append(declined, t)
		}
		switch {
		case t.To == aggregate.RequestedToJoinStage:
			added = append(added, t.UserID)
		case t.From == aggregate.RequestedToJoinStage:
			removed = append(removed, t.UserID)
		}
		switch {
		case t.To == aggregate.OnStage:
			stage = append(stage, StageChange{UserID: t.UserID, Change: StageEntered})
		case t.From == aggregate.OnStage:
			stage = append(stage, StageChange{UserID: t.UserID, Change: StageExited})
		}
	}
	var roles []RoleChange
	switch e.Payload.(type) {
	case *events.CoHostPromoted, *events.CoHostDemoted:
		u := e.Users()[0]
		roles = []RoleChange{{UserID: u, Role: moderatorRole(after, u)}}
	}
	for _, r := range roles {
		add(StageRoleUpdate, r.UserID, r.UserID).Role = r.Role
	}
	for _, t := range ts {
		if t.To == 0 && t.CoHost {
			// A co-host's role ends with the membership.
			roles = append(roles, RoleChange{UserID: t.UserID, Role: RoleParticipant})
		}
	}
	var mods []string
	if len(added) > 0 || len(removed) > 0 || len(declined) > 0 {
		mods = after.Moderators()
	}
	if len(added) > 0 || len(removed) > 0 {
		for _, u := range added {
			for _, h := range mods {
				add(NewStageRequest, h, u)
			}
		}
		// The users who entered stand at the end of the queue, in the order
		// of their requests (one event's requests share its time and
		// version: ordered by user id, as the transitions are).
		n := after.QueueLen()
		changes := make([]QueueChange, 0, len(removed)+len(added))
		for _, u := range removed {
			changes = append(changes, QueueChange{UserID: u, Change: QueueRemoved})
		}
		for i, u := range added {
			changes = append(changes, QueueChange{UserID: u, Change: QueueAdded, Position: n - len(added) + 1 + i})
		}
		for _, h := range mods {
			u := add(StageAccessRequestUpdate, h, "")
			u.Queue, u.QueueLength = changes, n
		}
	}
	for _, t := range declined {
		for _, h := range mods {
			add(StageInvitationDeclined, h, t.UserID).Invited = t.Invited
		}
	}
	if len(stage) > 0 || len(roles) > 0 {
		u := add(StageRosterUpdate, Everyone, "")
		u.Stage, u.OnStage, u.Roles = stage, after.OnStageCount(), roles
	}
	if ph := after.Phase(); ph != before.phase {
		u := add(StagePhaseUpdate, Everyone, "")
		u.Phase, u.Since = ph, after.PhaseSince()
	}
	if open, _ := after.RequestsOpen(); open != before.requestsOpen {
		if open {
			add(StageRequestsOpened, Everyone, "")
		} else {
			add(StageRequestsClosed, Everyone, "")
		}
	}
	setIDs(out, e.Version)
	return out
}

// setIDs sets the IDs "<v>.<i>" of ns, in one allocation: they are
// substrings of one string.
func setIDs(ns []Notification, v uint64) {
	if len(ns) == 0 {
		return
	}
	var b strings.Builder
	b.Grow(len(ns) * 24)
	var num [20]byte
	ends := make([]int, 0, 16)
	for i := range ns {
		b.Write(strconv.AppendUint(num[:0], v, 10))
		b.WriteByte('.')
		b.Write(strconv.AppendInt(num[:0], int64(i), 10))
		ends = append(ends, b.Len())
	}
	all := b.String()
	start := 0
	for i, end := range ends {
		ns[i].ID = all[start:end]
		start = end
	}
}
