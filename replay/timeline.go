package replay

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// ErrNoHistory is returned by [WriteTimeline] for a nil history.
var ErrNoHistory = errors.New("replay: no history to draw")

// TimelineOptions shape the picture written by [WriteTimeline].
type TimelineOptions struct {
	// Width is the picture's width in pixels (default 1100).
	Width int
	// Title is written above the chart (default "Stage timeline: <meeting>").
	Title string
	// Location is the time zone of the axis labels (default UTC).
	Location *time.Location
}

// The kinds of mark [WriteTimeline] draws, as written in each shape's
// data-kind attribute. Every event about a drawn user is one mark on that
// user's row (a StageJoined event is the start of its stage bar); a host's
// decision about others is also a [MarkDecision] on the host's row.
const (
	MarkStint       = "stint"         // bar: on stage (its data-version is the StageJoined event's)
	MarkWait        = "wait"          // bar: waiting in the request queue
	MarkAccepted    = "accepted"      // bar: accepted or invited, not yet on stage
	MarkRequest     = "request"       // AccessRequested, queued
	MarkAuto        = "auto-accepted" // AccessRequested, no approval needed
	MarkGranted     = "granted"       // AccessGranted answering a request
	MarkInvited     = "invited"       // AccessGranted with no request: an invitation
	MarkDeclined    = "declined"      // InvitationDeclined, or StageLeft declining an invitation
	MarkLeft        = "left"          // StageLeft off the stage
	MarkCancelled   = "cancelled"     // AccessRequestCancelled
	MarkDenied      = "denied"        // AccessDenied
	MarkKicked      = "kicked"        // Kicked (off stage, or an acceptance revoked)
	MarkBanned      = "banned"        // StageBanned
	MarkBanLifted   = "ban-lifted"    // BanLifted
	MarkWaitlisted  = "waitlisted"    // SeatWaitlisted
	MarkLapsed      = "lapsed"        // Lapsed (slot ended, invitation, request or seat offer expired, ...)
	MarkDisconnect  = "disconnected"  // Disconnected
	MarkReconnect   = "reconnected"   // Reconnected
	MarkEntered     = "entered"       // ParticipantJoined: entered the meeting
	MarkLeftMeeting = "left-meeting"  // ParticipantLeft
	MarkPermissions = "permissions"   // PermissionsChanged
	MarkSettings    = "settings"      // SettingsChanged, on the host's row
	MarkDecision    = "decision"      // on a host's row: they granted, denied, kicked, banned or lifted a ban
	MarkOther       = "other"         // an event type added later

	// The stage controls. A meeting-wide event (the stage started or
	// ended, requests closed or opened) is a mark of its own kind on the
	// host's row, where others' events are a MarkDecision; StageEnded is
	// also a MarkStageEnded on the row of each user it moved off, and a
	// RequestsClosed that denied the pending requests a MarkDenied on each
	// of their rows.
	MarkStageStarted   = "stage-started"    // StageStarted, on the host's row
	MarkStageEnded     = "stage-ended"      // StageEnded: on the host's row and each user moved off
	MarkRequestsClosed = "requests-closed"  // RequestsClosed, on the host's row
	MarkRequestsOpened = "requests-opened"  // RequestsOpened, on the host's row
	MarkCoHost         = "co-host"          // CoHostPromoted
	MarkCoHostEnded    = "co-host-ended"    // CoHostDemoted
	MarkBrought        = "brought-on-stage" // BroughtOnStage: the start of a stint the user did not choose

	// The stage's own periods, drawn as bands behind the rows: backstage
	// and ended (a live stage is the plain background), and along the top
	// the times requests were closed. Each band carries data-start and
	// data-end (RFC 3339).
	BandBackstage      = "backstage"
	BandEnded          = "ended"
	BandRequestsClosed = "requests-closed-band"
)

// markStyle is how one kind of mark looks, and what the legend says of it.
type markStyle struct {
	label string
	// shape draws the mark centred on (x, y); attrs go into its outer element.
	shape func(attrs string, x, y float64) string
}

func pathMark(class, d string) func(string, float64, float64) string {
	return func(attrs string, x, y float64) string {
		return fmt.Sprintf(`<path class="%s" %s d="%s">`, class, attrs, fmt.Sprintf(d, x, y))
	}
}

