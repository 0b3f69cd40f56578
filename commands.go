package stage

import (
	"context"

	"github.com/productdb/stage/aggregate"
)

// AddParticipant adds a user to the meeting with their stage permissions; they
// start OffStage. The backend calls it when the user enters the meeting.
func (e *Engine) AddParticipant(ctx context.Context, meetingID string, p aggregate.Participant) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.AddParticipant{Participant: p}})
}

// RemoveParticipant removes a user from the meeting: off the stage, out of the
// request queue, no status.
func (e *Engine) RemoveParticipant(ctx context.Context, meetingID, userID string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.RemoveParticipant{UserID: userID}})
}

// UpdatePermissions changes a participant's permissions from now on. A user
// changed to NotAllowed who is requested, accepted or on stage is moved
// OffStage in the same event.
func (e *Engine) UpdatePermissions(ctx context.Context, meetingID, userID string, p aggregate.Permissions) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Action: aggregate.UpdatePermissions{UserID: userID, Permissions: p}})
}

// RequestAccess asks, for actorID, to come on stage. Allowed users and hosts
// are accepted at once; CanRequest users join the request queue.
func (e *Engine) RequestAccess(ctx context.Context, meetingID, actorID string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.RequestAccess{}})
}

// CancelRequestAccess withdraws actorID's pending request.
func (e *Engine) CancelRequestAccess(ctx context.Context, meetingID, actorID string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.CancelRequestAccess{}})
}

// GrantAccess accepts the requests of, or invites, the users; actorID must be
// a host. Ineligible targets are reported in Result.Rejected.
func (e *Engine) GrantAccess(ctx context.Context, meetingID, actorID string, userIDs ...string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.GrantAccess{Users: userIDs}})
}

// DenyAccess denies the users' pending requests; actorID must be a host.
// Ineligible targets are reported in Result.Rejected. To record a reason, use
// Execute with aggregate.DenyAccess.
func (e *Engine) DenyAccess(ctx context.Context, meetingID, actorID string, userIDs ...string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.DenyAccess{Users: userIDs}})
}

// Join puts actorID on stage: they must be accepted, or have Allowed access.
func (e *Engine) Join(ctx context.Context, meetingID, actorID string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Join{}})
}

// Leave takes actorID off stage, or declines their invitation.
func (e *Engine) Leave(ctx context.Context, meetingID, actorID string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Leave{}})
}

// Kick sends the users off stage or revokes their invitations; actorID must
// be a host. Ineligible targets are reported in Result.Rejected. To record a
// reason, use Execute with aggregate.Kick.
func (e *Engine) Kick(ctx context.Context, meetingID, actorID string, userIDs ...string) (Result, error) {
	return e.Execute(ctx, meetingID, aggregate.Command{Actor: actorID, Action: aggregate.Kick{Users: userIDs}})
}
