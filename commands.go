package stage

// The methods below are Execute with the command they name. Each takes the
// same trailing options as Execute: [WithIdempotencyKey] for a safe retry,
// [WithCorrelationID], and [WithReason] (DenyAccess and Kick only).

import (
	"context"
	"time"

	"github.com/productdb/stage/aggregate"
)

// AddParticipant adds a user to the meeting with their stage permissions; they
// start OffStage. The backend calls it when the user enters the meeting.
func (e *Engine) AddParticipant(ctx context.Context, meetingID string, p aggregate.Participant, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.AddParticipant{Participant: p}}, opts...)
}

// RemoveParticipant removes a user from the meeting: off the stage, out of the
// request queue, no status.
func (e *Engine) RemoveParticipant(ctx context.Context, meetingID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.RemoveParticipant{UserID: userID}}, opts...)
}

// UpdatePermissions changes a participant's permissions from now on. A user
// changed to NotAllowed who is requested, accepted or on stage is moved
// OffStage in the same event.
func (e *Engine) UpdatePermissions(ctx context.Context, meetingID, userID string, p aggregate.Permissions, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.UpdatePermissions{UserID: userID, Permissions: p}}, opts...)
}

// RequestAccess asks, for actorID, to come on stage. Allowed users and hosts
// are accepted at once; CanRequest users join the request queue.
func (e *Engine) RequestAccess(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.RequestAccess{}}, opts...)
}

// CancelRequestAccess withdraws actorID's pending request.
func (e *Engine) CancelRequestAccess(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.CancelRequestAccess{}}, opts...)
}

// GrantAccess accepts the requests of, or invites, the users; actorID must be
// a host. Ineligible targets are reported in Result.Rejected.
func (e *Engine) GrantAccess(ctx context.Context, meetingID, actorID string, userIDs []string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.GrantAccess{Users: userIDs}}, opts...)
}

// DenyAccess denies the users' pending requests; actorID must be a host.
// Ineligible targets are reported in Result.Rejected. [WithReason] records
// a reason in the event.
func (e *Engine) DenyAccess(ctx context.Context, meetingID, actorID string, userIDs []string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.DenyAccess{Users: userIDs}}, opts...)
}

// Join puts actorID on stage: they must be accepted, or have Allowed access.
func (e *Engine) Join(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Join{}}, opts...)
}

// Leave takes actorID off stage, or declines their invitation.
func (e *Engine) Leave(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Leave{}}, opts...)
}

// Kick sends the users off stage or revokes their invitations; actorID must
// be a host. Ineligible targets are reported in Result.Rejected.
// [WithReason] records a reason in the event.
func (e *Engine) Kick(ctx context.Context, meetingID, actorID string, userIDs []string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Kick{Users: userIDs}}, opts...)
}

// Configure sets the meeting's stage policies (capacity, seat offers,
// invitation expiry, speaking slots, request cooldown, reconnect grace),
// replacing the previous settings; actorID must be a host. The zero
// [aggregate.Settings] turns every policy off.
func (e *Engine) Configure(ctx context.Context, meetingID, actorID string, settings aggregate.Settings, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Configure{Settings: settings}}, opts...)
}

// BanFromStage bans userID from the stage until until (the zero time: until
// lifted); actorID must be a host. The user is moved OffStage and out of the
// request queue and the seat waitlist, and until then cannot request, be
// invited or join (aggregate.ErrPermissionDenied, saying until when). A ban
// records no reason: with [WithReason] it fails with
// aggregate.ErrInvalidCommand.
func (e *Engine) BanFromStage(ctx context.Context, meetingID, actorID, userID string, until time.Time, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.BanFromStage{UserID: userID, Until: until}}, opts...)
}

// LiftBan ends userID's stage ban; actorID must be a host.
func (e *Engine) LiftBan(ctx context.Context, meetingID, actorID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.LiftBan{UserID: userID}}, opts...)
}

// Disconnect tells the engine that userID's connection dropped. With a
// ReconnectGrace set they keep their status, queue position and seat for
// that long, and leave the meeting when it ends unless they Reconnect;
// without one they leave at once.
func (e *Engine) Disconnect(ctx context.Context, meetingID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.Disconnect{UserID: userID}}, opts...)
}

// Reconnect tells the engine that a disconnected userID is back within their
// grace: they keep everything they had.
func (e *Engine) Reconnect(ctx context.Context, meetingID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.Reconnect{UserID: userID}}, opts...)
}

// StartStage takes the stage live, from backstage (a meeting whose
// settings say StartBackstage) or after it ended; actorID must be a host.
func (e *Engine) StartStage(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.StartStage{}}, opts...)
}

// EndStage ends the stage for everyone in one event; actorID must be a
// host. Whoever is on stage or accepted goes OffStage (the event lists
// whose media to stop), pending requests are closed, and until a host
// starts the stage again nobody can request, be granted or join
// (aggregate.ErrStageEnded).
func (e *Engine) EndStage(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.EndStage{}}, opts...)
}

// CloseRequests closes stage requests for the whole meeting; actorID must
// be a host. Until OpenRequests, a request that would queue fails with
// aggregate.ErrRequestsClosed. Pending requests stay, unless denyPending,
// which denies them all in the same event.
func (e *Engine) CloseRequests(ctx context.Context, meetingID, actorID string, denyPending bool, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.CloseRequests{DenyPending: denyPending}}, opts...)
}

// OpenRequests opens stage requests again; actorID must be a host.
func (e *Engine) OpenRequests(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.OpenRequests{}}, opts...)
}

// PromoteCoHost makes userID a co-host: they list, grant, deny and kick,
// but do not act on hosts or other co-hosts, nor change what only hosts
// change (see docs/stage-controls.md). actorID must be a host.
func (e *Engine) PromoteCoHost(ctx context.Context, meetingID, actorID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.PromoteCoHost{UserID: userID}}, opts...)
}

// DemoteCoHost takes the co-host role from userID; actorID must be a host.
func (e *Engine) DemoteCoHost(ctx context.Context, meetingID, actorID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.DemoteCoHost{UserID: userID}}, opts...)
}

// DeclineInvitation declines actorID's invitation or approved request
// explicitly; they are OffStage.
func (e *Engine) DeclineInvitation(ctx context.Context, meetingID, actorID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.DeclineInvitation{}}, opts...)
}

// BringOnStage moves userID straight OnStage without their consent;
// actorID must be a host, and the meeting's settings must allow it
// (AllowBringOnStage, off by default). Never a NotAllowed or banned user,
// never past MaxOnStage.
func (e *Engine) BringOnStage(ctx context.Context, meetingID, actorID, userID string, opts ...ExecOption) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.BringOnStage{UserID: userID}}, opts...)
}
