package aggregate

import (
	"time"

	"github.com/productdb/stage/events"
)

// stamp formats a time for an error message.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// host checks that the actor is a participant with the host privilege.
func (d *decider) host() error {
	actor, ok := d.s.members[d.cmd.Actor]
	if !ok {
		return reject(d.name, d.cmd.Actor, ErrPermissionDenied, "the actor is not a participant")
	}
	if !actor.IsHost() {
		return reject(d.name, d.cmd.Actor, ErrPermissionDenied, "the actor is not a host")
	}
	return nil
}

// banned returns an ErrPermissionDenied error saying until when, if user is
// banned from the stage at the decision's time.
func (d *decider) banned(user string) error {
	b, ok := d.s.bans[user]
	if !ok || !b.activeAt(d.now) {
		return nil
	}
	var e *Error
	if b.Until.IsZero() {
		e = reject(d.name, user, ErrPermissionDenied, "banned from the stage since %s until lifted", stamp(b.Since))
	} else {
		e = reject(d.name, user, ErrPermissionDenied, "banned from the stage until %s", stamp(b.Until))
	}
	e.Until = b.Until
	return e
}

func (d *decider) configure(a Configure) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	if n := a.Settings.MaxOnStage; n > 0 && d.s.onStage > n {
		return nil, reject(d.name, "", ErrInvalidState, "MaxOnStage %d is below the %d participants on stage", n, d.s.onStage)
	}
	return &events.SettingsChanged{Settings: a.Settings, Previous: d.s.settings}, nil
}

func (d *decider) ban(a BanFromStage) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	until := a.Until
	if !until.IsZero() && !until.After(d.now) {
		return nil, reject(d.name, a.UserID, ErrInvalidCommand, "ban until %s is not after now (%s)", stamp(until), stamp(d.now))
	}
	if !until.IsZero() {
		until = until.UTC().Round(0)
	}
	return &events.StageBanned{UserID: a.UserID, Until: until, Status: d.s.Status(a.UserID).String()}, nil
}

func (d *decider) liftBan(a LiftBan) (events.Payload, error) {
	if err := d.host(); err != nil {
		return nil, err
	}
	if b, ok := d.s.bans[a.UserID]; !ok || !b.activeAt(d.now) {
		return nil, reject(d.name, a.UserID, ErrInvalidState, "not banned from the stage")
	}
	return &events.BanLifted{UserID: a.UserID}, nil
}

func (d *decider) disconnect(a Disconnect) (events.Payload, error) {
	m, ok := d.s.members[a.UserID]
	if !ok {
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	}
	if !m.DisconnectedAt.IsZero() {
		return nil, reject(d.name, a.UserID, ErrInvalidState, "already disconnected since %s", stamp(m.DisconnectedAt))
	}
	g := d.s.settings.ReconnectGrace
	if g <= 0 {
		return &events.ParticipantLeft{UserID: a.UserID, Status: m.Status.String(), Reason: "Disconnected"}, nil
	}
	return &events.Disconnected{UserID: a.UserID, Grace: events.Duration(g)}, nil
}

func (d *decider) reconnect(a Reconnect) (events.Payload, error) {
	m, ok := d.s.members[a.UserID]
	if !ok {
		return nil, reject(d.name, a.UserID, ErrNotParticipant, "not in the meeting")
	}
	if m.DisconnectedAt.IsZero() {
		return nil, reject(d.name, a.UserID, ErrInvalidState, "not disconnected")
	}
	return &events.Reconnected{UserID: a.UserID}, nil
}
