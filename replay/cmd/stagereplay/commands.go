package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type meetingsCmd struct {
	sourceArgs
	JSON bool `help:"Write JSON."`
}

func (c *meetingsCmd) Run(ctx context.Context, e *env) error {
	src, done, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	ms, err := replay.Meetings(ctx, src)
	if err != nil {
		return err
	}
	if c.JSON {
		if ms == nil {
			ms = []replay.Meeting{}
		}
		return writeJSON(e.stdout, ms)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEETING\tEVENTS\tVERSION\tFIRST\tLAST")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", m.ID, m.Events, m.Version, m.First.UTC().Format(time.RFC3339), m.Last.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

type rosterCmd struct {
	sourceArgs
	filterArgs
	JSON bool `help:"Write JSON (the same roster the live projection serves)."`
}

func (c *rosterCmd) Run(ctx context.Context, e *env) error {
	s, err := replayState(ctx, e, &c.sourceArgs, &c.filterArgs)
	if err != nil {
		return err
	}
	r := projections.RosterOf(s)
	if c.JSON {
		return writeJSON(e.stdout, r)
	}
	w := e.stdout
	fmt.Fprintf(w, "meeting %s at version %d%s\n", r.MeetingID, r.Version, atTime(s))
	fmt.Fprintf(w, "on stage (%d): %s\n", len(r.OnStage), list(r.OnStage))
	fmt.Fprintf(w, "accepted (%d): %s\n", len(r.Accepted), list(r.Accepted))
	fmt.Fprintf(w, "requests (%d):\n", len(r.Requests))
	writeRequests(w, s, r.Requests)
	fmt.Fprintf(w, "participants (%d):\n", len(r.Participants))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range r.Participants {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tsince %s\n", p.UserID, projections.Role(s, p.UserID), p.Status, clock(p.Since))
	}
	return tw.Flush()
}

type requestsCmd struct {
	sourceArgs
	filterArgs
	JSON bool `help:"Write JSON."`
}

func (c *requestsCmd) Run(ctx context.Context, e *env) error {
	s, err := replayState(ctx, e, &c.sourceArgs, &c.filterArgs)
	if err != nil {
		return err
	}
	reqs := projections.Requests(s)
	if c.JSON {
		return writeJSON(e.stdout, reqs)
	}
	fmt.Fprintf(e.stdout, "meeting %s at version %d%s: %d pending requests\n", s.MeetingID(), s.Version(), atTime(s), len(reqs))
	writeRequests(e.stdout, s, reqs)
	return nil
}

func replayState(ctx context.Context, e *env, sa *sourceArgs, fa *filterArgs) (*aggregate.State, error) {
	src, done, err := sa.open(ctx, e)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := fa.resolve(ctx, src)
	if err != nil {
		return nil, err
	}
	return replay.State(ctx, src, f)
}

func atTime(s *aggregate.State) string {
	if s.LastTime().IsZero() {
		return ""
	}
	return " (" + s.LastTime().UTC().Format("2006-01-02 15:04:05") + " UTC)"
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ", ")
}

func writeRequests(w io.Writer, s *aggregate.State, reqs []projections.AccessRequest) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range reqs {
		fmt.Fprintf(tw, "  %d.\t%s\tsince %s\twaiting %s\n", r.Position, r.UserID, clock(r.RequestedAt),
			projections.FormatDuration(s.LastTime().Sub(r.RequestedAt)))
	}
	tw.Flush()
}

type historyCmd struct {
	sourceArgs
	filterArgs
	User string `short:"u" help:"Only what concerns this user."`
	JSON bool   `help:"Write JSON."`
}

func (c *historyCmd) Run(ctx context.Context, e *env) error {
	h, err := replayHistory(ctx, e, &c.sourceArgs, &c.filterArgs)
	if err != nil {
		return err
	}
	if c.User != "" {
		if !slices.Contains(h.Users(), c.User) {
			return fmt.Errorf("user %q does not appear in meeting %s", c.User, h.MeetingID)
		}
		h = h.ForUser(c.User)
	}
	if c.JSON {
		return writeJSON(e.stdout, h)
	}
	w := e.stdout
	title := "meeting " + h.MeetingID
	if c.User != "" {
		title = c.User + " in " + title
	}
	if len(h.Entries) > 0 {
		title += ", " + h.Start.UTC().Format("2006-01-02") + " (UTC)"
	}
	fmt.Fprintln(w, title)
	for _, en := range h.Entries {
		fmt.Fprintf(w, "%s %s\n", clock(en.Time), en.Text)
	}
	writeSummary(w, h)
	return nil
}

