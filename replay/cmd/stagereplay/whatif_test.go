package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/productdb/stage/replay"
)

func TestWhatIfCommand(t *testing.T) {
	code, out, errs := stagereplay(t, "whatif", webinar, "--set", "MaxOnStage=1", "--set", "InvitationTTL=10s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden(t, "whatif.txt", out)
	code, out, errs = stagereplay(t, "whatif", webinar, "--set", "maxonstage=1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep replay.WhatIfReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.MeetingID != "webinar-42" || len(rep.Overrides) != 1 || rep.Overrides[0] != "MaxOnStage=1" || rep.WhatIf.OnStage >= rep.Recorded.OnStage {
		t.Errorf("json report %+v", rep)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "Seats=2"}, "the settings are MaxOnStage, SeatOfferTTL, InvitationTTL, SpeakingSlot, RequestCooldown, ReconnectGrace, RequestTTL, StartBackstage, AllowBringOnStage"},
		{[]string{"--set", "MaxOnStage=two"}, "want a whole number"},
		{[]string{"--set", "SpeakingSlot=-1m"}, "negative"},
		{nil, "no --set given"},
		{[]string{"--set", "MaxOnStage=2", "-m", "nope"}, "unknown meeting"},
	} {
		code, _, errs := stagereplay(t, append([]string{"whatif", webinar}, c.args...)...)
		if code != exitError || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errs, c.want)
		}
	}
}

// The stage controls' settings re-decide a meeting that used them: the
// host's BringOnStage is refused, and requests lapse after 30s.
func TestWhatIfCommand_stageControls(t *testing.T) {
	code, out, errs := stagereplay(t, "whatif", controls, "--set", "AllowBringOnStage=false", "--set", "RequestTTL=30s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	golden(t, "whatif-stage.txt", out)
	for _, want := range []string{"had run with AllowBringOnStage=false, RequestTTL=30s",
		"BringOnStage by hassan: stage: BringOnStage erin: permission denied", "Leave by erin"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// The --help text names every setting --set accepts.
func TestWhatIfHelpNamesEverySetting(t *testing.T) {
	_, out, _ := stagereplay(t, "whatif", "--help")
	flat := strings.Join(strings.Fields(out), " ")
	for _, n := range replay.SettingNames() {
		if !strings.Contains(flat, n) {
			t.Errorf("whatif --help does not name %s", n)
		}
	}
}
