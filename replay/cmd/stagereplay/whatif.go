package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

type whatifCmd struct {
	sourceArgs
	filterArgs
	Set  []string `name:"set" placeholder:"NAME=VALUE" help:"A setting to change, by its field name: MaxOnStage=4 (a number), InvitationTTL=30s (a duration; 0 turns it off), AllowBringOnStage=true (a bool). Repeatable. Names: MaxOnStage, SeatOfferTTL, InvitationTTL, SpeakingSlot, RequestCooldown, ReconnectGrace, RequestTTL, StartBackstage, AllowBringOnStage."`
	JSON bool     `help:"Write the report as JSON (durations in nanoseconds)."`
}

func (c *whatifCmd) Run(ctx context.Context, e *env) error {
	if len(c.Set) == 0 {
		return fmt.Errorf("no --set given: name a setting to change (%s)", strings.Join(replay.SettingNames(), ", "))
	}
	var ovs []replay.Override
	for _, s := range c.Set {
		o, err := replay.ParseOverride(s)
		if err != nil {
			return fmt.Errorf("--set %s: %w", s, err)
		}
		ovs = append(ovs, o)
	}
	evs, err := meetingEvents(ctx, e, &c.sourceArgs, &c.filterArgs)
	if err != nil {
		return err
	}
	rep, err := replay.WhatIf(evs, ovs)
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(e.stdout, rep)
	}
	writeWhatIf(e.stdout, rep)
	return nil
}

// meetingEvents reads the chosen meeting's events, up to the filter's limits.
func meetingEvents(ctx context.Context, e *env, sa *sourceArgs, fa *filterArgs) ([]events.Envelope, error) {
	src, done, err := sa.open(ctx, e)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := fa.resolve(ctx, src)
	if err != nil {
		return nil, err
	}
	var evs []events.Envelope
	for ev, err := range f.Events(ctx, src) {
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w: %q", replay.ErrUnknownMeeting, f.MeetingID)
	}
	return evs, nil
}

// writeWhatIf prints the report: a line per user, each column "recorded →
// what-if" (one value when they agree), the totals, and the refused commands.
func writeWhatIf(w io.Writer, r *replay.WhatIfReport) {
	fmt.Fprintf(w, "what if meeting %s (%s – %s UTC) had run with %s:\n", r.MeetingID,
		r.Start.UTC().Format("2006-01-02 15:04:05"), r.End.UTC().Format("15:04:05"), strings.Join(r.Overrides, ", "))
	fmt.Fprintf(w, "%s re-decided at their recorded times; %d refused under the new settings\n\n", plural(r.Commands, "recorded command"), len(r.Refused))
	d := func(a, b time.Duration) string {
		if a == b {
			return projections.FormatDuration(a)
		}
		return projections.FormatDuration(a) + " → " + projections.FormatDuration(b)
	}
	n := func(a, b int) string {
		if a == b {
			return fmt.Sprint(a)
		}
		return fmt.Sprintf("%d → %d", a, b)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tON STAGE\tWAITED\tLONGEST WAIT\tREQUESTS\tGRANTED\tDENIED\tLAPSES\tWAITLISTED\tKICKED\tREFUSED\t")
	row := func(name string, a, b replay.Outcome) {
		mark := ""
		if a != b {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, mark, d(a.OnStage, b.OnStage), d(a.Wait, b.Wait),
			d(a.LongestWait, b.LongestWait), n(a.Requests, b.Requests), n(a.Granted, b.Granted), n(a.Denied, b.Denied),
			n(a.Lapses, b.Lapses), n(a.Waitlisted, b.Waitlisted), n(a.Kicked, b.Kicked), n(a.Refused, b.Refused))
	}
	for _, u := range r.Users {
		row(u.User, u.Recorded, u.WhatIf)
	}
	row("all", r.Recorded, r.WhatIf)
	tw.Flush()
	fmt.Fprintln(w, "\n(recorded → what-if; * marks a user whose outcome changes)")
	if len(r.Refused) > 0 {
		fmt.Fprintln(w, "\nrefused under the new settings (the recorded actor could not have done this; nothing is invented in its place):")
		for _, f := range r.Refused {
			fmt.Fprintf(w, "  v%d %s %s by %s: %s\n", f.Version, clock(f.Time), f.Command, actor(f.Actor), f.Reason)
		}
	}
}

func actor(a string) string {
	if a == "" {
		return "the backend"
	}
	return a
}