func replayHistory(ctx context.Context, e *env, sa *sourceArgs, fa *filterArgs) (*projections.History, error) {
	src, done, err := sa.open(ctx, e)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := fa.resolve(ctx, src)
	if err != nil {
		return nil, err
	}
	return replay.History(ctx, src, f)
}

// writeSummary prints time on stage and request outcomes per user.
func writeSummary(w io.Writer, h *projections.History) {
	type total struct {
		stints int
		on     time.Duration
		kicked int
	}
	var order []string
	totals := map[string]*total{}
	for _, s := range h.Stints {
		t := totals[s.UserID]
		if t == nil {
			t = &total{}
			totals[s.UserID] = t
			order = append(order, s.UserID)
		}
		t.stints++
		t.on += s.Duration(h.End)
		if s.End == projections.EndKicked {
			t.kicked++
		}
	}
	if len(order) > 0 {
		fmt.Fprintln(w, "\ntime on stage:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, u := range order {
			t := totals[u]
			kicked := ""
			if t.kicked > 0 {
				kicked = fmt.Sprintf(", kicked %d×", t.kicked)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d interval(s)%s\n", u, projections.FormatDuration(t.on), t.stints, kicked)
		}
		tw.Flush()
	}
	outcomes := map[string]int{}
	var waits []time.Duration
	var decided []string
	for _, r := range h.Requests {
		if r.Outcome == projections.OutcomeAuto {
			continue
		}
		outcomes[r.Outcome]++
		if r.Outcome == projections.OutcomeGranted || r.Outcome == projections.OutcomeDenied {
			waits = append(waits, r.Wait)
			decided = append(decided, r.DecidedBy)
		}
	}
	if len(outcomes) == 0 {
		return
	}
	var parts []string
	for _, k := range []string{projections.OutcomeGranted, projections.OutcomeDenied, projections.OutcomeCanceled, projections.OutcomePending} {
		if n := outcomes[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
			delete(outcomes, k)
		}
	}
	rest := make([]string, 0, len(outcomes))
	for k := range outcomes {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", outcomes[k], k))
	}
	fmt.Fprintf(w, "\nrequests: %s\n", strings.Join(parts, ", "))
	if len(waits) > 0 {
		slices.Sort(waits)
		fmt.Fprintf(w, "  wait for a decision: median %s, longest %s\n",
			projections.FormatDuration(waits[len(waits)/2]), projections.FormatDuration(waits[len(waits)-1]))
		by := map[string]int{}
		for _, d := range decided {
			by[d]++
		}
		var deciders []string
		for d := range by {
			deciders = append(deciders, d)
		}
		slices.Sort(deciders)
		var ds []string
		for _, d := range deciders {
			ds = append(ds, fmt.Sprintf("%s %d", d, by[d]))
		}
		fmt.Fprintf(w, "  decided by: %s\n", strings.Join(ds, ", "))
	}
}

type timelineCmd struct {
	sourceArgs
	filterArgs
	User   string `short:"u" help:"Draw only this user's row (and the hosts who decided for them)."`
	Output string `short:"o" help:"Write the SVG to this file (default: standard output)." type:"path"`
	Width  int    `help:"Picture width in pixels." default:"1100"`
}

func (c *timelineCmd) Run(ctx context.Context, e *env) error {
	h, err := replayHistory(ctx, e, &c.sourceArgs, &c.filterArgs)
	if err != nil {
		return err
	}
	opts := replay.TimelineOptions{Width: c.Width}
	if c.User != "" {
		if !slices.Contains(h.Users(), c.User) {
			return fmt.Errorf("user %q does not appear in meeting %s", c.User, h.MeetingID)
		}
		h = h.ForUser(c.User)
		opts.Title = "Stage timeline: " + c.User + " in " + h.MeetingID
	}
	return writeTo(c.Output, e.stdout, func(w io.Writer) error {
		return replay.WriteTimeline(w, h, opts)
	})
}

// writeTo runs f on the file path, or on stdout when path is empty or "-".
func writeTo(path string, stdout io.Writer, f func(io.Writer) error) error {
	if path == "" || path == "-" {
		return f(stdout)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type verifyCmd struct {
	sourceArgs
	Meeting      string        `short:"m" help:"Verify only this meeting."`
	JSON         bool          `help:"Write the report as JSON."`
	KeyRetention time.Duration `name:"key-retention" default:"24h" help:"The store's idempotency key retention: a command key stored twice within it is a duplicate-key finding."`
}

func (c *verifyCmd) Run(ctx context.Context, e *env) error {
	src, done, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	if c.KeyRetention <= 0 {
		return fmt.Errorf("--key-retention %v: want a positive duration", c.KeyRetention)
	}
	rep, err := replay.Verify(ctx, src.Events(ctx, c.Meeting), replay.WithKeyRetention(c.KeyRetention))
	if err != nil {
		return err
	}
	if c.Meeting != "" && rep.Events == 0 {
		return fmt.Errorf("%w: %q", replay.ErrUnknownMeeting, c.Meeting)
	}
	if c.JSON {
		out := struct {
			OK bool `json:"ok"`
			*replay.Report
		}{rep.OK(), rep}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		w := e.stdout
		for _, f := range rep.Findings {
			loc := fmt.Sprintf("seq %d", f.Seq)
			if f.MeetingID != "" {
				loc += fmt.Sprintf(" %s v%d", f.MeetingID, f.Version)
			}
			fmt.Fprintf(w, "FINDING %s: %s: %s\n", loc, f.Kind, f.Reason)
		}
		if len(rep.Unchecked) > 0 {
			var ts []string
			for t, n := range rep.Unchecked {
				ts = append(ts, fmt.Sprintf("%s×%d", t, n))
			}
			slices.Sort(ts)
			fmt.Fprintf(w, "note: legality not re-decided for %s (no command known for these types)\n", strings.Join(ts, ", "))
		}
		if rep.OK() {
			fmt.Fprintf(w, "ok: %s in %s: versions continuous, hash chain intact, every event legal\n", plural(rep.Events, "event"), plural(rep.Meetings, "meeting"))
		} else {
			fmt.Fprintf(w, "FAILED: %s (%s) in %s, %s\n", plural(len(rep.Findings), "finding"), kinds(rep), plural(rep.Events, "event"), plural(rep.Meetings, "meeting"))
		}
	}
	if !rep.OK() {
		return findingsError(len(rep.Findings))
	}
	return nil
}

func kinds(r *replay.Report) string {
	var out []string
	for _, k := range r.Kinds() {
		out = append(out, string(k))
	}
	return strings.Join(out, ", ")
}

type exportCmd struct {
	sourceArgs
	Meeting string `short:"m" help:"Export only this meeting."`
	Output  string `short:"o" help:"Write to this file (default: standard output)." type:"path"`
}

func (c *exportCmd) Run(ctx context.Context, e *env) error {
	src, done, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	var n int
	err = writeTo(c.Output, e.stdout, func(w io.Writer) error {
		var err error
		n, err = replay.WriteJSONL(w, src.Events(ctx, c.Meeting))
		return err
	})
	if err != nil {
		return err
	}
	if c.Meeting != "" && n == 0 {
		return fmt.Errorf("%w: %q", replay.ErrUnknownMeeting, c.Meeting)
	}
	if c.Output != "" && c.Output != "-" {
		fmt.Fprintf(e.stderr, "exported %d events to %s\n", n, c.Output)
	}
	return nil
}

type importCmd struct {
	File         string        `arg:"" help:"JSON Lines export to read (- for stdin)."`
	To           string        `required:"" help:"Data directory of the embedded default to append the events to (created if needed)." type:"path"`
	DryRun       bool          `name:"dry-run" help:"Check everything (against the data directory's copy too) and say what would be imported; store nothing."`
	KeyRetention time.Duration `name:"key-retention" default:"24h" help:"The idempotency key retention the events were stored under: a command key stored twice within it refuses the meeting."`
}

// Run checks the whole file, then imports it meeting by meeting, all or
// nothing per meeting (see replay.Import), and prints one line per meeting
// and a summary. A refused meeting is an error (exit 2) naming it.
func (c *importCmd) Run(ctx context.Context, e *env) error {
	if c.KeyRetention <= 0 {
		return fmt.Errorf("--key-retention %v: want a positive duration", c.KeyRetention)
	}
	src, err := replay.Open(ctx, c.File)
	if err != nil {
		return err
	}
	defer src.Close()
	opts := []replay.ImportOption{replay.WithImportVerify(replay.WithKeyRetention(c.KeyRetention))}
	var store eventstore.Store
	closeStore := func() error { return nil }
	if _, serr := os.Stat(filepath.Join(c.To, "jetstream")); c.DryRun && serr != nil {
		// A dry run creates nothing: a directory with no log is an empty store.
		store = eventstore.NewMemory()
	} else {
		dd, err := replay.OpenDataDir(ctx, c.To)
		if err != nil {
			return err
		}
		store, closeStore = dd.Store, dd.Close
	}
	if c.DryRun {
		opts = append(opts, replay.ImportDryRun())
	}
	rep, err := replay.Import(ctx, store, src.Events(ctx, ""), opts...)
	if cerr := closeStore(); err == nil && cerr != nil {
		return cerr
	}
	if rep != nil {
		writeImport(e.stdout, rep, c.To)
	}
	if err == nil && rep.Events == 0 && rep.Malformed == 0 {
		return fmt.Errorf("%s holds no events: nothing to import", c.File)
	}
	return err
}

// writeImport prints an import's outcome per meeting and a summary.
func writeImport(w io.Writer, rep *replay.ImportReport, dir string) {
	would := func(done, dry string) string {
		if rep.DryRun {
			return dry
		}
		return done
	}
	const maxFindings = 5
	count := map[replay.ImportOutcome]int{}
	var refused []string
	for _, m := range rep.Meetings {
		count[m.Outcome]++
		switch m.Outcome {
		case replay.Imported:
			fmt.Fprintf(w, "%s: %s %s (versions %d-%d, %s)\n", m.MeetingID, would("imported", "would import"), plural(m.Appended, "event"),
				m.From, m.From+uint64(m.Appended)-1, plural(m.Batches, "append"))
		case replay.Completed:
			fmt.Fprintf(w, "%s: %s from version %d: %s (the store held versions 1-%d)\n", m.MeetingID, would("completed", "would complete"),
				m.From, plural(m.Appended, "event"), m.Held)
		case replay.AlreadyPresent:
			more := ""
			if m.Held > uint64(m.Events) {
				more = fmt.Sprintf("; the store holds %d later", m.Held-uint64(m.Events))
			}
			fmt.Fprintf(w, "%s: already imported (%s%s)\n", m.MeetingID, plural(m.Events, "event"), more)
		case replay.Interrupted:
			refused = append(refused, m.MeetingID)
			fmt.Fprintf(w, "%s: INTERRUPTED after %s (versions 1-%d stored; rerun to complete): %s\n", m.MeetingID,
				plural(m.Appended, "event"), m.Held+uint64(m.Appended), m.Reason)
		default:
			refused = append(refused, m.MeetingID)
			fmt.Fprintf(w, "%s: REFUSED, nothing stored: %s\n", m.MeetingID, m.Reason)
			for i, f := range m.Findings {
				if i == maxFindings {
					fmt.Fprintf(w, "    ... and %d more\n", len(m.Findings)-maxFindings)
					break
				}
				fmt.Fprintf(w, "    FINDING seq %d v%d: %s: %s\n", f.Seq, f.Version, f.Kind, f.Reason)
			}
			for _, err := range m.Malformed {
				fmt.Fprintf(w, "    MALFORMED %v\n", err)
			}
		}
	}
	var parts []string
	for _, o := range []struct {
		k    replay.ImportOutcome
		name string
	}{{replay.Imported, would("imported", "to import")}, {replay.Completed, would("completed", "to complete")}, {replay.AlreadyPresent, "already present"},
		{replay.Interrupted, "interrupted"}, {replay.Refused, "refused"}} {
		if n := count[o.k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o.name))
		}
	}
	summary := fmt.Sprintf("%s %s into %s", would("imported", "dry run, nothing stored: would import"), plural(rep.Appended, "event"), dir)
	if len(parts) > 0 {
		summary += ": " + plural(len(rep.Meetings), "meeting") + " (" + strings.Join(parts, ", ") + ")"
	}
	if rep.Whole != "" {
		summary += "; the whole file was refused: " + rep.Whole
	} else if len(refused) > 0 {
		summary += "; not imported: " + strings.Join(refused, ", ")
	}
	fmt.Fprintln(w, summary)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
