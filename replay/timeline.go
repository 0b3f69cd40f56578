package replay

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"slices"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// TimelineOptions shape the picture written by [WriteTimeline].
type TimelineOptions struct {
	// Width is the picture's width in pixels (default 1100).
	Width int
	// Title is written above the chart (default "Stage timeline: <meeting>").
	Title string
	// Location is the time zone of the axis labels (default UTC).
	Location *time.Location
}

// WriteTimeline draws a meeting's history as a self-contained SVG (no
// scripts, fonts or links to fetch): one row per user who was on stage or
// asked to be (host names in bold); a bar for each interval on stage; a thin
// bar for each wait in the request queue; and marks for requests, grants,
// denials, cancellations and kicks, and a note mark for every other event
// about a drawn user (bans, waitlisting, lapses, dropped connections). Every shape carries a <title> (a tooltip
// in browsers) and data-user / data-kind attributes for tools.
func WriteTimeline(w io.Writer, h *projections.History, o TimelineOptions) error {
	if o.Width <= 0 {
		o.Width = 1100
	}
	if o.Title == "" {
		o.Title = "Stage timeline: " + h.MeetingID
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	rows := timelineRows(h)
	const (
		left   = 170
		right  = 30
		top    = 70
		rowH   = 24
		legend = 60
	)
	plotW := float64(o.Width - left - right)
	height := top + len(rows)*rowH + 40 + legend
	if o.Width < 900 {
		height += 40 // the legend wraps
	}
	start, end := h.Start, h.End
	if !end.After(start) {
		end = start.Add(time.Minute)
	}
	span := end.Sub(start)
	x := func(t time.Time) float64 {
		return float64(left) + plotW*float64(t.Sub(start))/float64(span)
	}
	row := map[string]int{}
	for i, u := range rows {
		row[u] = i
	}
	y := func(u string) float64 { return float64(top + row[u]*rowH) }

	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	esc := html.EscapeString
	clock := func(t time.Time) string { return t.In(o.Location).Format("15:04:05") }

	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		o.Width, height, o.Width, height)
	p(`<title>%s</title>`+"\n", esc(o.Title))
	p(`<style>.stint{fill:#3b7dd8}.stint.kicked{fill:#d8553b}.wait{fill:#c9c9c9}.granted{fill:#2e9e4f}.denied{stroke:#c62828;stroke-width:2.5}.cancelled{fill:#fff;stroke:#777;stroke-width:1.5}.request{fill:#f2a900}.kick{stroke:#c62828;stroke-width:2.5}.auto{fill:#2e9e4f;opacity:.5}.note{fill:#8e44ad}.grid{stroke:#e4e4e4}.axis{fill:#555}.name{fill:#222}.host{font-weight:bold}</style>` + "\n")
	p(`<rect width="100%%" height="100%%" fill="#fff"/>` + "\n")
	p(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(o.Title))
	p(`<text x="%d" y="44" class="axis">%s – %s UTC, %d on stage, %d requests</text>`+"\n", left,
		esc(start.UTC().Format("2006-01-02 15:04:05")), esc(end.UTC().Format("15:04:05")), len(h.Stints), countReal(h.Requests))

	// Time axis.
	step := tickStep(span)
	bottom := top + len(rows)*rowH
	p(`<g class="ticks">` + "\n")
	for t := start.Truncate(step); !t.After(end); t = t.Add(step) {
		if t.Before(start) {
			continue
		}
		xx := x(t)
		p(`<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", xx, top-8, xx, bottom)
		p(`<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xx, bottom+16, t.In(o.Location).Format("15:04"))
	}
	p("</g>\n")

	// Rows.
	hosts := map[string]bool{}
	for _, e := range h.Entries {
		if e.Role == "host" {
			hosts[e.Actor] = true
		}
	}
	for _, u := range rows {
		class := "name"
		if hosts[u] {
			class += " host"
		}
		p(`<text class="%s" x="%d" y="%.1f" text-anchor="end" data-user="%s">%s</text>`+"\n", class, left-10, y(u)+4, esc(u), esc(u))
	}
	// Request waits and their marks.
	for _, r := range h.Requests {
		yy := y(r.UserID)
		if r.Outcome == projections.OutcomeAuto {
			p(`<circle class="mark auto" data-kind="auto-accepted" data-user="%s" cx="%.1f" cy="%.1f" r="4"><title>%s %s requested and was accepted automatically</title></circle>`+"\n",
				esc(r.UserID), x(r.RequestedAt), yy, clock(r.RequestedAt), esc(r.UserID))
			continue
		}
		until := r.DecidedAt
		if until.IsZero() {
			until = end
		}
		p(`<rect class="wait" data-kind="wait" data-user="%s" x="%.1f" y="%.1f" width="%.1f" height="4"><title>%s waited %s (%s)</title></rect>`+"\n",
			esc(r.UserID), x(r.RequestedAt), yy-2, max(x(until)-x(r.RequestedAt), 1), esc(r.UserID), projections.FormatDuration(until.Sub(r.RequestedAt)), esc(r.Outcome))
		p(`<circle class="mark request" data-kind="request" data-user="%s" cx="%.1f" cy="%.1f" r="4"><title>%s %s requested to join the stage</title></circle>`+"\n",
			esc(r.UserID), x(r.RequestedAt), yy, clock(r.RequestedAt), esc(r.UserID))
		if r.DecidedAt.IsZero() {
			continue
		}
		dx := x(r.DecidedAt)
		by := ""
		if r.DecidedBy != "" && r.DecidedBy != r.UserID {
			by = " by " + r.DecidedBy
		}
		tip := fmt.Sprintf("%s %s's request %s%s after %s", clock(r.DecidedAt), r.UserID, r.Outcome, by, projections.FormatDuration(r.Wait))
		switch r.Outcome {
		case projections.OutcomeGranted:
			p(`<path class="mark granted" data-kind="granted" data-user="%s" d="M%.1f %.1fl5 5l-5 5l-5-5z"><title>%s</title></path>`+"\n", esc(r.UserID), dx, yy-5, esc(tip))
		case projections.OutcomeDenied:
			p(`<path class="mark denied" data-kind="denied" data-user="%s" d="M%.1f %.1fl8 8m0-8l-8 8"><title>%s</title></path>`+"\n", esc(r.UserID), dx-4, yy-4, esc(tip))
		default:
			p(`<circle class="mark cancelled" data-kind="%s" data-user="%s" cx="%.1f" cy="%.1f" r="4"><title>%s</title></circle>`+"\n", esc(r.Outcome), esc(r.UserID), dx, yy, esc(tip))
		}
	}
	// Stage intervals, and the kicks that ended some.
	for _, s := range h.Stints {
		yy := y(s.UserID)
		until := s.Left
		if until.IsZero() {
			until = end
		}
		class := "stint"
		if s.End == projections.EndKicked {
			class += " kicked"
		}
		how := "still on stage"
		if !s.Left.IsZero() {
			how = s.End
			if s.By != "" {
				how += " by " + s.By
			}
		}
		p(`<rect class="%s" data-kind="stint" data-user="%s" x="%.1f" y="%.1f" width="%.1f" height="14" rx="3"><title>%s on stage %s–%s (%s), %s</title></rect>`+"\n",
			class, esc(s.UserID), x(s.Joined), yy-7, max(x(until)-x(s.Joined), 2), esc(s.UserID), clock(s.Joined), clock(until),
			projections.FormatDuration(until.Sub(s.Joined)), esc(how))
		if s.End == projections.EndKicked {
			kx := x(s.Left)
			p(`<path class="mark kick" data-kind="kick" data-user="%s" d="M%.1f %.1fl10 10m0-10l-10 10"><title>%s %s kicked %s</title></path>`+"\n",
				esc(s.UserID), kx+2, yy-5, clock(s.Left), esc(s.By), esc(s.UserID))
		}
	}
	// Other events about a drawn user (bans, waitlisting, lapses, dropped
	// connections, and event types added later): a small mark with the
	// event's sentence as its title.
	for _, en := range h.Entries {
		if drawn[en.Type] {
			continue
		}
		for _, u := range en.Users {
			if _, ok := row[u]; !ok {
				continue
			}
			p(`<rect class="mark note" data-kind="%s" data-user="%s" x="%.1f" y="%.1f" width="6" height="6" transform="rotate(45 %.1f %.1f)"><title>%s %s</title></rect>`+"\n",
				esc(string(en.Type)), esc(u), x(en.Time)-3, y(u)-3, x(en.Time), y(u), clock(en.Time), esc(en.Text))
		}
	}
	// Legend.
	ly := bottom + 44
	items := []struct{ shape, label string }{
		{`<rect class="stint" x="0" y="-6" width="22" height="12" rx="3"/>`, "on stage"},
		{`<rect class="stint kicked" x="0" y="-6" width="22" height="12" rx="3"/>`, "on stage, kicked"},
		{`<rect class="wait" x="0" y="-2" width="22" height="4"/><circle class="request" cx="0" cy="0" r="4"/>`, "request, waiting"},
		{`<path class="granted" d="M10 -5l5 5l-5 5l-5-5z"/>`, "granted"},
		{`<path class="denied" d="M6 -4l8 8m0-8l-8 8"/>`, "denied"},
		{`<circle class="cancelled" cx="10" cy="0" r="4"/>`, "cancelled / withdrawn"},
		{`<circle class="auto" cx="10" cy="0" r="4"/>`, "no approval needed"},
		{`<rect class="note" x="7" y="-3" width="6" height="6" transform="rotate(45 10 0)"/>`, "ban, waitlist, lapse, connection"},
	}
	p(`<g class="legend" transform="translate(%d %d)">`+"\n", left, ly)
	lx, lrow := 0, 0
	for _, it := range items {
		wd := 28 + 7*len(it.label) + 24
		if lx > 0 && left+lx+wd > o.Width-right {
			lx, lrow = 0, lrow+1
		}
		p(`<g transform="translate(%d %d)">%s<text x="28" y="4">%s</text></g>`+"\n", lx, lrow*20, it.shape, esc(it.label))
		lx += wd
	}
	p("</g>\n</svg>\n")
	return bw.Flush()
}

