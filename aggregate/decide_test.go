package aggregate_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

const (
	none      = aggregate.Status(0) // not a participant
	off       = aggregate.OffStage
	requested = aggregate.RequestedToJoinStage
	accepted  = aggregate.AcceptedToJoinStage
	on        = aggregate.OnStage
)

var (
	errDenied   = aggregate.ErrPermissionDenied
	errState    = aggregate.ErrInvalidState
	errNotIn    = aggregate.ErrNotParticipant
	errBadInput = aggregate.ErrInvalidCommand
)

// rejection is an ineligible target of a list command and the kind of its error.
type rejection struct {
	user string
	kind error
}

// ruleCase is one row of the rules tables of stage-rules.md, decided in the
// meeting built by scene.
type ruleCase struct {
	name string
	cmd  aggregate.Command

	// On success: the event's type, the users whose status changes (to
	// none when they leave the meeting), the ineligible targets of a list
	// command, and the queue afterwards (nil: unchanged).
	event    events.Type
	moves    map[string]aggregate.Status
	rejected []rejection
	queue    []string

	// On failure: the sentinel and the user the error is about.
	err     error
	errUser string
}

// stageRules has a row for every rule of the command table.
var stageRules = []ruleCase{
	// RequestAccess
	{name: "RequestAccess/CanRequest joins the end of the queue", cmd: by("viewer", aggregate.RequestAccess{}),
		event: events.TypeAccessRequested, moves: map[string]aggregate.Status{"viewer": requested},
		queue: users("early", "waiting", "viewer")},
	{name: "RequestAccess/Allowed is accepted at once", cmd: by("speaker", aggregate.RequestAccess{}),
		event: events.TypeAccessRequested, moves: map[string]aggregate.Status{"speaker": accepted}},
	{name: "RequestAccess/a host is accepted at once", cmd: by("host", aggregate.RequestAccess{}),
		event: events.TypeAccessRequested, moves: map[string]aggregate.Status{"host": accepted}},
	{name: "RequestAccess/a CanRequest host is accepted at once", cmd: by("cohost", aggregate.RequestAccess{}),
		event: events.TypeAccessRequested, moves: map[string]aggregate.Status{"cohost": accepted}},
	{name: "RequestAccess/non-participant", cmd: by("ghost", aggregate.RequestAccess{}), err: errNotIn, errUser: "ghost"},
	{name: "RequestAccess/NotAllowed", cmd: by("banned", aggregate.RequestAccess{}), err: errDenied, errUser: "banned"},
	{name: "RequestAccess/already requested", cmd: by("waiting", aggregate.RequestAccess{}), err: errState, errUser: "waiting"},
	{name: "RequestAccess/already accepted", cmd: by("invited", aggregate.RequestAccess{}), err: errState, errUser: "invited"},
	{name: "RequestAccess/already on stage", cmd: by("onstage", aggregate.RequestAccess{}), err: errState, errUser: "onstage"},

	// CancelRequestAccess
	{name: "CancelRequestAccess/requested goes OffStage and leaves the queue", cmd: by("early", aggregate.CancelRequestAccess{}),
		event: events.TypeAccessRequestCancelled, moves: map[string]aggregate.Status{"early": off}, queue: users("waiting")},
	{name: "CancelRequestAccess/non-participant", cmd: by("ghost", aggregate.CancelRequestAccess{}), err: errNotIn, errUser: "ghost"},
	{name: "CancelRequestAccess/OffStage", cmd: by("viewer", aggregate.CancelRequestAccess{}), err: errState, errUser: "viewer"},
	{name: "CancelRequestAccess/accepted", cmd: by("invited", aggregate.CancelRequestAccess{}), err: errState, errUser: "invited"},
	{name: "CancelRequestAccess/on stage", cmd: by("onstage", aggregate.CancelRequestAccess{}), err: errState, errUser: "onstage"},

	// GrantAccess
	{name: "GrantAccess/accepts a request", cmd: by("host", aggregate.GrantAccess{Users: users("waiting")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"waiting": accepted}, queue: users("early")},
	{name: "GrantAccess/invites an OffStage user", cmd: by("host", aggregate.GrantAccess{Users: users("viewer")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"viewer": accepted}},
	{name: "GrantAccess/invites an Allowed user", cmd: by("host", aggregate.GrantAccess{Users: users("speaker")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"speaker": accepted}},
	{name: "GrantAccess/a host may invite themselves", cmd: by("host", aggregate.GrantAccess{Users: users("host")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"host": accepted}},
	{name: "GrantAccess/any host may grant", cmd: by("cohost", aggregate.GrantAccess{Users: users("early")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"early": accepted}, queue: users("waiting")},
	{name: "GrantAccess/non-host actor fails the whole command", cmd: by("viewer", aggregate.GrantAccess{Users: users("waiting")}),
		err: errDenied, errUser: "viewer"},
	{name: "GrantAccess/non-participant actor", cmd: by("ghost", aggregate.GrantAccess{Users: users("waiting")}),
		err: errDenied, errUser: "ghost"},
	{name: "GrantAccess/target not a participant", cmd: by("host", aggregate.GrantAccess{Users: users("ghost")}),
		err: errNotIn, errUser: "ghost"},
	{name: "GrantAccess/target NotAllowed", cmd: by("host", aggregate.GrantAccess{Users: users("banned")}),
		err: errDenied, errUser: "banned"},
	{name: "GrantAccess/target already accepted", cmd: by("host", aggregate.GrantAccess{Users: users("invited")}),
		err: errState, errUser: "invited"},
	{name: "GrantAccess/target on stage", cmd: by("host", aggregate.GrantAccess{Users: users("onstage")}),
		err: errState, errUser: "onstage"},

	// DenyAccess
	{name: "DenyAccess/denies a request", cmd: by("host", aggregate.DenyAccess{Users: users("early"), Reason: "not now"}),
		event: events.TypeAccessDenied, moves: map[string]aggregate.Status{"early": off}, queue: users("waiting")},
	{name: "DenyAccess/non-host actor", cmd: by("onstage", aggregate.DenyAccess{Users: users("early")}),
		err: errDenied, errUser: "onstage"},
	{name: "DenyAccess/target not a participant", cmd: by("host", aggregate.DenyAccess{Users: users("ghost")}),
		err: errNotIn, errUser: "ghost"},
	{name: "DenyAccess/target OffStage", cmd: by("host", aggregate.DenyAccess{Users: users("viewer")}),
		err: errState, errUser: "viewer"},
	{name: "DenyAccess/target accepted", cmd: by("host", aggregate.DenyAccess{Users: users("invited")}),
		err: errState, errUser: "invited"},
	{name: "DenyAccess/target on stage", cmd: by("host", aggregate.DenyAccess{Users: users("onstage")}),
		err: errState, errUser: "onstage"},

	// Join
	{name: "Join/accepted", cmd: by("invited", aggregate.Join{}),
		event: events.TypeStageJoined, moves: map[string]aggregate.Status{"invited": on}},
	{name: "Join/Allowed from OffStage", cmd: by("speaker", aggregate.Join{}),
		event: events.TypeStageJoined, moves: map[string]aggregate.Status{"speaker": on}},
	{name: "Join/Allowed host from OffStage", cmd: by("host", aggregate.Join{}),
		event: events.TypeStageJoined, moves: map[string]aggregate.Status{"host": on}},
	{name: "Join/CanRequest not accepted", cmd: by("viewer", aggregate.Join{}), err: errDenied, errUser: "viewer"},
	{name: "Join/CanRequest still waiting", cmd: by("waiting", aggregate.Join{}), err: errDenied, errUser: "waiting"},
	{name: "Join/CanRequest host not accepted", cmd: by("cohost", aggregate.Join{}), err: errDenied, errUser: "cohost"},
	{name: "Join/NotAllowed", cmd: by("banned", aggregate.Join{}), err: errDenied, errUser: "banned"},
	{name: "Join/already on stage", cmd: by("onstage", aggregate.Join{}), err: errState, errUser: "onstage"},
	{name: "Join/non-participant", cmd: by("ghost", aggregate.Join{}), err: errNotIn, errUser: "ghost"},

	// Leave
	{name: "Leave/from the stage", cmd: by("onstage", aggregate.Leave{}),
		event: events.TypeStageLeft, moves: map[string]aggregate.Status{"onstage": off}},
	{name: "Leave/declines an invitation", cmd: by("invited", aggregate.Leave{}),
		event: events.TypeStageLeft, moves: map[string]aggregate.Status{"invited": off}},
	{name: "Leave/OffStage", cmd: by("viewer", aggregate.Leave{}), err: errState, errUser: "viewer"},
	{name: "Leave/requested", cmd: by("waiting", aggregate.Leave{}), err: errState, errUser: "waiting"},
	{name: "Leave/non-participant", cmd: by("ghost", aggregate.Leave{}), err: errNotIn, errUser: "ghost"},

	// Kick
	{name: "Kick/sends a user off stage", cmd: by("host", aggregate.Kick{Users: users("onstage"), Reason: "off topic"}),
		event: events.TypeKicked, moves: map[string]aggregate.Status{"onstage": off}},
	{name: "Kick/revokes an invitation", cmd: by("cohost", aggregate.Kick{Users: users("invited")}),
		event: events.TypeKicked, moves: map[string]aggregate.Status{"invited": off}},
	{name: "Kick/non-host actor", cmd: by("speaker", aggregate.Kick{Users: users("onstage")}), err: errDenied, errUser: "speaker"},
	{name: "Kick/non-participant actor", cmd: by("ghost", aggregate.Kick{Users: users("onstage")}), err: errDenied, errUser: "ghost"},
	{name: "Kick/target not a participant", cmd: by("host", aggregate.Kick{Users: users("ghost")}), err: errNotIn, errUser: "ghost"},
	{name: "Kick/target OffStage", cmd: by("host", aggregate.Kick{Users: users("viewer")}), err: errState, errUser: "viewer"},
	{name: "Kick/target requested", cmd: by("host", aggregate.Kick{Users: users("waiting")}), err: errState, errUser: "waiting"},

	// Lists of users
	{name: "list/eligible targets apply, the others are reported in order",
		cmd:   by("host", aggregate.GrantAccess{Users: users("invited", "waiting", "ghost", "banned", "viewer", "onstage")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"waiting": accepted, "viewer": accepted},
		rejected: []rejection{{"invited", errState}, {"ghost", errNotIn}, {"banned", errDenied}, {"onstage", errState}},
		queue:    users("early")},
	{name: "list/deny with some ineligible", cmd: by("host", aggregate.DenyAccess{Users: users("viewer", "early", "waiting")}),
		event: events.TypeAccessDenied, moves: map[string]aggregate.Status{"early": off, "waiting": off},
		rejected: []rejection{{"viewer", errState}}, queue: []string{}},
	{name: "list/kick with some ineligible", cmd: by("host", aggregate.Kick{Users: users("ghost", "onstage", "invited", "early")}),
		event: events.TypeKicked, moves: map[string]aggregate.Status{"onstage": off, "invited": off},
		rejected: []rejection{{"ghost", errNotIn}, {"early", errState}}},
	{name: "list/duplicates count once", cmd: by("host", aggregate.GrantAccess{Users: users("waiting", "ghost", "waiting", "ghost")}),
		event: events.TypeAccessGranted, moves: map[string]aggregate.Status{"waiting": accepted},
		rejected: []rejection{{"ghost", errNotIn}}, queue: users("early")},
	{name: "list/none eligible fails with the first target's reason (NotParticipant)",
		cmd: by("host", aggregate.GrantAccess{Users: users("ghost", "invited", "banned")}), err: errNotIn, errUser: "ghost"},
	{name: "list/none eligible fails with the first target's reason (InvalidState)",
		cmd: by("host", aggregate.GrantAccess{Users: users("invited", "ghost", "banned")}), err: errState, errUser: "invited"},
	{name: "list/none eligible fails with the first target's reason (PermissionDenied)",
		cmd: by("host", aggregate.GrantAccess{Users: users("banned", "banned", "ghost")}), err: errDenied, errUser: "banned"},
	{name: "list/empty grant", cmd: by("host", aggregate.GrantAccess{}), err: errBadInput},
	{name: "list/empty deny", cmd: by("host", aggregate.DenyAccess{Users: []string{}}), err: errBadInput},
	{name: "list/empty kick", cmd: by("host", aggregate.Kick{}), err: errBadInput},
	{name: "list/empty list is bad input even from a non-host", cmd: by("viewer", aggregate.Kick{}), err: errBadInput},

	// Meeting membership (backend, no actor)
	{name: "AddParticipant/new user is OffStage", cmd: add("newbie", viewerPerms),
		event: events.TypeParticipantJoined, moves: map[string]aggregate.Status{"newbie": off}},
	{name: "AddParticipant/already a participant", cmd: add("waiting", hostPerms), err: errState, errUser: "waiting"},
	{name: "AddParticipant/unknown stage access", cmd: add("newbie", aggregate.Permissions{StageAccess: "Sometimes"}), err: errBadInput},
	{name: "AddParticipant/empty stage access", cmd: add("newbie", aggregate.Permissions{}), err: errBadInput},
	// Membership is the backend's authority: no user's actor may carry it,
	// not even a host's, not even about themselves.
	{name: "AddParticipant/with an actor", cmd: aggregate.Command{Actor: "admin", Action: aggregate.AddParticipant{
		Participant: aggregate.Participant{UserID: "newbie", Permissions: bannedPerms}}}, err: errDenied, errUser: "admin"},
	{name: "UpdatePermissions/a viewer promoting themselves", cmd: by("viewer", aggregate.UpdatePermissions{UserID: "viewer", Permissions: hostPerms}),
		err: errDenied, errUser: "viewer"},
	{name: "UpdatePermissions/by a host", cmd: by("host", aggregate.UpdatePermissions{UserID: "viewer", Permissions: hostPerms}),
		err: errDenied, errUser: "host"},
	{name: "RemoveParticipant/by a user", cmd: by("viewer", aggregate.RemoveParticipant{UserID: "onstage"}), err: errDenied, errUser: "viewer"},
	{name: "Disconnect/by a user", cmd: by("viewer", aggregate.Disconnect{UserID: "onstage"}), err: errDenied, errUser: "viewer"},
	{name: "Reconnect/by a user", cmd: by("viewer", aggregate.Reconnect{UserID: "onstage"}), err: errDenied, errUser: "viewer"},
	{name: "RemoveParticipant/OffStage", cmd: by("", aggregate.RemoveParticipant{UserID: "viewer"}),
		event: events.TypeParticipantLeft, moves: map[string]aggregate.Status{"viewer": none}},
	{name: "RemoveParticipant/requested leaves the queue", cmd: by("", aggregate.RemoveParticipant{UserID: "early"}),
		event: events.TypeParticipantLeft, moves: map[string]aggregate.Status{"early": none}, queue: users("waiting")},
	{name: "RemoveParticipant/accepted", cmd: by("", aggregate.RemoveParticipant{UserID: "invited"}),
		event: events.TypeParticipantLeft, moves: map[string]aggregate.Status{"invited": none}},
	{name: "RemoveParticipant/on stage", cmd: by("", aggregate.RemoveParticipant{UserID: "onstage"}),
		event: events.TypeParticipantLeft, moves: map[string]aggregate.Status{"onstage": none}},
	{name: "RemoveParticipant/not a participant", cmd: by("", aggregate.RemoveParticipant{UserID: "ghost"}), err: errNotIn, errUser: "ghost"},
	{name: "UpdatePermissions/not a participant", cmd: by("", aggregate.UpdatePermissions{UserID: "ghost", Permissions: hostPerms}),
		err: errNotIn, errUser: "ghost"},
	{name: "UpdatePermissions/unknown stage access", cmd: by("", aggregate.UpdatePermissions{UserID: "viewer", Permissions: aggregate.Permissions{StageAccess: "x"}}),
		err: errBadInput},
	{name: "UpdatePermissions/status kept", cmd: by("", aggregate.UpdatePermissions{UserID: "onstage", Permissions: speakerPerms}),
		event: events.TypePermissionsChanged},
	{name: "UpdatePermissions/requested keeps the queue place", cmd: by("", aggregate.UpdatePermissions{UserID: "early", Permissions: cohostPerms}),
		event: events.TypePermissionsChanged, queue: users("early", "waiting")},
	{name: "UpdatePermissions/NotAllowed moves requested OffStage", cmd: by("", aggregate.UpdatePermissions{UserID: "early", Permissions: bannedPerms}),
		event: events.TypePermissionsChanged, moves: map[string]aggregate.Status{"early": off}, queue: users("waiting")},
	{name: "UpdatePermissions/NotAllowed moves accepted OffStage", cmd: by("", aggregate.UpdatePermissions{UserID: "invited", Permissions: bannedPerms}),
		event: events.TypePermissionsChanged, moves: map[string]aggregate.Status{"invited": off}},
	{name: "UpdatePermissions/NotAllowed moves on stage OffStage", cmd: by("", aggregate.UpdatePermissions{UserID: "onstage", Permissions: bannedPerms}),
		event: events.TypePermissionsChanged, moves: map[string]aggregate.Status{"onstage": off}},
	{name: "UpdatePermissions/NotAllowed when OffStage", cmd: by("", aggregate.UpdatePermissions{UserID: "viewer", Permissions: bannedPerms}),
		event: events.TypePermissionsChanged},
}

func TestDecide_rules(t *testing.T) {
	for _, tc := range stageRules {
		t.Run(tc.name, func(t *testing.T) {
			m := scene(t)
			before := m.s.Clone()
			cmd := tc.cmd
			cmd.ID = "the-command"
			cmd.CorrelationID = "trace-1"
			now := m.now.Add(time.Minute)

			d, err := aggregate.Decide(m.s, cmd, now)

			if !m.s.Equal(before) {
				t.Fatal("Decide changed the state")
			}
			if tc.err != nil {
				checkRejected(t, d, err, tc.err, cmd.Action.Name(), tc.errUser)
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Duplicate || len(d.Events) != 1 {
				t.Fatalf("got %d events (duplicate %v), want one event", len(d.Events), d.Duplicate)
			}
			e := d.Events[0]
			if e.Type != tc.event || e.Payload.EventType() != tc.event {
				t.Errorf("event type %s (payload %T), want %s", e.Type, e.Payload, tc.event)
			}
			if e.MeetingID != "webinar" || e.Version != before.Version()+1 || !e.Time.Equal(now) ||
				e.Actor != cmd.Actor || e.CommandID != "the-command" || e.CorrelationID != "trace-1" ||
				e.Schema != events.SchemaVersion {
				t.Errorf("envelope %+v does not describe the command", e)
			}
			checkRejections(t, d.Rejected, tc.rejected)

			// Apply the event and compare every status with the expected moves.
			seal(t, &e, m.s.LastHash())
			after := m.s.Clone()
			aggregate.Evolve(after, &e)
			want := statuses(before)
			for u, st := range tc.moves {
				want[u] = st
			}
			got := statuses(after)
			for u := range want {
				if got[u] != want[u] {
					t.Errorf("%s is %v, want %v", u, got[u], want[u])
				}
			}
			wantQueue := queue(before)
			if tc.queue != nil {
				wantQueue = tc.queue
			}
			if got := queue(after); !slices.Equal(got, wantQueue) {
				t.Errorf("queue %v, want %v", got, wantQueue)
			}
			if after.Version() != before.Version()+1 {
				t.Errorf("version %d after one event on %d", after.Version(), before.Version())
			}
		})
	}
}

// checkRejected checks a failed decision: no events, an *aggregate.Error of
// the wanted kind about the wanted user.
func checkRejected(t *testing.T, d aggregate.Decision, err, kind error, command, user string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
	if len(d.Events) != 0 || d.Duplicate {
		t.Errorf("a rejected command decided %+v", d)
	}
	// A list command with no eligible target lists them all, the first
	// being the error's.
	if len(d.Rejected) > 0 && (d.Rejected[0].UserID != user || !errors.Is(d.Rejected[0].Err, kind)) {
		t.Errorf("a rejected command's targets %+v: the first is not the error's (%s, %v)", d.Rejected, user, kind)
	}
	var ae *aggregate.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %T is not an *aggregate.Error", err)
	}
	if ae.Command != command || ae.UserID != user || ae.Err != kind || ae.Reason == "" {
		t.Errorf("error %+v: want command %s, user %q, kind %v and a reason", ae, command, user, kind)
	}
	for _, other := range []error{errDenied, errState, errNotIn, errBadInput} {
		if other != kind && errors.Is(err, other) {
			t.Errorf("error %v is also %v", err, other)
		}
	}
}

func checkRejections(t *testing.T, got []aggregate.Rejection, want []rejection) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rejected %v, want %v", got, want)
	}
	for i, r := range got {
		var ae *aggregate.Error
		if r.UserID != want[i].user || !errors.Is(r.Err, want[i].kind) || !errors.As(r.Err, &ae) || ae.UserID != r.UserID {
			t.Errorf("rejected[%d] = %s: %v, want %s: %v", i, r.UserID, r.Err, want[i].user, want[i].kind)
		}
	}
}

// TestDecide_listEvent checks what a list command's event records: the
// eligible users in the order given, each once, the reason, and the skipped
// targets with their reason codes.
func TestDecide_listEvent(t *testing.T) {
	m := scene(t)
	d, err := m.apply(by("host", aggregate.Kick{
		Users:  users("ghost", "onstage", "viewer", "invited", "onstage"),
		Reason: "two lines\nof reason",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := d.Events[0].Payload.(*events.Kicked)
	if !ok {
		t.Fatalf("payload %T", d.Events[0].Payload)
	}
	if !slices.Equal(p.Users, users("onstage", "invited")) || p.Reason != "two lines\nof reason" {
		t.Errorf("kicked %v for %q", p.Users, p.Reason)
	}
	wantSkips := []events.Skip{{UserID: "ghost", Reason: "NotParticipant"}, {UserID: "viewer", Reason: "InvalidState"}}
	if !slices.Equal(p.Skipped, wantSkips) {
		t.Errorf("skipped %v, want %v", p.Skipped, wantSkips)
	}
	// The recorded skips give back the rejections, so a retry can report them.
	checkRejections(t, aggregate.RejectionsOf(&d.Events[0]), []rejection{{"ghost", errNotIn}, {"viewer", errState}})
}

// badIDs are ids that must never reach the store.
var badIDs = map[string]string{
	"empty":         "",
	"129 bytes":     strings.Repeat("x", events.MaxIDLen+1),
	"NUL":           "a\x00b",
	"escape":        "a\x1bb",
	"DEL":           "a\x7fb",
	"C1 control":    "a\u0085b",
	"tab":           "a\tb",
	"newline":       "ab\n",
	"invalid UTF-8": "a\xffb",
}

// TestDecide_badIDs puts every bad id in every place an id goes.
func TestDecide_badIDs(t *testing.T) {
	places := map[string]func(id string) aggregate.Command{
		"RequestAccess actor":       func(id string) aggregate.Command { return by(id, aggregate.RequestAccess{}) },
		"CancelRequestAccess actor": func(id string) aggregate.Command { return by(id, aggregate.CancelRequestAccess{}) },
		"Join actor":                func(id string) aggregate.Command { return by(id, aggregate.Join{}) },
		"Leave actor":               func(id string) aggregate.Command { return by(id, aggregate.Leave{}) },
		"GrantAccess actor":         func(id string) aggregate.Command { return by(id, aggregate.GrantAccess{Users: users("waiting")}) },
		"GrantAccess target": func(id string) aggregate.Command {
			return by("host", aggregate.GrantAccess{Users: users("waiting", id)})
		},
		"DenyAccess actor": func(id string) aggregate.Command { return by(id, aggregate.DenyAccess{Users: users("waiting")}) },
		"DenyAccess target": func(id string) aggregate.Command {
			return by("host", aggregate.DenyAccess{Users: users(id, "waiting")})
		},
		"Kick actor":          func(id string) aggregate.Command { return by(id, aggregate.Kick{Users: users("onstage")}) },
		"Kick target":         func(id string) aggregate.Command { return by("host", aggregate.Kick{Users: users("onstage", id)}) },
		"AddParticipant user": func(id string) aggregate.Command { return add(id, viewerPerms) },
		"AddParticipant actor": func(id string) aggregate.Command {
			c := add("newbie", viewerPerms)
			c.Actor = id
			return c
		},
		"RemoveParticipant user":  func(id string) aggregate.Command { return by("", aggregate.RemoveParticipant{UserID: id}) },
		"RemoveParticipant actor": func(id string) aggregate.Command { return by(id, aggregate.RemoveParticipant{UserID: "viewer"}) },
		"UpdatePermissions user": func(id string) aggregate.Command {
			return by("", aggregate.UpdatePermissions{UserID: id, Permissions: hostPerms})
		},
		"UpdatePermissions actor": func(id string) aggregate.Command {
			return by(id, aggregate.UpdatePermissions{UserID: "viewer", Permissions: hostPerms})
		},
	}
	m := scene(t)
	for place, build := range places {
		for what, id := range badIDs {
			if id == "" && strings.HasSuffix(place, "actor") &&
				(strings.HasPrefix(place, "AddParticipant") || strings.HasPrefix(place, "RemoveParticipant") || strings.HasPrefix(place, "UpdatePermissions")) {
				continue // the backend's membership commands need no actor
			}
			t.Run(place+"/"+what, func(t *testing.T) {
				cmd := build(id)
				cmd.ID = "bad-" + what
				d, err := aggregate.Decide(m.s, cmd, m.now)
				checkRejected(t, d, err, errBadInput, cmd.Action.Name(), "")
				if !errors.Is(err, events.ErrInvalidID) {
					t.Errorf("error %v does not wrap events.ErrInvalidID", err)
				}
			})
		}
	}
}

// TestDecide_longestID checks that an id of exactly MaxIDLen bytes is fine.
func TestDecide_longestID(t *testing.T) {
	long := strings.Repeat("é", events.MaxIDLen/2) // 2 bytes each
	m := newMeeting(t).do(add(long, speakerPerms))
	if _, err := m.apply(by(long, aggregate.Join{})); err != nil {
		t.Fatal(err)
	}
	if m.s.Status(long) != on {
		t.Errorf("status %v", m.s.Status(long))
	}
}

// TestDecide_badCommand covers the rest of the bad input: the command's own
// fields, the reason, the time.
func TestDecide_badCommand(t *testing.T) {
	m := scene(t)
	long := strings.Repeat("r", aggregate.MaxReasonLen+1)
	tests := []struct {
		name string
		cmd  aggregate.Command
		now  time.Time
	}{
		{"no action", aggregate.Command{ID: "c", Actor: "host"}, m.now},
		{"no command id", aggregate.Command{Actor: "speaker", Action: aggregate.Join{}}, m.now},
		{"command id too long", aggregate.Command{ID: strings.Repeat("c", aggregate.MaxCommandIDLen+1), Actor: "speaker", Action: aggregate.Join{}}, m.now},
		{"command id with a control character", aggregate.Command{ID: "c\n", Actor: "speaker", Action: aggregate.Join{}}, m.now},
		{"correlation id with a control character", aggregate.Command{ID: "c", CorrelationID: "x\x00", Actor: "speaker", Action: aggregate.Join{}}, m.now},
		{"no time", aggregate.Command{ID: "c", Actor: "speaker", Action: aggregate.Join{}}, time.Time{}},
		{"time the hash cannot encode", aggregate.Command{ID: "c", Actor: "speaker", Action: aggregate.Join{}}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"reason too long", aggregate.Command{ID: "c", Actor: "host", Action: aggregate.Kick{Users: users("onstage"), Reason: long}}, m.now},
		{"reason with a control character", aggregate.Command{ID: "c", Actor: "host", Action: aggregate.DenyAccess{Users: users("early"), Reason: "a\x00"}}, m.now},
		{"reason not UTF-8", aggregate.Command{ID: "c", Actor: "host", Action: aggregate.DenyAccess{Users: users("early"), Reason: "\xff"}}, m.now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := aggregate.Decide(m.s, tc.cmd, tc.now)
			if !errors.Is(err, errBadInput) {
				t.Fatalf("error %v, want ErrInvalidCommand", err)
			}
			if len(d.Events) != 0 {
				t.Errorf("decided %d events", len(d.Events))
			}
			var ae *aggregate.Error
			if !errors.As(err, &ae) {
				t.Errorf("error %T is not an *aggregate.Error", err)
			}
		})
	}
}

func TestDecide_idempotency(t *testing.T) {
	t.Run("a retried key of the same actor is a duplicate; SameCommand tells a different command", func(t *testing.T) {
		m := scene(t)
		d, err := m.apply(aggregate.Command{ID: "k1", Actor: "host", Action: aggregate.GrantAccess{Users: users("early", "ghost")}})
		if err != nil {
			t.Fatal(err)
		}
		v, stored := d.Events[0].Version, d.Events
		m.do(by("speaker", aggregate.Join{}))
		for _, retry := range []struct {
			cmd  aggregate.Command
			same bool
		}{
			{aggregate.Command{ID: "k1", Actor: "host", Action: aggregate.GrantAccess{Users: users("ghost", "early", "early")}}, true},
			{aggregate.Command{ID: "k1", Actor: "host", Action: aggregate.GrantAccess{Users: users("early")}}, false},
			{aggregate.Command{ID: "k1", Actor: "host", Action: aggregate.Kick{Users: users("early", "ghost")}}, false},
		} {
			before := m.s.Clone()
			d, err := aggregate.Decide(m.s, retry.cmd, m.now)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Duplicate || d.First != v || d.Last != v || len(d.Events) != 0 || len(d.Rejected) != 0 {
				t.Errorf("retry decided %+v, want a duplicate of version %d", d, v)
			}
			if !m.s.Equal(before) {
				t.Error("Decide changed the state")
			}
			if got := aggregate.SameCommand(retry.cmd, stored); got != retry.same {
				t.Errorf("SameCommand(%+v, %s) = %v", retry.cmd, stored[0].Type, got)
			}
		}
	})
	t.Run("keys belong to their actor", func(t *testing.T) {
		m := scene(t)
		m.do(aggregate.Command{ID: "k1", Actor: "viewer", Action: aggregate.RequestAccess{}})
		// The host's deny under the viewer's key is the host's own command.
		d, err := aggregate.Decide(m.s, aggregate.Command{ID: "k1", Actor: "host", Action: aggregate.DenyAccess{Users: users("viewer")}}, m.now)
		if err != nil || d.Duplicate || len(d.Events) != 1 || d.Events[0].Type != events.TypeAccessDenied {
			t.Fatalf("host's deny under the viewer's key: %+v, %v", d, err)
		}
		// The backend's commands have a scope of their own.
		d, err = aggregate.Decide(m.s, aggregate.Command{ID: "k1", Action: aggregate.RemoveParticipant{UserID: "viewer"}}, m.now)
		if err != nil || d.Duplicate {
			t.Fatalf("backend's command under the viewer's key: %+v, %v", d, err)
		}
	})
	t.Run("bad input is rejected even with a known id", func(t *testing.T) {
		m := scene(t)
		m.do(aggregate.Command{ID: "k1", Actor: "speaker", Action: aggregate.Join{}})
		_, err := aggregate.Decide(m.s, aggregate.Command{ID: "k1", Actor: "a\tb", Action: aggregate.Join{}}, m.now)
		if !errors.Is(err, errBadInput) {
			t.Errorf("error %v, want ErrInvalidCommand", err)
		}
	})
	t.Run("a rejected command's id is not remembered", func(t *testing.T) {
		m := scene(t)
		if _, err := m.apply(aggregate.Command{ID: "k1", Actor: "viewer", Action: aggregate.Join{}}); !errors.Is(err, errDenied) {
			t.Fatalf("error %v", err)
		}
		m.do(by("host", aggregate.GrantAccess{Users: users("viewer")}))
		d, err := m.apply(aggregate.Command{ID: "k1", Actor: "viewer", Action: aggregate.Join{}})
		if err != nil || d.Duplicate || len(d.Events) != 1 {
			t.Fatalf("retry after the rule allows it: %+v, %v", d, err)
		}
	})
	t.Run("ids are per meeting", func(t *testing.T) {
		m := scene(t)
		m.do(aggregate.Command{ID: "k1", Actor: "speaker", Action: aggregate.Join{}})
		other := aggregate.NewState("other")
		d, err := aggregate.Decide(other, aggregate.Command{ID: "k1", Action: aggregate.AddParticipant{
			Participant: aggregate.Participant{UserID: "speaker", Permissions: speakerPerms}}}, m.now)
		if err != nil || d.Duplicate {
			t.Errorf("the same id in another meeting: %+v, %v", d, err)
		}
	})
	t.Run("the window keeps the last CommandWindow commands", func(t *testing.T) {
		m := newMeeting(t)
		m.do(aggregate.Command{ID: "first", Action: aggregate.AddParticipant{
			Participant: aggregate.Participant{UserID: "speaker", Permissions: speakerPerms}}})
		// CommandWindow-1 more commands: "first" is the oldest one remembered.
		for i := 1; i < aggregate.CommandWindow; i++ {
			var a aggregate.Action = aggregate.Join{}
			if i%2 == 0 {
				a = aggregate.Leave{}
			}
			m.do(by("speaker", a))
		}
		retry := aggregate.Command{ID: "first", Action: aggregate.AddParticipant{
			Participant: aggregate.Participant{UserID: "speaker", Permissions: speakerPerms}}}
		if d, err := aggregate.Decide(m.s, retry, m.now); err != nil || !d.Duplicate || d.First != 1 {
			t.Fatalf("retry within the window: %+v, %v", d, err)
		}
		// One more command evicts it: the retry is decided afresh, and
		// fails because the user is already a participant.
		m.do(by("speaker", aggregate.Leave{}))
		if _, _, ok := m.s.Applied(events.KeyOf("", "first")); ok {
			t.Error("the oldest id is still remembered")
		}
		if _, _, ok := m.s.Applied(events.KeyOf("speaker", fmt.Sprintf("cmd-%d", 2))); !ok {
			t.Error("the second command was forgotten too early")
		}
		d, err := aggregate.Decide(m.s, retry, m.now)
		if d.Duplicate || !errors.Is(err, errState) {
			t.Errorf("retry after eviction: %+v, %v; want ErrInvalidState", d, err)
		}
	})
}

func TestCanListRequests(t *testing.T) {
	m := scene(t)
	tests := []struct {
		actor string
		want  error
	}{
		{"host", nil},
		{"cohost", nil},
		{"viewer", errDenied},
		{"onstage", errDenied},
		{"ghost", errDenied},
		{"", errBadInput},
		{"a\x00b", errBadInput},
		{"a.b", errDenied}, // any id without control characters is an id
	}
	for _, tc := range tests {
		err := aggregate.CanListRequests(m.s, tc.actor)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("CanListRequests(%q) = %v, want %v", tc.actor, err, tc.want)
		}
	}
}
