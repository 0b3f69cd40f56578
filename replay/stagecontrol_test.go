package replay_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

// controlled is a 65-second meeting that uses every stage control: it
// starts backstage (a speaker and a host prepare, a host invites), a
// co-host grants, an invitation and an approval are declined, requests
// are closed (kept), a request expires (a Tick records it), a host brings a requester on
// stage, requests are closed denying the pending one, the co-host is
// demoted, the stage is ended for everyone and started again.
func controlled(t testing.TB) []events.Envelope {
	s := func(n int) time.Duration { return time.Duration(n) * time.Second }
	return scripted(t, "controlled", []step{
		join("alice", host), join("hassan", host), join("bob", viewer), join("carol", viewer),
		join("dave", viewer), join("erin", viewer), join("gina", speaker), // 1-7
		{s(1), "alice", aggregate.Configure{Settings: aggregate.Settings{StartBackstage: true, AllowBringOnStage: true, RequestTTL: 30 * time.Second}}}, // 8
		{s(2), "alice", aggregate.Join{}},                                // 9
		{s(3), "gina", aggregate.Join{}},                                 // 10
		{s(4), "alice", aggregate.GrantAccess{Users: []string{"dave"}}},  // 11: an invitation, backstage
		{s(5), "alice", aggregate.PromoteCoHost{UserID: "carol"}},        // 12
		{s(8), "alice", aggregate.StartStage{}},                          // 13
		{s(9), "bob", aggregate.RequestAccess{}},                         // 14
		{s(10), "erin", aggregate.RequestAccess{}},                       // 15
		{s(11), "dave", aggregate.DeclineInvitation{}},                   // 16
		{s(12), "carol", aggregate.GrantAccess{Users: []string{"bob"}}},  // 17: by the co-host
		{s(13), "bob", aggregate.DeclineInvitation{}},                    // 18: an approval declined
		{s(14), "hassan", aggregate.CloseRequests{}},                     // 19: erin's request stays
		{s(40), "", aggregate.Tick{}},                                    // 20: Lapsed (erin's request)
		{s(50), "alice", aggregate.OpenRequests{}},                       // 21
		{s(51), "bob", aggregate.RequestAccess{}},                        // 22
		{s(52), "alice", aggregate.BringOnStage{UserID: "bob"}},          // 23
		{s(53), "erin", aggregate.RequestAccess{}},                       // 24
		{s(54), "hassan", aggregate.CloseRequests{DenyPending: true}},    // 25: denies erin
		{s(55), "hassan", aggregate.OpenRequests{}},                      // 26
		{s(56), "alice", aggregate.DemoteCoHost{UserID: "carol"}},        // 27
		{s(57), "carol", aggregate.RequestAccess{}},                      // 28
		{s(58), "alice", aggregate.GrantAccess{Users: []string{"erin"}}}, // 29
		{s(60), "alice", aggregate.EndStage{}},                           // 30: alice, bob, gina off; erin's invitation; carol's request
		{s(65), "alice", aggregate.StartStage{}},                         // 31
	})
}

