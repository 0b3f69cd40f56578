package aggregate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// The permissions of the cast.
var (
	hostPerms    = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	cohostPerms  = aggregate.Permissions{StageAccess: aggregate.CanRequest, AcceptStageRequests: true}
	viewerPerms  = aggregate.Permissions{StageAccess: aggregate.CanRequest}
	speakerPerms = aggregate.Permissions{StageAccess: aggregate.Allowed}
	bannedPerms  = aggregate.Permissions{StageAccess: aggregate.NotAllowed}
)

// meetingStart is when every test meeting starts.
var meetingStart = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// meeting is a test meeting: a state and a clock that ticks one second per command.
type meeting struct {
	t   testing.TB
	s   *aggregate.State
	now time.Time
	n   int
}

func newMeeting(t testing.TB) *meeting {
	return &meeting{t: t, s: aggregate.NewState("webinar"), now: meetingStart}
}

// do decides and applies cmds, failing the test if any is rejected.
func (m *meeting) do(cmds ...aggregate.Command) *meeting {
	m.t.Helper()
	for _, c := range cmds {
		if _, err := m.apply(c); err != nil {
			m.t.Fatalf("setup %s by %q: %v", c.Action.Name(), c.Actor, err)
		}
	}
	return m
}

// apply decides cmd (giving it an id if it has none) and applies its events
// to the state, as the engine would.
func (m *meeting) apply(c aggregate.Command) (aggregate.Decision, error) {
	m.t.Helper()
	m.n++
	m.now = m.now.Add(time.Second)
	if c.ID == "" {
		c.ID = fmt.Sprintf("cmd-%d", m.n)
	}
	d, err := aggregate.Decide(m.s, c, m.now)
	if err != nil {
		return d, err
	}
	for i := range d.Events {
		seal(m.t, &d.Events[i], m.s.LastHash())
		aggregate.Evolve(m.s, &d.Events[i])
	}
	return d, nil
}

// seal gives e an id and seals it, as the engine does before appending.
func seal(t testing.TB, e *events.Envelope, prev events.Hash) {
	t.Helper()
	e.ID = uuid.Must(uuid.NewV7())
	if err := e.Seal(prev); err != nil {
		t.Fatal(err)
	}
}

func add(user string, p aggregate.Permissions) aggregate.Command {
	return aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: user, Permissions: p}}}
}

func by(actor string, a aggregate.Action) aggregate.Command {
	return aggregate.Command{Actor: actor, Action: a}
}

func users(u ...string) []string { return u }

// scene returns a meeting with one participant in each interesting place:
//
//	host     host, Allowed,    OffStage
//	cohost   host, CanRequest, OffStage
//	viewer   CanRequest,       OffStage
//	speaker  Allowed,          OffStage
//	banned   NotAllowed,       OffStage
//	early    CanRequest,       RequestedToJoinStage (first in the queue)
//	waiting  CanRequest,       RequestedToJoinStage (second in the queue)
//	invited  CanRequest,       AcceptedToJoinStage
//	onstage  CanRequest,       OnStage
//
// and "ghost" and "newbie", who are not participants.
func scene(t testing.TB) *meeting {
	return newMeeting(t).do(
		add("host", hostPerms),
		add("cohost", cohostPerms),
		add("viewer", viewerPerms),
		add("speaker", speakerPerms),
		add("banned", bannedPerms),
		add("early", viewerPerms),
		add("waiting", viewerPerms),
		add("invited", viewerPerms),
		add("onstage", viewerPerms),
		by("early", aggregate.RequestAccess{}),
		by("waiting", aggregate.RequestAccess{}),
		by("invited", aggregate.RequestAccess{}),
		by("host", aggregate.GrantAccess{Users: users("invited")}),
		by("onstage", aggregate.RequestAccess{}),
		by("host", aggregate.GrantAccess{Users: users("onstage")}),
		by("onstage", aggregate.Join{}),
	)
}

// cast is everyone scene knows about, ghost included.
var cast = []string{"host", "cohost", "viewer", "speaker", "banned", "early", "waiting", "invited", "onstage", "ghost", "newbie"}

func statuses(s *aggregate.State) map[string]aggregate.Status {
	out := map[string]aggregate.Status{}
	for _, u := range cast {
		out[u] = s.Status(u)
	}
	return out
}

func queue(s *aggregate.State) []string {
	var out []string
	for _, m := range s.Queue() {
		out = append(out, m.UserID)
	}
	return out
}
