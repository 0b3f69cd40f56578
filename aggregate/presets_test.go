package aggregate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/productdb/stage/aggregate"
)

func TestPresets(t *testing.T) {
	want := map[aggregate.Preset]aggregate.Permissions{
		aggregate.PresetHost:     hostPerms,
		aggregate.PresetSpeaker:  speakerPerms,
		aggregate.PresetViewer:   viewerPerms,
		aggregate.PresetViewOnly: bannedPerms,
	}
	for p, perms := range want {
		if got := p.Permissions(); got != perms || got.Validate() != nil {
			t.Errorf("%s.Permissions() = %+v, want %+v", p, got, perms)
		}
		if got := aggregate.PresetOf(perms); got != p {
			t.Errorf("PresetOf(%+v) = %q, want %q", perms, got, p)
		}
	}
	if got := aggregate.PresetOf(cohostPerms); got != aggregate.PresetHost {
		t.Errorf("PresetOf(cohost) = %q, want host", got)
	}
	if got := aggregate.PresetOf(aggregate.Permissions{StageAccess: "Sometimes"}); got != "" {
		t.Errorf("PresetOf(invalid) = %q", got)
	}
	// An unknown preset's permissions are refused.
	bad := aggregate.Preset("admin").Permissions()
	if _, err := newMeeting(t).apply(add("x", bad)); !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Errorf("AddParticipant with an unknown preset: %v, want ErrInvalidCommand", err)
	}
	// What each may do, on the scene's stage.
	m := newMeeting(t).do(
		add("h", aggregate.PresetHost.Permissions()),
		add("s", aggregate.PresetSpeaker.Permissions()),
		add("v", aggregate.PresetViewer.Permissions()),
		add("o", aggregate.PresetViewOnly.Permissions()),
	)
	for _, tc := range []struct {
		c    aggregate.Command
		want error
	}{
		{by("s", aggregate.Join{}), nil},
		{by("v", aggregate.Join{}), aggregate.ErrPermissionDenied},
		{by("v", aggregate.RequestAccess{}), nil},
		{by("o", aggregate.RequestAccess{}), aggregate.ErrPermissionDenied},
		{by("s", aggregate.GrantAccess{Users: users("v")}), aggregate.ErrPermissionDenied},
		{by("h", aggregate.GrantAccess{Users: users("v")}), nil},
		{by("h", aggregate.GrantAccess{Users: users("o")}), aggregate.ErrPermissionDenied},
	} {
		_, err := m.apply(tc.c)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s by %s: %v, want %v", tc.c.Action.Name(), tc.c.Actor, err, tc.want)
		}
	}
}

// The presets of the SDK's dashboards, and the permissions they stand for.
func ExamplePreset() {
	for _, p := range []aggregate.Preset{aggregate.PresetHost, aggregate.PresetSpeaker, aggregate.PresetViewer, aggregate.PresetViewOnly} {
		perms := p.Permissions()
		fmt.Printf("%-9s stage access %-10s accepts requests %v\n", p, perms.StageAccess, perms.AcceptStageRequests)
	}
	// A participant is added with one:
	_ = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "bob@example.com", Permissions: aggregate.PresetViewer.Permissions()}}
	// Output:
	// host      stage access Allowed    accepts requests true
	// speaker   stage access Allowed    accepts requests false
	// viewer    stage access CanRequest accepts requests false
	// view-only stage access NotAllowed accepts requests false
}
