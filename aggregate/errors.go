package aggregate

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/productdb/stage/events"
)

// The sentinel errors of the stage rules. A rejected command returns an
// [*Error] that wraps exactly one of them; match with errors.Is.
var (
	// ErrPermissionDenied is returned when the actor may not do what the
	// command asks: a user who is neither host nor co-host granting,
	// denying or kicking; a co-host doing what only hosts do, or kicking or
	// denying a host or co-host; a NotAllowed
	// user requesting, being invited or joining; a CanRequest user joining
	// without being accepted; a non-host listing requests.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrInvalidState is returned when the user's stage status does not allow
	// the command (joining twice, cancelling a request never made, adding a
	// participant twice, ...).
	ErrInvalidState = errors.New("invalid state")
	// ErrNotParticipant is returned when the command's user (or a target of a
	// list command) is not a participant of the meeting.
	ErrNotParticipant = errors.New("not a participant")
	// ErrInvalidCommand is returned for malformed input, before any rule is
	// checked: an empty, oversized or unsafe id, an empty target list, an
	// unknown stage access value, an oversized reason, a missing command id.
	ErrInvalidCommand = errors.New("invalid command")
	// ErrStageFull is returned by Join when the stage holds MaxOnStage
	// participants (or the free seats are held for waitlisted users). Unlike
	// every other rejection, the first such Join records an event: the
	// joiner is put on the seat waitlist (SeatWaitlisted), and the error is
	// returned after the append. A Join by a user already waitlisted, still
	// without an offer, fails with it and records nothing.
	ErrStageFull = errors.New("stage full")
	// ErrCooldown is returned by RequestAccess within RequestCooldown of the
	// user's last denial; [Error.Until] (and the message) say when they may
	// ask again.
	ErrCooldown = errors.New("request cooldown")
	// ErrKeyReused is returned when a command's idempotency key was already
	// used, by the same actor in the same meeting, for a different command
	// (another action, other targets or arguments). Nothing is stored; the
	// first command's outcome stands. It is what the IETF Idempotency-Key
	// draft answers with 422.
	ErrKeyReused = errors.New("idempotency key reused for a different command")
	// ErrNoMeeting is returned for a meeting with no events, which is no
	// meeting yet: by every command but AddParticipant (which starts one)
	// and Tick (which has nothing to do), and by the reads of the stage
	// Engine (Status, Roster, GetAccessRequests). A meeting whose
	// participants all left still exists.
	ErrNoMeeting = errors.New("no such meeting")
	// ErrBackstage is returned by RequestAccess while the stage is
	// backstage (settings StartBackstage, not started yet) for a user whose
	// request would wait in the queue: until a host starts the stage, only
	// hosts, co-hosts and speakers come on stage.
	ErrBackstage = errors.New("stage is backstage")
	// ErrStageEnded is returned while the stage has ended (EndStage) by
	// RequestAccess, Join, GrantAccess and BringOnStage.
	ErrStageEnded = errors.New("stage ended")
	// ErrRequestsClosed is returned by RequestAccess, for a user whose
	// request would wait in the queue, while a host has closed requests
	// for the meeting (CloseRequests).
	ErrRequestsClosed = errors.New("requests closed")
)

// Error is a rejected command: which command, about which user, which rule
// (Err, one of the sentinels) and a sentence saying why. Use errors.As to get
// it and errors.Is to test its kind.
type Error struct {
	// Command is the command's name, e.g. "GrantAccess".
	Command string
	// UserID is the user the failed rule is about: the target, or the actor
	// for the commands a user issues for themselves. Empty when the error is
	// not about a user (an empty target list, say).
	UserID string
	// Err is the kind of failure: one of the sentinel errors of this package.
	Err error
	// Reason explains the failure in words.
	Reason string
	// Cause is the underlying error, if any (an id validation error, say).
	Cause error
	// Until is when the failed rule stops applying, if it is a matter of
	// time: the end of a request cooldown or of a stage ban (zero for a ban
	// until lifted, and for every other rule).
	Until time.Time
}