// marks lists every point mark, in legend order.
var marks = []struct {
	kind string
	markStyle
}{
	{MarkRequest, markStyle{"requested", func(a string, x, y float64) string {
		return fmt.Sprintf(`<circle class="request" %s cx="%.1f" cy="%.1f" r="4">`, a, x, y)
	}}},
	{MarkAuto, markStyle{"requested, no approval needed", func(a string, x, y float64) string {
		return fmt.Sprintf(`<circle class="auto" %s cx="%.1f" cy="%.1f" r="4">`, a, x, y)
	}}},
	{MarkGranted, markStyle{"request granted", pathMark("granted", "M%.1f %.1fm0 -5l5 5l-5 5l-5-5z")}},
	{MarkInvited, markStyle{"invited (no request)", pathMark("invited", "M%.1f %.1fm-4 -5l9 5l-9 5z")}},
	{MarkDeclined, markStyle{"invitation declined", pathMark("declined", "M%.1f %.1fm4 -5l-9 5l9 5z")}},
	{MarkCancelled, markStyle{"request withdrawn", func(a string, x, y float64) string {
		return fmt.Sprintf(`<circle class="cancelled" %s cx="%.1f" cy="%.1f" r="4">`, a, x, y)
	}}},
	{MarkDenied, markStyle{"request denied", pathMark("denied", "M%.1f %.1fm-4 -4l8 8m0-8l-8 8")}},
	{MarkKicked, markStyle{"kicked", pathMark("kicked", "M%.1f %.1fm-4 -4h8v8h-8z")}},
	{MarkLeft, markStyle{"left the stage", pathMark("left", "M%.1f %.1fm0 -8v16")}},
	{MarkBanned, markStyle{"banned from the stage", pathMark("banned", "M%.1f %.1fm-5 0a5 5 0 1 0 10 0a5 5 0 1 0-10 0m1.5-3.5l7 7")}},
	{MarkBanLifted, markStyle{"ban lifted", pathMark("ban-lifted", "M%.1f %.1fm-5 0a5 5 0 1 0 10 0a5 5 0 1 0-10 0")}},
	{MarkWaitlisted, markStyle{"seat waitlisted (stage full)", pathMark("waitlisted", "M%.1f %.1fm-4 -5h8l-8 10h8z")}},
	{MarkLapsed, markStyle{"lapsed (slot, invitation, request, offer, grace, ban)", pathMark("lapsed", "M%.1f %.1fm-5 0a5 5 0 1 0 10 0a5 5 0 1 0-10 0m5 0v-3.5m0 3.5h3")}},
	{MarkDisconnect, markStyle{"connection dropped", pathMark("disconnected", "M%.1f %.1fm-3.5 -3.5h7v7h-7z")}},
	{MarkReconnect, markStyle{"reconnected", pathMark("reconnected", "M%.1f %.1fm-3.5 -3.5h7v7h-7z")}},
	{MarkEntered, markStyle{"entered the meeting", pathMark("entered", "M%.1f %.1fm3 -6h-3v12h3")}},
	{MarkLeftMeeting, markStyle{"left the meeting", pathMark("left-meeting", "M%.1f %.1fm-3 -6h3v12h-3")}},
	{MarkPermissions, markStyle{"permissions changed", pathMark("permissions", "M%.1f %.1fm0 -5l5 5l-5 5l-5-5z")}},
	{MarkSettings, markStyle{"settings changed", pathMark("settings", "M%.1f %.1fm-5 0l2.5 -4.3h5l2.5 4.3l-2.5 4.3h-5z")}},
	{MarkDecision, markStyle{"a host's decision", pathMark("decision", "M%.1f %.1fm-3.5 -3h7l-3.5 6z")}},
	{MarkStageStarted, markStyle{"stage started", pathMark("stage-started", "M%.1f %.1fm-5 -6h2v12h-2zm4 0l8 6l-8 6z")}},
	{MarkStageEnded, markStyle{"stage ended for everyone", pathMark("stage-ended", "M%.1f %.1fm-5 -5h10v10h-10z")}},
	{MarkRequestsClosed, markStyle{"a host closed requests", pathMark("requests-closed", "M%.1f %.1fm-5 0a5 5 0 1 0 10 0a5 5 0 1 0-10 0m2 0h6")}},
	{MarkRequestsOpened, markStyle{"a host opened requests", pathMark("requests-opened", "M%.1f %.1fm-5 0a5 5 0 1 0 10 0a5 5 0 1 0-10 0m2 0h6m-3-3v6")}},
	{MarkCoHost, markStyle{"made co-host", pathMark("co-host", "M%.1f %.1fm0 -6l1.8 3.8l4.2 .6l-3 2.9l.7 4.2l-3.7-2l-3.7 2l.7-4.2l-3-2.9l4.2-.6z")}},
	{MarkCoHostEnded, markStyle{"co-host role taken", pathMark("co-host-ended", "M%.1f %.1fm0 -6l1.8 3.8l4.2 .6l-3 2.9l.7 4.2l-3.7-2l-3.7 2l.7-4.2l-3-2.9l4.2-.6z")}},
	{MarkBrought, markStyle{"brought on stage by a host", pathMark("brought", "M%.1f %.1fm-5 5l5-10l5 10l-5-3z")}},
	{MarkOther, markStyle{"other event", pathMark("other", "M%.1f %.1fm0 -4l4 4l-4 4l-4-4z")}},
}

