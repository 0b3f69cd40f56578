package projections_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// decided is one command of a meeting decided with aggregate.Decide.
type decided struct {
	after  time.Duration
	actor  string
	action aggregate.Action
}

// decideAll decides each command at its time, as the engine would, and
// returns the sealed log; a refused command fails the test.
func decideAll(t *testing.T, meeting string, cmds []decided) []events.Envelope {
	t.Helper()
	s := aggregate.NewState(meeting)
	now := t0
	var out []events.Envelope
	for i, c := range cmds {
		now = now.Add(c.after)
		d, err := aggregate.Decide(s, aggregate.Command{ID: fmt.Sprintf("c%d", i+1), Actor: c.actor, Action: c.action}, now)
		if err != nil {
			t.Fatalf("command %d (%s by %q): %v", i+1, c.action.Name(), c.actor, err)
		}
		for j := range d.Events {
			e := &d.Events[j]
			e.ID = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", meeting, e.Version))
			if err := e.Seal(s.LastHash()); err != nil {
				t.Fatal(err)
			}
			aggregate.Evolve(s, e)
			out = append(out, *e)
		}
	}
	return out
}

func member(u string, p aggregate.Permissions) decided {
	return decided{0, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: p}}}
}

// stageControlled uses every stage control: a stage that starts
// backstage, a co-host, the requests switch (keeping and denying the
// pending requests), an invitation and an approval declined, a request
// that expires, a user brought on stage, the stage ended for everyone and
// started again.
func stageControlled(t *testing.T) []events.Envelope {
	s := time.Second
	return decideAll(t, "m", []decided{
		member("alice", host), member("bob", viewer), member("carol", viewer), member("dave", viewer), member("erin", viewer),
		{s, "alice", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true, AllowBringOnStage: true, RequestTTL: time.Minute}}}, // 6
		{s, "alice", aggregate.Join{}},                                  // 7
		{s, "alice", aggregate.GrantAccess{Users: []string{"dave"}}},    // 8
		{2 * s, "alice", aggregate.PromoteCoHost{UserID: "carol"}},      // 9
		{10 * s, "alice", aggregate.StartStage{}},                       // 28
		{5 * s, "bob", aggregate.RequestAccess{}},                       // 11
		{5 * s, "erin", aggregate.RequestAccess{}},                      // 12
		{5 * s, "dave", aggregate.DeclineInvitation{}},                  // 13
		{5 * s, "carol", aggregate.GrantAccess{Users: []string{"bob"}}}, // 14
		{s, "bob", aggregate.DeclineInvitation{}},                       // 15
		{s, "alice", aggregate.CloseRequests{}},                         // 16
		{time.Minute, "alice", aggregate.OpenRequests{}},                // 17 Lapsed (erin), 18
		{s, "bob", aggregate.RequestAccess{}},                           // 19
		{s, "alice", aggregate.BringOnStage{UserID: "bob"}},             // 20
		{s, "erin", aggregate.RequestAccess{}},                          // 21
		{s, "alice", aggregate.CloseRequests{DenyPending: true}},        // 22
		{s, "alice", aggregate.OpenRequests{}},                          // 23
		{s, "alice", aggregate.DemoteCoHost{UserID: "carol"}},           // 24
		{s, "carol", aggregate.RequestAccess{}},                         // 25
		{s, "alice", aggregate.GrantAccess{Users: []string{"erin"}}},    // 26
		{10 * s, "alice", aggregate.EndStage{}},                         // 27
		{10 * s, "alice", aggregate.StartStage{}},                       // 28
	})
}

