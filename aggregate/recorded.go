package aggregate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/productdb/stage/events"
)

// CommandOf reconstructs the command an event records: its actor, ids and
// action, with a list command's targets being the users it applied to
// followed by those it skipped. ok is false for an event type no command
// is known for. A command recorded as a Lapsed event and its own event
// (both carry its id) is the command of the second.
func CommandOf(e *events.Envelope) (cmd Command, ok bool) {
	var a Action
	withSkips := func(users []string, skips []events.Skip) []string {
		out := slices.Clone(users)
		for _, s := range skips {
			out = append(out, s.UserID)
		}
		return out
	}
	switch p := e.Payload.(type) {
	case *events.ParticipantJoined:
		a = AddParticipant{Participant: Participant{UserID: p.UserID, Permissions: p.Permissions}}
	case *events.ParticipantLeft:
		if p.Reason == "Disconnected" {
			a = Disconnect{UserID: p.UserID} // with no reconnect grace
		} else {
			a = RemoveParticipant{UserID: p.UserID}
		}
	case *events.PermissionsChanged:
		a = UpdatePermissions{UserID: p.UserID, Permissions: p.Permissions}
	case *events.AccessRequested:
		a = RequestAccess{}
	case *events.AccessRequestCancelled:
		a = CancelRequestAccess{}
	case *events.AccessGranted:
		a = GrantAccess{Users: withSkips(p.Users, p.Skipped)}
	case *events.AccessDenied:
		a = DenyAccess{Users: withSkips(p.Users, p.Skipped), Reason: p.Reason}
	case *events.StageJoined:
		a = Join{}
	case *events.StageLeft:
		a = Leave{}
	case *events.Kicked:
		a = Kick{Users: withSkips(p.Users, p.Skipped), Reason: p.Reason}
	case *events.SettingsChanged:
		a = Configure{Settings: p.Settings}
	case *events.SeatWaitlisted:
		a = Join{} // a Join on a full stage
	case *events.StageBanned:
		a = BanFromStage{UserID: p.UserID, Until: p.Until}
	case *events.BanLifted:
		a = LiftBan{UserID: p.UserID}
	case *events.Disconnected:
		a = Disconnect{UserID: p.UserID}
	case *events.Reconnected:
		a = Reconnect{UserID: p.UserID}
	case *events.Lapsed:
		a = Tick{}
	case *events.StageStarted:
		a = StartStage{}
	case *events.StageEnded:
		a = EndStage{}
	case *events.RequestsClosed:
		a = CloseRequests{DenyPending: p.DenyPending}
	case *events.RequestsOpened:
		a = OpenRequests{}
	case *events.CoHostPromoted:
		a = PromoteCoHost{UserID: p.UserID}
	case *events.CoHostDemoted:
		a = DemoteCoHost{UserID: p.UserID}
	case *events.InvitationDeclined:
		a = DeclineInvitation{}
	case *events.BroughtOnStage:
		a = BringOnStage{UserID: p.UserID}
	default:
		return Command{}, false
	}
	return Command{ID: e.CommandID, CorrelationID: e.CorrelationID, Actor: e.Actor, Action: a}, true
}

// SameCommand reports whether cmd is the command that recorded evs (the
// events of one command, in version order, as a retry finds them): the same
// actor, idempotency key and action, with the same arguments. A list
// command's targets compare as a set (duplicates and order do not matter,
// as they do not to Decide); times compare as instants; the correlation id
// is not compared (a retry may carry a new one). It is how a retry under a
// known key is told from a different command reusing the key
// ([ErrKeyReused]).
func SameCommand(cmd Command, evs []events.Envelope) bool {
	if len(evs) == 0 || cmd.Action == nil {
		return false
	}
	// The command's own event is the last one; a Lapsed event before it
	// records deadlines that had passed. A Tick records only a Lapsed event.
	rec, ok := CommandOf(&evs[len(evs)-1])
	if !ok || rec.ID != cmd.ID || rec.Actor != cmd.Actor {
		return false
	}
	return canonical(rec.Action) == canonical(cmd.Action)
}

// canonical writes an action with its arguments in a form that equal
// commands share: list targets sorted and deduplicated, times in UTC.
func canonical(a Action) string {
	set := func(users []string) string {
		u := slices.Clone(users)
		slices.Sort(u)
		return strings.Join(slices.Compact(u), "\x00")
	}
	switch a := a.(type) {
	case GrantAccess:
		return fmt.Sprintf("GrantAccess\x01%s", set(a.Users))
	case DenyAccess:
		return fmt.Sprintf("DenyAccess\x01%s\x01%q", set(a.Users), a.Reason)
	case Kick:
		return fmt.Sprintf("Kick\x01%s\x01%q", set(a.Users), a.Reason)
	case BanFromStage:
		return fmt.Sprintf("BanFromStage\x01%q\x01%s", a.UserID, a.Until.UTC().Format(time.RFC3339Nano))
	case AddParticipant:
		return fmt.Sprintf("AddParticipant\x01%q\x01%+v", a.Participant.UserID, a.Participant.Permissions)
	case nil:
		return ""
	}
	// The rest are comparable values with no slices or times.
	return fmt.Sprintf("%s\x01%#v", a.Name(), a)
}