func markOf(kind string) markStyle {
	for _, m := range marks {
		if m.kind == kind {
			return m.markStyle
		}
	}
	return markOf(MarkOther)
}

const timelineStyle = `.stint{fill:#3b7dd8}.stint.kicked{fill:#d8553b}.wait{fill:#c9c9c9}.accepted{fill:none;stroke:#2e9e4f;stroke-width:2;stroke-dasharray:4 3}` +
	`.request{fill:#f2a900}.auto{fill:#2e9e4f;opacity:.5}.granted{fill:#2e9e4f}.invited{fill:#2e9e4f}.declined{fill:#fff;stroke:#2e9e4f;stroke-width:1.5}` +
	`.cancelled{fill:#fff;stroke:#777;stroke-width:1.5}.denied{fill:none;stroke:#c62828;stroke-width:2.5}.kicked{fill:#c62828}` +
	`.left{fill:none;stroke:#222;stroke-width:2}.banned{fill:none;stroke:#000;stroke-width:2}.ban-lifted{fill:none;stroke:#000;stroke-width:1.5;stroke-dasharray:2 2}` +
	`.waitlisted{fill:#8e44ad}.lapsed{fill:#fff;stroke:#a0522d;stroke-width:1.5}.disconnected{fill:#fff;stroke:#777;stroke-width:1.5}.reconnected{fill:#777}` +
	`.entered,.left-meeting{fill:none;stroke:#17867e;stroke-width:2}.permissions{fill:#fff;stroke:#3f51b5;stroke-width:1.5}.settings{fill:#555}` +
	`.decision{fill:#1a237e}.other{fill:#e91e63}.grid{stroke:#e4e4e4}.axis{fill:#555}.name{fill:#222}.host{font-weight:bold}` +
	`.stage-started{fill:#2e7d32}.stage-ended{fill:#37474f}.requests-closed,.requests-opened{fill:#fff;stroke:#e65100;stroke-width:1.5}` +
	`.co-host{fill:#6a1b9a}.co-host-ended{fill:#fff;stroke:#6a1b9a;stroke-width:1.2}.brought{fill:#00838f}` +
	`.backstage{fill:#fff3cd}.ended{fill:#e8e8e8}.closed{fill:#e65100;opacity:.45}`

// meetingWide are the events about the whole meeting: on the host's row
// they are a mark of their own kind, not a MarkDecision.
var meetingWide = map[events.Type]string{
	events.TypeStageStarted: MarkStageStarted, events.TypeStageEnded: MarkStageEnded,
	events.TypeRequestsClosed: MarkRequestsClosed, events.TypeRequestsOpened: MarkRequestsOpened,
}