func (e *Error) Error() string {
	s := "stage: " + e.Command
	if e.UserID != "" {
		s += " " + e.UserID
	}
	s += ": " + e.Err.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

func reject(cmd, user string, kind error, format string, args ...any) *Error {
	return &Error{Command: cmd, UserID: user, Err: kind, Reason: fmt.Sprintf(format, args...)}
}

// Rejection is a target of a list command (grant, deny, kick) that was not
// eligible. The command still applied to the eligible targets.
type Rejection struct {
	UserID string
	// Err is an [*Error] wrapping ErrNotParticipant, ErrPermissionDenied or
	// ErrInvalidState.
	Err error
}

// ReasonCode returns the name of err's kind as recorded in the log:
// "PermissionDenied", "InvalidState", "NotParticipant", "InvalidCommand",
// "StageFull", "Cooldown", "KeyReused", "NoMeeting" (never recorded: no
// event is written for a meeting that does not exist), "Backstage",
// "StageEnded", "RequestsClosed", or "" when err is none of them.
func ReasonCode(err error) string {
	switch {
	case errors.Is(err, ErrPermissionDenied):
		return "PermissionDenied"
	case errors.Is(err, ErrInvalidState):
		return "InvalidState"
	case errors.Is(err, ErrNotParticipant):
		return "NotParticipant"
	case errors.Is(err, ErrInvalidCommand):
		return "InvalidCommand"
	case errors.Is(err, ErrStageFull):
		return "StageFull"
	case errors.Is(err, ErrCooldown):
		return "Cooldown"
	case errors.Is(err, ErrKeyReused):
		return "KeyReused"
	case errors.Is(err, ErrNoMeeting):
		return "NoMeeting"
	case errors.Is(err, ErrBackstage):
		return "Backstage"
	case errors.Is(err, ErrStageEnded):
		return "StageEnded"
	case errors.Is(err, ErrRequestsClosed):
		return "RequestsClosed"
	}
	return ""
}

// ErrorForCode is the inverse of [ReasonCode]: the sentinel for a recorded
// reason code, or nil for an unknown one.
func ErrorForCode(code string) error {
	switch code {
	case "PermissionDenied":
		return ErrPermissionDenied
	case "InvalidState":
		return ErrInvalidState
	case "NotParticipant":
		return ErrNotParticipant
	case "InvalidCommand":
		return ErrInvalidCommand
	case "StageFull":
		return ErrStageFull
	case "Cooldown":
		return ErrCooldown
	case "KeyReused":
		return ErrKeyReused
	case "NoMeeting":
		return ErrNoMeeting
	case "Backstage":
		return ErrBackstage
	case "StageEnded":
		return ErrStageEnded
	case "RequestsClosed":
		return ErrRequestsClosed
	}
	return nil
}

// RejectionsOf rebuilds the Rejected targets of a stored list event (grant,
// deny, kick) from its recorded skips, so that a retried command can report
// its original outcome.
func RejectionsOf(e *events.Envelope) []Rejection {
	var skips []events.Skip
	switch p := e.Payload.(type) {
	case *events.AccessGranted:
		skips = p.Skipped
	case *events.AccessDenied:
		skips = p.Skipped
	case *events.Kicked:
		skips = p.Skipped
	}
	var out []Rejection
	for _, sk := range skips {
		kind := ErrorForCode(sk.Reason)
		if kind == nil {
			kind = ErrInvalidState
		}
		out = append(out, Rejection{UserID: sk.UserID, Err: &Error{
			Command: commandOf(e.Type), UserID: sk.UserID, Err: kind, Reason: "recorded in version " + strconv.FormatUint(e.Version, 10)}})
	}
	return out
}

// ErrorOf returns the error that the command which stored e returned to its
// caller even though it appended e: for a SeatWaitlisted event, the
// ErrStageFull rejection of the Join; nil for every other event. A retried
// command reports it again.
func ErrorOf(e *events.Envelope) error {
	p, ok := e.Payload.(*events.SeatWaitlisted)
	if !ok {
		return nil
	}
	return &Error{Command: "Join", UserID: e.Actor, Err: ErrStageFull,
		Reason: fmt.Sprintf("all %d seats are taken or held; waitlisted at position %d", p.MaxOnStage, p.Position)}
}

func commandOf(t events.Type) string {
	switch t {
	case events.TypeAccessGranted:
		return "GrantAccess"
	case events.TypeAccessDenied:
		return "DenyAccess"
	case events.TypeKicked:
		return "Kick"
	}
	return string(t)
}