func TestHistory_stageControls(t *testing.T) {
	evs := stageControlled(t)
	types := map[events.Type]bool{}
	for _, e := range evs {
		types[e.Type] = true
	}
	for _, typ := range []events.Type{events.TypeStageStarted, events.TypeStageEnded, events.TypeRequestsClosed, events.TypeRequestsOpened,
		events.TypeCoHostPromoted, events.TypeCoHostDemoted, events.TypeInvitationDeclined, events.TypeBroughtOnStage, events.TypeLapsed} {
		if !types[typ] {
			t.Fatalf("the scenario lacks %s", typ)
		}
	}
	h := projections.HistoryOf("m", evs)
	var lines []string
	for _, e := range h.Entries[5:] {
		lines = append(lines, e.Time.Format("15:04:05")+" "+e.Text)
	}
	want := []string{
		"14:00:01 alice (host) set the stage policies: requests last 1m00s, the stage starts backstage, hosts may bring users on stage",
		"14:00:02 alice (host) joined the stage",
		"14:00:03 alice (host) invited dave",
		"14:00:05 alice (host) made carol a co-host",
		"14:00:15 alice (host) started the stage: live after 14s backstage",
		"14:00:20 bob (viewer) requested to join the stage",
		"14:00:25 erin (viewer) requested to join the stage",
		"14:00:30 dave (viewer) declined the invitation",
		"14:00:35 carol (co-host) granted bob's request after 15s",
		"14:00:36 bob (viewer) declined their approved request",
		"14:00:37 alice (host) closed requests for the whole meeting; the pending requests stay (erin)",
		"14:01:37 erin's request expired after 1m00s (at 14:01:25)",
		"14:01:37 alice (host) opened requests (closed for 1m00s)",
		"14:01:38 bob (viewer) requested to join the stage",
		"14:01:39 alice (host) brought bob on stage without their consent (the settings allow it); was RequestedToJoinStage after 1s",
		"14:01:40 erin (viewer) requested to join the stage",
		"14:01:41 alice (host) closed requests for the whole meeting and denied every pending one: erin's request after 1s",
		"14:01:42 alice (host) opened requests (closed for 1s)",
		"14:01:43 alice (host) took carol's co-host role",
		"14:01:44 carol (viewer) requested to join the stage",
		"14:01:45 alice (host) invited erin",
		"14:01:55 alice (host) ended the stage for everyone: moved off the stage alice (after 1m53s), bob (after 16s); withdrew erin's invitation; closed carol's request after 11s",
		"14:02:05 alice (host) started the stage again: live, 10s after it ended",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// The stage's periods and the requests switch.
	type period struct {
		phase      aggregate.Phase
		start, end uint64
		by         string
	}
	var got []period
	for _, p := range h.Periods {
		got = append(got, period{p.Phase, p.StartVersion, p.EndVersion, p.By})
	}
	wantP := []period{{aggregate.PhaseLive, 1, 6, ""}, {aggregate.PhaseBackstage, 6, 10, "alice"}, {aggregate.PhaseLive, 10, 27, "alice"},
		{aggregate.PhaseEnded, 27, 28, "alice"}, {aggregate.PhaseLive, 28, 0, "alice"}}
	if !slices.Equal(got, wantP) {
		t.Errorf("periods %+v, want %+v", got, wantP)
	}
	if d := h.Periods[1].Duration(h.End); d != 14*time.Second {
		t.Errorf("backstage lasted %v", d)
	}
	if d := h.Periods[4].Duration(h.End); d != 0 {
		t.Errorf("the last period lasts until the end: %v", d)
	}
	if len(h.Closures) != 2 {
		t.Fatalf("closures %+v", h.Closures)
	}
	c0, c1 := h.Closures[0], h.Closures[1]
	if c0.ClosedBy != "alice" || c0.OpenedBy != "alice" || c0.Duration(h.End) != time.Minute || len(c0.Denied) != 0 {
		t.Errorf("first closure %+v", c0)
	}
	if !slices.Equal(c1.Denied, []string{"erin"}) || c1.Duration(h.End) != time.Second {
		t.Errorf("second closure %+v", c1)
	}

	// Stints and requests say how each ended.
	var stints []string
	for _, s := range h.Stints {
		stints = append(stints, fmt.Sprintf("%s %s by=%s brought=%s", s.UserID, s.End, s.By, s.BroughtBy))
	}
	wantS := []string{"alice stage-ended by= brought=", "bob stage-ended by=alice brought=alice"}
	if !slices.Equal(stints, wantS) {
		t.Errorf("stints %q, want %q", stints, wantS)
	}
	var reqs []string
	for _, r := range h.Requests {
		reqs = append(reqs, fmt.Sprintf("%s %s by=%s", r.UserID, r.Outcome, r.DecidedBy))
	}
	wantR := []string{"bob granted by=carol", "erin RequestExpired by=", "bob brought-on-stage by=alice",
		"erin denied by=alice", "carol stage-ended by=alice"}
	if !slices.Equal(reqs, wantR) {
		t.Errorf("requests %q, want %q", reqs, wantR)
	}

	// The user's part keeps the meeting's periods; the JSON names them.
	bob := h.ForUser("bob")
	if len(bob.Periods) != len(h.Periods) || len(bob.Closures) != 2 {
		t.Errorf("bob's history: %d periods, %d closures", len(bob.Periods), len(bob.Closures))
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"periods":[{"phase":"Live","start":"2026-11-29T14:00:00Z","startVersion":1,"end":"2026-11-29T14:00:01Z","endVersion":6}`,
		`{"phase":"Backstage"`, `"requestsClosed":[{"closed":`, `"denied":["erin"]`, `"broughtBy":"alice"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s", s)
		}
	}
}

// A meeting whose settings start it backstage at its first instant has
// no live period before it; one that never uses the controls has one live
// period.
func TestHistory_periodsOfPlainMeetings(t *testing.T) {
	evs := decideAll(t, "m", []decided{
		member("alice", host),
		{0, "alice", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true}}},
		{time.Second, "alice", aggregate.Configure{Settings: aggregate.Settings{}}},
	})
	h := projections.HistoryOf("m", evs)
	if len(h.Periods) != 2 || h.Periods[0].Phase != aggregate.PhaseBackstage || h.Periods[0].StartVersion != 2 ||
		h.Periods[1].Phase != aggregate.PhaseLive || h.Periods[1].By != "alice" {
		t.Errorf("periods %+v", h.Periods)
	}
	h = projections.HistoryOf("m", evs[:1])
	if len(h.Periods) != 1 || h.Periods[0].Phase != aggregate.PhaseLive || !h.Periods[0].End.IsZero() || h.Closures != nil {
		t.Errorf("periods %+v closures %+v", h.Periods, h.Closures)
	}
}