// WriteTimeline draws a meeting's history as a self-contained SVG (no
// scripts, fonts or links to fetch): one row per user who was on stage,
// asked or was invited to be, or was banned, waitlisted or kicked, and one
// per host who decided (host names in bold); a bar for each interval on
// stage, a thin bar for each wait in the request queue, a dashed bar from
// being accepted or invited until joining (or the acceptance ending); and a
// mark of its own kind for every event about a drawn user (see MarkRequest
// and the other Mark constants), explained in the legend. Each mark carries
// a <title> (a tooltip in browsers) and data-kind, data-user and
// data-version attributes for tools; a host's decision mark (and a
// meeting-wide event's mark on the host's row) carries data-by-version instead, so that data-version and data-user name each
// event once per user it concerns. The root element's data-start and
// data-end (RFC 3339) and data-x0 and data-x1 (pixels) map times to x, and
// data-top and data-bottom bound the rows, for tools that draw over it.
// The stage's own periods are shaded behind the rows (backstage, ended;
// see BandBackstage), and the times requests were closed are a strip
// along the top (BandRequestsClosed), each with a <title>.
func WriteTimeline(w io.Writer, h *projections.History, o TimelineOptions) error {
	if h == nil {
		return fmt.Errorf("replay: WriteTimeline: %w", ErrNoHistory)
	}
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
		legRow = 20
	)
	plotW := float64(o.Width - left - right)
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
	esc := html.EscapeString
	clock := func(t time.Time) string { return t.In(o.Location).Format("15:04:05") }

	// The marks, first, so that the legend lists the kinds drawn.
	var body strings.Builder
	used := map[string]bool{}
	p := func(format string, args ...any) { fmt.Fprintf(&body, format, args...) }
	mark := func(kind, user string, version uint64, by bool, t time.Time, tip string) {
		used[kind] = true
		attr := "data-version"
		if by {
			attr = "data-by-version"
		}
		yy := y(user)
		if by {
			yy -= 9 // above the host's own bars
		}
		a := fmt.Sprintf(`data-kind="%s" data-user="%s" %s="%d"`, esc(kind), esc(user), attr, version)
		p("%s<title>%s %s</title></%s>\n", markOf(kind).shape(a, x(t), yy), clock(t), esc(tip), elem(markOf(kind).shape("", 0, 0)))
	}
	bar := func(class, kind, user string, from, until time.Time, height float64, tip string, version uint64) {
		used[kind] = true
		ver := ""
		if version > 0 {
			ver = fmt.Sprintf(` data-version="%d"`, version)
		}
		p(`<rect class="%s" data-kind="%s" data-user="%s"%s x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%d"><title>%s</title></rect>`+"\n",
			class, kind, esc(user), ver, x(from), y(user)-height/2, max(x(until)-x(from), 2), height, min(int(height)/4, 3), esc(tip))
	}

	// Bars: waits, acceptances, stints (in that order, the stint on top).
	for _, r := range h.Requests {
		if r.Outcome == projections.OutcomeAuto {
			continue
		}
		until := r.DecidedAt
		if until.IsZero() {
			until = end
		}
		bar("wait", MarkWait, r.UserID, r.RequestedAt, until, 4,
			fmt.Sprintf("%s waited %s (%s)", r.UserID, projections.FormatDuration(until.Sub(r.RequestedAt)), r.Outcome), 0)
	}
	for _, a := range acceptances(h) {
		bar("accepted", MarkAccepted, a.user, a.from, a.until, 10,
			fmt.Sprintf("%s accepted %s–%s (%s), %s", a.user, clock(a.from), clock(a.until), projections.FormatDuration(a.until.Sub(a.from)), a.how), 0)
	}
	stintEnd := map[[2]any]bool{} // {user, version} of events that ended a stint
	for _, s := range h.Stints {
		until := s.Left
		if until.IsZero() {
			until = end
		}
		class := "stint"
		if s.End == projections.EndKicked {
			class += " kicked"
		}
		how := "still on stage"
		version := s.JoinedVersion
		if s.BroughtBy != "" {
			version = 0 // the brought-on-stage mark names the event
		}
		if !s.Left.IsZero() {
			how = s.End
			if s.By != "" {
				how += " by " + s.By
			}
			stintEnd[[2]any{s.UserID, s.LeftVersion}] = true
		}
		brought := ""
		if s.BroughtBy != "" {
			brought = ", brought by " + s.BroughtBy
		}
		bar(class, MarkStint, s.UserID, s.Joined, until, 14,
			fmt.Sprintf("%s on stage %s–%s (%s%s), %s", s.UserID, clock(s.Joined), clock(until), projections.FormatDuration(until.Sub(s.Joined)), brought, how), version)
	}
	requested := map[[2]any]projections.RequestRecord{} // {user, version} of a request
	decided := map[[2]any]bool{}                        // {user, version} of a decision on a request
	for _, r := range h.Requests {
		requested[[2]any{r.UserID, r.Version}] = r
		if r.DecidedVersion > 0 {
			decided[[2]any{r.UserID, r.DecidedVersion}] = true
		}
	}
	// Point marks: one per event and user it is about.
	for _, en := range h.Entries {
		tip := en.Text
		for _, u := range en.Users {
			if _, ok := row[u]; !ok {
				continue
			}
			key := [2]any{u, en.Version}
			var kind string
			switch en.Type {
			case events.TypeStageJoined:
				continue // the stint bar
			case events.TypeAccessRequested:
				kind = MarkRequest
				if r, ok := requested[key]; ok && r.Outcome == projections.OutcomeAuto {
					kind = MarkAuto
				}
			case events.TypeAccessRequestCancelled:
				kind = MarkCancelled
			case events.TypeAccessGranted:
				kind = MarkInvited
				if decided[key] {
					kind = MarkGranted
				}
			case events.TypeAccessDenied:
				kind = MarkDenied
			case events.TypeStageLeft:
				kind = MarkDeclined
				if stintEnd[key] {
					kind = MarkLeft
				}
			case events.TypeKicked:
				kind = MarkKicked
			case events.TypeStageBanned:
				kind = MarkBanned
			case events.TypeBanLifted:
				kind = MarkBanLifted
			case events.TypeSeatWaitlisted:
				kind = MarkWaitlisted
			case events.TypeLapsed:
				kind = MarkLapsed
			case events.TypeDisconnected:
				kind = MarkDisconnect
			case events.TypeReconnected:
				kind = MarkReconnect
			case events.TypeParticipantJoined:
				kind = MarkEntered
			case events.TypeParticipantLeft:
				kind = MarkLeftMeeting
			case events.TypePermissionsChanged:
				kind = MarkPermissions
			case events.TypeSettingsChanged:
				kind = MarkSettings
			case events.TypeStageEnded:
				kind = MarkStageEnded
			case events.TypeRequestsClosed:
				kind = MarkDenied // the pending requests it denied
			case events.TypeCoHostPromoted:
				kind = MarkCoHost
			case events.TypeCoHostDemoted:
				kind = MarkCoHostEnded
			case events.TypeInvitationDeclined:
				kind = MarkDeclined
			case events.TypeBroughtOnStage:
				kind = MarkBrought
			default:
				kind = MarkOther
			}
			mark(kind, u, en.Version, false, en.Time, tip)
		}
		if _, ok := row[en.Actor]; ok && en.Actor != "" && !slices.Contains(en.Users, en.Actor) {
			kind, ok := meetingWide[en.Type]
			if !ok {
				kind = MarkDecision
			}
			mark(kind, en.Actor, en.Version, true, en.Time, tip)
		}
	}

	// The stage's periods: bands behind the rows, and a strip along the
	// top while requests were closed.
	bottom := top + len(rows)*rowH
	var bands strings.Builder
	band := func(class, kind string, from, until time.Time, y0, y1 int, tip string) {
		used[kind] = true
		fmt.Fprintf(&bands, `<rect class="%s" data-kind="%s" data-start="%s" data-end="%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>`+"\n",
			class, kind, from.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano), x(from), y0, max(x(until)-x(from), 1), y1-y0, esc(tip))
	}
	for _, pe := range h.Periods {
		until := pe.End
		if until.IsZero() {
			until = end
		}
		tip := fmt.Sprintf("%s–%s (%s)", clock(pe.Start), clock(until), projections.FormatDuration(until.Sub(pe.Start)))
		if pe.By != "" {
			tip += ", by " + pe.By
		}
		switch pe.Phase {
		case aggregate.PhaseBackstage:
			band("backstage", BandBackstage, pe.Start, until, top-12, bottom, "backstage "+tip)
		case aggregate.PhaseEnded:
			band("ended", BandEnded, pe.Start, until, top-12, bottom, "stage ended "+tip)
		}
	}
	for _, c := range h.Closures {
		until := c.Opened
		if until.IsZero() {
			until = end
		}
		tip := fmt.Sprintf("requests closed %s–%s (%s), by %s", clock(c.Closed), clock(until), projections.FormatDuration(until.Sub(c.Closed)), c.ClosedBy)
		if len(c.Denied) > 0 {
			tip += ", denying " + strings.Join(c.Denied, ", ")
		}
		band("closed", BandRequestsClosed, c.Closed, until, top-16, top-12, tip)
	}

	// The picture: header, axis, names, the bars and marks, the legend.
	var legend []string
	if used[MarkStint] {
		legend = append(legend, `<rect class="stint" x="0" y="-6" width="22" height="12" rx="3"/>`, "on stage")
		legend = append(legend, `<rect class="stint kicked" x="0" y="-6" width="22" height="12" rx="3"/>`, "on stage, kicked off")
	}
	if used[MarkWait] {
		legend = append(legend, `<rect class="wait" x="0" y="-2" width="22" height="4"/>`, "waiting for a decision")
	}
	if used[MarkAccepted] {
		legend = append(legend, `<rect class="accepted" x="0" y="-5" width="22" height="10" rx="2"/>`, "accepted, not on stage yet")
	}
	if used[BandBackstage] {
		legend = append(legend, `<rect class="backstage" x="0" y="-6" width="22" height="12"/>`, "backstage")
	}
	if used[BandEnded] {
		legend = append(legend, `<rect class="ended" x="0" y="-6" width="22" height="12"/>`, "stage ended")
	}
	if used[BandRequestsClosed] {
		legend = append(legend, `<rect class="closed" x="0" y="-2" width="22" height="4"/>`, "requests closed (period)")
	}
	for _, m := range marks {
		if used[m.kind] {
			s := m.shape("", 11, 0)
			legend = append(legend, s+"</"+elem(s)+">", m.label)
		}
	}
	legendAt := make([][2]int, len(legend)/2) // x, row of each item
	lx, lrows := 0, 1
	for i := 0; i < len(legend); i += 2 {
		wd := 28 + 7*len(legend[i+1]) + 20
		if lx > 0 && left+lx+wd > o.Width-right {
			lx, lrows = 0, lrows+1
		}
		legendAt[i/2] = [2]int{lx, lrows - 1}
		lx += wd
	}
	height := bottom + 44 + lrows*legRow + 10

	bw := bufio.NewWriter(w)
	q := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	q(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	q(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12" data-start="%s" data-end="%s" data-x0="%d" data-x1="%d" data-top="%d" data-bottom="%d">`+"\n",
		o.Width, height, o.Width, height, start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano), left, o.Width-right, top-12, bottom)
	q(`<title>%s</title>`+"\n", esc(o.Title))
	q("<style>%s</style>\n", timelineStyle)
	q(`<rect width="100%%" height="100%%" fill="#fff"/>` + "\n")
	bw.WriteString(bands.String())
	q(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", left, esc(o.Title))
	q(`<text x="%d" y="44" class="axis">%s – %s UTC, %s</text>`+"\n", left,
		esc(start.UTC().Format("2006-01-02 15:04:05")), esc(end.UTC().Format("15:04:05")), esc(subtitle(h)))

	step := tickStep(span)
	format := "15:04"
	if step < time.Minute {
		format = "15:04:05"
	}
	q(`<g class="ticks">` + "\n")
	for t := start.Truncate(step); !t.After(end); t = t.Add(step) {
		if t.Before(start) {
			continue
		}
		xx := x(t)
		q(`<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>`+"\n", xx, top-8, xx, bottom)
		q(`<text class="axis" data-tick="%s" x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", t.UTC().Format(time.RFC3339), xx, bottom+16, t.In(o.Location).Format(format))
	}
	q("</g>\n")

	hosts := map[string]bool{}
	for _, e := range h.Entries {
		if e.Role == "host" || e.Role == "co-host" {
			hosts[e.Actor] = true
		}
	}
	for _, u := range rows {
		class := "name"
		if hosts[u] {
			class += " host"
		}
		q(`<text class="%s" x="%d" y="%.1f" text-anchor="end" data-user="%s">%s</text>`+"\n", class, left-10, y(u)+4, esc(u), esc(u))
	}
	bw.WriteString(body.String())
	q(`<g class="legend" transform="translate(%d %d)">`+"\n", left, bottom+44)
	for i := 0; i < len(legend); i += 2 {
		at := legendAt[i/2]
		q(`<g transform="translate(%d %d)">%s<text x="28" y="4">%s</text></g>`+"\n", at[0], at[1]*legRow, legend[i], esc(legend[i+1]))
	}
	q("</g>\n</svg>\n")
	return bw.Flush()
}

// elem returns the element name a shape's opening tag starts with.
func elem(open string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(open, "<"), " ")
	return name
}

// subtitle counts people, not intervals: "5 people on stage (7 intervals), 9 requests".
func subtitle(h *projections.History) string {
	people := map[string]bool{}
	for _, s := range h.Stints {
		people[s.UserID] = true
	}
	s := plural(len(people), "person", "people") + " on stage"
	if len(h.Stints) != len(people) {
		s += " (" + plural(len(h.Stints), "interval", "intervals") + ")"
	}
	return s + ", " + plural(countReal(h.Requests), "request", "requests")
}

// acceptance is an interval a user was accepted to join the stage (granted,
// invited or auto-accepted) and not on it yet.
type acceptance struct {
	user        string
	from, until time.Time
	how         string
}

// acceptances finds, for each grant, invitation and auto-accepted request,
// the next event about the user that ended the acceptance: joining the stage,
// declining, a kick, a lapse, a ban, a waitlisting, leaving the meeting or a
// permission change (or the end of the log).
func acceptances(h *projections.History) []acceptance {
	var out []acceptance
	open := map[string]int{} // user -> index in out
	auto := map[[2]any]bool{}
	for _, r := range h.Requests {
		if r.Outcome == projections.OutcomeAuto {
			auto[[2]any{r.UserID, r.Version}] = true
		}
	}
	for _, en := range h.Entries {
		for _, u := range en.Users {
			if i, ok := open[u]; ok {
				switch en.Type {
				case events.TypeStageJoined, events.TypeStageLeft, events.TypeKicked, events.TypeLapsed, events.TypeStageBanned,
					events.TypeSeatWaitlisted, events.TypeParticipantLeft, events.TypePermissionsChanged, events.TypeAccessDenied,
					events.TypeStageEnded, events.TypeInvitationDeclined, events.TypeBroughtOnStage:
					out[i].until = en.Time
					out[i].how = acceptanceEnd[en.Type]
					delete(open, u)
				}
			}
			if en.Type == events.TypeAccessGranted || en.Type == events.TypeAccessRequested && auto[[2]any{u, en.Version}] {
				if _, ok := open[u]; !ok {
					open[u] = len(out)
					out = append(out, acceptance{user: u, from: en.Time, until: h.End, how: "still accepted"})
				}
			}
		}
	}
	return out
}

// acceptanceEnd says how an event ended an acceptance.
var acceptanceEnd = map[events.Type]string{
	events.TypeStageJoined: "then joined", events.TypeStageLeft: "then declined", events.TypeKicked: "revoked by a kick",
	events.TypeLapsed: "then lapsed", events.TypeStageBanned: "ended by a ban", events.TypeSeatWaitlisted: "then waitlisted (stage full)",
	events.TypeParticipantLeft: "then left the meeting", events.TypePermissionsChanged: "ended by a permission change",
	events.TypeAccessDenied: "then denied", events.TypeStageEnded: "withdrawn: the stage ended",
	events.TypeInvitationDeclined: "then declined", events.TypeBroughtOnStage: "then brought on stage",
}

// timelineRows lists the users to draw, in order of first mention: those
// who were on stage, requested, were invited, banned, waitlisted or kicked,
// and the hosts who decided (granted, denied, kicked, banned, lifted a ban
// or changed the settings). Users who only entered and left the meeting
// get no row.
func timelineRows(h *projections.History) []string {
	keep := map[string]bool{}
	for _, s := range h.Stints {
		keep[s.UserID] = true
	}
	for _, r := range h.Requests {
		keep[r.UserID] = true
	}
	for _, en := range h.Entries {
		switch en.Type {
		case events.TypeParticipantJoined, events.TypeParticipantLeft, events.TypePermissionsChanged,
			events.TypeDisconnected, events.TypeReconnected, events.TypeLapsed:
			continue
		}
		for _, u := range en.Users {
			keep[u] = true
		}
		if en.Actor != "" {
			keep[en.Actor] = true
		}
	}
	var out []string
	for _, u := range h.Users() {
		if keep[u] {
			out = append(out, u)
		}
	}
	return slices.Clip(out)
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

// tickStep picks the axis step: at most 12 ticks, seconds for short meetings.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
		6 * time.Hour, 24 * time.Hour} {
		if span/s <= 12 {
			return s
		}
	}
	return 7 * 24 * time.Hour
}