// timelineRows lists the users to draw, in order of first mention: those
// who were on stage or requested (decisions are marked on the requester's
// row, and named in the mark's title).
func timelineRows(h *projections.History) []string {
	keep := map[string]bool{}
	for _, s := range h.Stints {
		keep[s.UserID] = true
	}
	for _, r := range h.Requests {
		keep[r.UserID] = true
	}
	var out []string
	for _, u := range h.Users() {
		if keep[u] {
			out = append(out, u)
		}
	}
	return slices.Clip(out)
}

// drawn are the event types the timeline shows as bars and marks of their
// own; every other event about a drawn user gets a note mark.
var drawn = map[events.Type]bool{
	events.TypeParticipantJoined: true, events.TypeParticipantLeft: true, events.TypePermissionsChanged: true,
	events.TypeAccessRequested: true, events.TypeAccessRequestCancelled: true, events.TypeAccessGranted: true,
	events.TypeAccessDenied: true, events.TypeStageJoined: true, events.TypeStageLeft: true, events.TypeKicked: true,
	events.TypeSettingsChanged: true,
}

func countReal(rs []projections.RequestRecord) int {
	n := 0
	for _, r := range rs {
		if r.Outcome != projections.OutcomeAuto {
			n++
		}
	}
	return n
}

func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour} {
		if span/s <= 12 {
			return s
		}
	}
	return 7 * 24 * time.Hour
}