// version returns the index in evs of the event of type typ (the n-th, from 0).
func indexOf(t *testing.T, evs []events.Envelope, typ events.Type, n int) int {
	t.Helper()
	for i, e := range evs {
		if e.Type == typ {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("no %s", typ)
	return -1
}

// TestTimeline_everyEventType: between them, the 15-second meeting and the
// controlled one hold every event type, and each is drawn with a mark of
// its own kind (never "other") on the row of each user it is about, and on
// its actor's row. A new event type fails here until a script uses it and
// the timeline draws it.
func TestTimeline_everyEventType(t *testing.T) {
	seen := map[events.Type]bool{}
	for _, evs := range [][]events.Envelope{fifteenSeconds(t), controlled(t)} {
		h := projections.HistoryOf(evs[0].MeetingID, evs)
		_, root := draw(t, h, replay.TimelineOptions{})
		byVersion := map[uint64][]string{}
		root.walk(func(e svgElem) {
			for _, v := range []string{e.Version, e.ByVersion} {
				if v != "" {
					n, _ := strconv.ParseUint(v, 10, 64)
					byVersion[n] = append(byVersion[n], e.Kind)
				}
			}
		})
		for _, e := range evs {
			seen[e.Type] = true
			kinds := byVersion[e.Version]
			if len(kinds) == 0 && e.Type != events.TypeStageJoined {
				t.Errorf("%s v%d %s: no mark", e.MeetingID, e.Version, e.Type)
			}
			if slices.Contains(kinds, replay.MarkOther) {
				t.Errorf("%s v%d %s is drawn as %q: give it a mark of its own", e.MeetingID, e.Version, e.Type, replay.MarkOther)
			}
		}
	}
	for _, typ := range events.Types() {
		if !seen[typ] {
			t.Errorf("no scripted meeting has a %s event: add one to controlled or fifteenSeconds", typ)
		}
	}
}

// TestTimeline_stageControls draws the controlled meeting: every event
// once per user it is about, the meeting-wide ones on the host's row, the
// stage's periods as bands, the legend explaining each.
func TestTimeline_stageControls(t *testing.T) {
	evs := controlled(t)
	h := projections.HistoryOf("controlled", evs)
	out, root := draw(t, h, replay.TimelineOptions{})
	golden(t, "timeline-controlled.svg", out)
	type key struct {
		user    string
		version uint64
	}
	marks, by := map[key][]string{}, map[key][]string{}
	var legend []string
	bands := map[string][]string{}
	root.walk(func(e svgElem) {
		if e.Version != "" {
			v, _ := strconv.ParseUint(e.Version, 10, 64)
			marks[key{e.User, v}] = append(marks[key{e.User, v}], e.Kind)
		}
		if e.ByVersion != "" {
			v, _ := strconv.ParseUint(e.ByVersion, 10, 64)
			by[key{e.User, v}] = append(by[key{e.User, v}], e.Kind)
		}
		switch e.Kind {
		case replay.BandBackstage, replay.BandEnded, replay.BandRequestsClosed:
			bands[e.Kind] = append(bands[e.Kind], e.Title)
		}
		if e.Class == "legend" {
			e.walk(func(c svgElem) {
				if c.XMLName.Local == "text" {
					legend = append(legend, c.Text)
				}
			})
		}
	})
	for _, e := range evs {
		for _, u := range e.Users() {
			if got := marks[key{u, e.Version}]; len(got) != 1 {
				t.Errorf("v%d %s about %s: marks %v, want 1", e.Version, e.Type, u, got)
			}
		}
	}
	want := map[key]string{
		{"carol", 12}: replay.MarkCoHost, {"dave", 16}: replay.MarkDeclined, {"bob", 17}: replay.MarkGranted,
		{"bob", 18}: replay.MarkDeclined, {"erin", 20}: replay.MarkLapsed, {"bob", 23}: replay.MarkBrought,
		{"erin", 25}: replay.MarkDenied, {"carol", 27}: replay.MarkCoHostEnded, {"erin", 29}: replay.MarkInvited,
		{"alice", 30}: replay.MarkStageEnded, {"bob", 30}: replay.MarkStageEnded, {"gina", 30}: replay.MarkStageEnded,
		{"erin", 30}: replay.MarkStageEnded, {"carol", 30}: replay.MarkStageEnded, {"dave", 11}: replay.MarkInvited,
	}
	for k, kind := range want {
		if got := marks[k]; len(got) != 1 || got[0] != kind {
			t.Errorf("v%d of %s drawn as %v, want %s", k.version, k.user, got, kind)
		}
	}
	wantBy := map[key]string{
		{"alice", 13}: replay.MarkStageStarted, {"hassan", 19}: replay.MarkRequestsClosed, {"alice", 21}: replay.MarkRequestsOpened,
		{"hassan", 25}: replay.MarkRequestsClosed, {"alice", 23}: replay.MarkDecision, {"carol", 17}: replay.MarkDecision,
		{"alice", 31}: replay.MarkStageStarted, {"alice", 12}: replay.MarkDecision,
	}
	for k, kind := range wantBy {
		if got := by[k]; len(got) != 1 || got[0] != kind {
			t.Errorf("v%d on %s's row: %v, want %s", k.version, k.user, got, kind)
		}
	}
	if b := bands[replay.BandBackstage]; len(b) != 1 || !strings.HasPrefix(b[0], "backstage 14:00:01–14:00:08 (7s), by alice") {
		t.Errorf("backstage bands %q", b)
	}
	if b := bands[replay.BandEnded]; len(b) != 1 || !strings.HasPrefix(b[0], "stage ended 14:01:00–14:01:05 (5s)") {
		t.Errorf("ended bands %q", b)
	}
	if b := bands[replay.BandRequestsClosed]; len(b) != 2 || !strings.Contains(b[1], "denying erin") {
		t.Errorf("requests-closed bands %q", b)
	}
	for _, l := range []string{"backstage", "stage ended", "requests closed (period)", "stage started", "stage ended for everyone",
		"made co-host", "co-host role taken", "brought on stage by a host", "a host closed requests", "a host opened requests", "invitation declined"} {
		if !slices.Contains(legend, l) {
			t.Errorf("legend lacks %q: %v", l, legend)
		}
	}
	// A stage live from start to end has no bands.
	plain, _ := draw(t, projections.HistoryOf("short", fifteenSeconds(t)), replay.TimelineOptions{})
	if strings.Contains(string(plain), `data-kind="backstage"`) || strings.Contains(string(plain), `data-kind="ended"`) {
		t.Error("bands on a stage that was live throughout")
	}
}

// TestVerify_stageControls: a log that uses every control verifies clean
// (each event re-decided), and a forged control event is found.
func TestVerify_stageControls(t *testing.T) {
	log := controlled(t)
	rep, err := replay.Verify(context.Background(), seq(log))
	if err != nil || !rep.OK() || len(rep.Unchecked) != 0 {
		t.Fatalf("clean log: %+v %v", rep, err)
	}
	cases := []struct {
		name string
		edit func(evs []events.Envelope) []events.Envelope
		want replay.FindingKind
		at   events.Type // the event the first finding is about
	}{
		{"brought on stage while the settings do not allow it", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeSettingsChanged, 0)].Payload.(*events.SettingsChanged).Settings.AllowBringOnStage = false
			return evs
		}, replay.Illegal, events.TypeBroughtOnStage},
		{"co-host promoted by a viewer", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeCoHostPromoted, 0)].Actor = "bob"
			return evs
		}, replay.Illegal, events.TypeCoHostPromoted},
		{"co-host demoted by the co-host", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeCoHostDemoted, 0)].Actor = "carol"
			return evs
		}, replay.Illegal, events.TypeCoHostDemoted},
		{"stage started by a co-host", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeStageStarted, 0)].Actor = "carol"
			return evs
		}, replay.Illegal, events.TypeStageStarted},
		{"stage ended omitting a user on stage", func(evs []events.Envelope) []events.Envelope {
			p := evs[indexOf(t, evs, events.TypeStageEnded, 0)].Payload.(*events.StageEnded)
			p.OnStage = slices.DeleteFunc(p.OnStage, func(u string) bool { return u == "bob" })
			return evs
		}, replay.Mismatch, events.TypeStageEnded},
		{"stage ended twice", func(evs []events.Envelope) []events.Envelope {
			i := indexOf(t, evs, events.TypeStageStarted, 1)
			e := evs[indexOf(t, evs, events.TypeStageEnded, 0)]
			evs[i].Type, evs[i].Payload = e.Type, &events.StageEnded{From: events.PhaseEnded}
			return evs
		}, replay.Illegal, events.TypeStageEnded},
		{"stage started from the wrong phase", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeStageStarted, 0)].Payload.(*events.StageStarted).From = events.PhaseEnded
			return evs
		}, replay.Mismatch, events.TypeStageStarted},
		{"requests closed denying nobody", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeRequestsClosed, 1)].Payload.(*events.RequestsClosed).Denied = nil
			return evs
		}, replay.Mismatch, events.TypeRequestsClosed},
		{"requests opened while open", func(evs []events.Envelope) []events.Envelope {
			i := indexOf(t, evs, events.TypeRequestsClosed, 0)
			evs[i].Type, evs[i].Payload = events.TypeRequestsOpened, &events.RequestsOpened{}
			return evs
		}, replay.Illegal, events.TypeRequestsOpened},
		{"an approval recorded as an invitation", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeAccessGranted, 1)].Payload.(*events.AccessGranted).Invited = []string{"bob"}
			return evs
		}, replay.Mismatch, events.TypeAccessGranted},
		{"a declined approval recorded as an invitation", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeInvitationDeclined, 1)].Payload.(*events.InvitationDeclined).Invited = true
			return evs
		}, replay.Mismatch, events.TypeInvitationDeclined},
		{"a decline with nothing to decline", func(evs []events.Envelope) []events.Envelope {
			evs[indexOf(t, evs, events.TypeInvitationDeclined, 0)].Actor = "erin"
			return evs
		}, replay.Illegal, events.TypeInvitationDeclined},
		{"request expired before its time", func(evs []events.Envelope) []events.Envelope {
			i := indexOf(t, evs, events.TypeLapsed, 0)
			for j := i; j < len(evs); j++ {
				evs[j].Time = evs[j].Time.Add(-25 * time.Second) // the request had 30s, and waited 30s
			}
			evs[i].Payload.(*events.Lapsed).Lapses[0].Deadline = evs[i].Time
			return evs
		}, replay.Illegal, events.TypeLapsed},
		{"request expiry left out", func(evs []events.Envelope) []events.Envelope {
			i := indexOf(t, evs, events.TypeLapsed, 0)
			evs = slices.Delete(evs, i, i+1)
			for j := i; j < len(evs); j++ {
				evs[j].Version--
			}
			return evs
		}, replay.Mismatch, events.TypeRequestsOpened},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := c.edit(clone(t, log))
			reseal(t, evs, 0)
			rep, err := replay.Verify(context.Background(), seq(evs))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("no finding")
			}
			f := rep.Findings[0]
			if f.Kind != c.want || evs[f.Version-1].Type != c.at {
				t.Fatalf("first finding %v (about a %s), want %s about a %s", f, evs[f.Version-1].Type, c.want, c.at)
			}
		})
	}
}

