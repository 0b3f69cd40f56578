package replay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// smallStage: alice (host) on stage; bob requests, is granted and joins;
// carol is invited and joins 40 seconds later; alice leaves at the end.
func smallStage(t testing.TB) []events.Envelope {
	s := func(n int) time.Duration { return time.Duration(n) * time.Second }
	return scripted(t, "small", []step{
		join("alice", host), join("bob", viewer), join("carol", viewer),
		{s(1), "alice", aggregate.Join{}},
		{s(10), "bob", aggregate.RequestAccess{}},
		{s(20), "alice", aggregate.GrantAccess{Users: []string{"bob"}}},
		{s(25), "bob", aggregate.Join{}},
		{s(30), "alice", aggregate.GrantAccess{Users: []string{"carol"}}},
		{s(70), "carol", aggregate.Join{}},
		{s(100), "alice", aggregate.Leave{}},
		{s(120), "bob", aggregate.Leave{}},
	})
}

func overrides(t *testing.T, sets ...string) []replay.Override {
	t.Helper()
	var out []replay.Override
	for _, s := range sets {
		o, err := replay.ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func user(t *testing.T, r *replay.WhatIfReport, u string) replay.UserWhatIf {
	t.Helper()
	for _, x := range r.Users {
		if x.User == u {
			return x
		}
	}
	t.Fatalf("no %s in %+v", u, r.Users)
	return replay.UserWhatIf{}
}

func TestWhatIf_maxOnStageOne(t *testing.T) {
	rep, err := replay.WhatIf(smallStage(t), overrides(t, "MaxOnStage=1"))
	if err != nil {
		t.Fatal(err)
	}
	bob := user(t, rep, "bob")
	if bob.Recorded.OnStage != 95*time.Second || bob.Recorded.Waitlisted != 0 {
		t.Errorf("bob recorded %+v", bob.Recorded)
	}
	// One seat, taken by alice: bob's Join puts him on the waitlist, and
	// no command is invented for him when alice's seat frees.
	if bob.WhatIf.OnStage != 0 || bob.WhatIf.Waitlisted != 1 {
		t.Errorf("bob what-if %+v", bob.WhatIf)
	}
	carol := user(t, rep, "carol")
	if carol.Recorded.OnStage != 50*time.Second || carol.WhatIf.OnStage != 0 || carol.WhatIf.Waitlisted != 1 {
		t.Errorf("carol %+v", carol)
	}
	// bob's Leave declines his waitlisted acceptance: still legal.
	if len(rep.Refused) != 0 {
		t.Errorf("refused %+v", rep.Refused)
	}
	if rep.Recorded.OnStage <= rep.WhatIf.OnStage {
		t.Errorf("totals %+v vs %+v", rep.Recorded, rep.WhatIf)
	}
	if rep.Overrides[0] != "MaxOnStage=1" || rep.Commands != 11 {
		t.Errorf("report %+v", rep)
	}
}

func TestWhatIf_invitationTTL(t *testing.T) {
	rep, err := replay.WhatIf(smallStage(t), overrides(t, "invitationttl=30s"))
	if err != nil {
		t.Fatal(err)
	}
	carol := user(t, rep, "carol")
	// Invited at 30s, she joined at 70s: with a 30s invitation it lapses at
	// 60s, and her Join is refused.
	if carol.WhatIf.Lapses != 1 || carol.WhatIf.OnStage != 0 || carol.WhatIf.Refused != 1 || carol.Recorded.Lapses != 0 {
		t.Errorf("carol %+v", carol)
	}
	if len(rep.Refused) != 1 || rep.Refused[0].Command != "Join" || !strings.Contains(rep.Refused[0].Reason, "carol") && rep.Refused[0].Actor != "carol" {
		t.Errorf("refused %+v", rep.Refused)
	}
	// bob joined 5s after his grant: unchanged.
	if bob := user(t, rep, "bob"); bob.Recorded != bob.WhatIf {
		t.Errorf("bob %+v", bob)
	}
}

// With no overrides the replay is the recording: every outcome equal.
func TestWhatIf_identity(t *testing.T) {
	for _, evs := range [][]events.Envelope{smallStage(t), fifteenSeconds(t), webinar(t)} {
		rep, err := replay.WhatIf(evs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Refused) != 0 || rep.Recorded != rep.WhatIf || len(rep.Users) == 0 {
			t.Errorf("%s: refused %+v, totals %+v vs %+v", rep.MeetingID, rep.Refused, rep.Recorded, rep.WhatIf)
		}
		for _, u := range rep.Users {
			if u.Recorded != u.WhatIf {
				t.Errorf("%s: %s %+v vs %+v", rep.MeetingID, u.User, u.Recorded, u.WhatIf)
			}
		}
	}
}

func TestParseOverride(t *testing.T) {
	for s, want := range map[string]any{"MaxOnStage=4": 4, "InvitationTTL=30s": 30 * time.Second, "speakingslot = 2m": 2 * time.Minute, "ReconnectGrace=0s": time.Duration(0)} {
		o, err := replay.ParseOverride(s)
		if err != nil || o.Value != want {
			t.Errorf("%s: %+v %v", s, o, err)
		}
	}
	_, err := replay.ParseOverride("Seats=4")
	if !errors.Is(err, replay.ErrUnknownSetting) || !strings.Contains(err.Error(), "MaxOnStage, SeatOfferTTL, InvitationTTL") {
		t.Errorf("unknown name: %v", err)
	}
	for _, s := range []string{"MaxOnStage=four", "MaxOnStage=-1", "InvitationTTL=30", "InvitationTTL=-5s", "MaxOnStage", "=4"} {
		if _, err := replay.ParseOverride(s); !errors.Is(err, replay.ErrBadSetting) {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := replay.WhatIf(nil, nil); !errors.Is(err, replay.ErrWhatIf) {
		t.Errorf("no events: %v", err)
	}
	two := append(smallStage(t), webinar(t)...)
	if _, err := replay.WhatIf(two, nil); !errors.Is(err, replay.ErrWhatIf) {
		t.Errorf("two meetings: %v", err)
	}
	if _, err := replay.WhatIf(smallStage(t), []replay.Override{{Field: "MaxOnStage", Value: "4"}}); !errors.Is(err, replay.ErrBadSetting) {
		t.Errorf("untyped value: %v", err)
	}
}