// TestWhatIf_stageControls re-decides the controlled meeting under other
// settings.
func TestWhatIf_stageControls(t *testing.T) {
	evs := controlled(t)
	// As recorded: nothing changes.
	rep, err := replay.WhatIf(evs, nil)
	if err != nil || len(rep.Refused) != 0 || rep.Recorded != rep.WhatIf {
		t.Fatalf("identity: %v %+v", err, rep)
	}

	// Bringing users on stage not allowed: the host's BringOnStage is
	// refused; bob's request waits until the host closes requests
	// denying the pending ones, and he is never on stage.
	rep, err = replay.WhatIf(evs, overrides(t, "AllowBringOnStage=false"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Refused) != 1 || rep.Refused[0].Command != "BringOnStage" || rep.Refused[0].Actor != "alice" ||
		!strings.Contains(rep.Refused[0].Reason, "AllowBringOnStage") {
		t.Fatalf("refused %+v", rep.Refused)
	}
	bob := user(t, rep, "bob")
	if bob.Recorded.OnStage == 0 || bob.WhatIf.OnStage != 0 || bob.WhatIf.Denied != 1 || bob.Recorded.Denied != 0 {
		t.Errorf("bob %+v", bob)
	}
	if alice := user(t, rep, "alice"); alice.WhatIf.Refused != 1 {
		t.Errorf("alice %+v", alice)
	}
	// The stage's end is re-decided: it moves off who is on stage in the
	// what-if world (not bob).
	var ended *events.StageEnded
	for _, e := range rep.Events {
		if p, ok := e.Payload.(*events.StageEnded); ok {
			ended = p
		}
	}
	if ended == nil || slices.Contains(ended.OnStage, "bob") || !slices.Contains(ended.OnStage, "alice") {
		t.Errorf("what-if StageEnded %+v", ended)
	}

	// Requests that never expire: erin's first request waits until the
	// host closes requests denying the pending ones; her second request
	// is refused (she still has one pending).
	rep, err = replay.WhatIf(evs, overrides(t, "RequestTTL=0s"))
	if err != nil {
		t.Fatal(err)
	}
	erin := user(t, rep, "erin")
	if erin.Recorded.Lapses != 1 || erin.WhatIf.Lapses != 0 || erin.WhatIf.Refused != 1 || erin.WhatIf.Denied != 1 || erin.WhatIf.Requests != 1 {
		t.Errorf("erin %+v", erin)
	}
	if len(rep.Refused) != 1 || rep.Refused[0].Command != "RequestAccess" || rep.Refused[0].Actor != "erin" {
		t.Errorf("refused %+v", rep.Refused)
	}

	// Requests that expire in 2s: bob's request lapses before the co-host
	// answers it, so her grant becomes an invitation.
	rep, err = replay.WhatIf(evs, overrides(t, "RequestTTL=2s"))
	if err != nil {
		t.Fatal(err)
	}
	bob = user(t, rep, "bob")
	if bob.Recorded.Granted != 1 || bob.WhatIf.Granted != 0 || bob.WhatIf.Lapses < 1 {
		t.Errorf("bob %+v", bob)
	}
	var grant *events.AccessGranted
	for _, e := range rep.Events {
		if p, ok := e.Payload.(*events.AccessGranted); ok && e.Actor == "carol" {
			grant = p
		}
	}
	if grant == nil || !slices.Equal(grant.Invited, []string{"bob"}) {
		t.Errorf("what-if grant by carol %+v", grant)
	}
}

// A receipt is asked for a user's kicks and denials: the stage's end that
// moved them off, and a closing of requests that denied theirs, count.
func TestKicksAndDenials_stageControls(t *testing.T) {
	log := controlled(t)
	vs := func(evs []events.Envelope) []uint64 {
		var out []uint64
		for _, e := range evs {
			out = append(out, e.Version)
		}
		return out
	}
	for user, want := range map[string][]uint64{"erin": {25, 30}, "bob": {30}, "dave": nil, "": {25, 30}} {
		got, err := replay.KicksAndDenials(seq(log), user)
		if err != nil || !slices.Equal(vs(got), want) {
			t.Errorf("%q: %v %v, want %v", user, vs(got), err, want)
		}
	}
	// A closing that denied nobody, an end that moved nobody: not decisions about anyone.
	quiet := scripted(t, "quiet", []step{join("alice", host),
		{time.Second, "alice", aggregate.CloseRequests{DenyPending: true}}, {2 * time.Second, "alice", aggregate.EndStage{}}})
	if got, _ := replay.KicksAndDenials(seq(quiet), ""); len(got) != 0 {
		t.Errorf("quiet meeting: %v", vs(got))
	}
	r, err := replay.MakeReceipt(context.Background(), seq(log), "controlled", 30)
	if err != nil || r == nil {
		t.Fatalf("receipt of the stage's end: %v", err)
	}
}
