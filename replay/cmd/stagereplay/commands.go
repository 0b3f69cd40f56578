package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	st := r.Stage
	if c.JSON {
		return writeJSON(e.stdout, r)
	}
	cohosts, invited := coHostsAndInvited(r)
	w := e.stdout
	fmt.Fprintf(w, "meeting %s at version %d%s\n", r.MeetingID, r.Version, atTime(s))
	fmt.Fprintf(w, "stage: %s", strings.ToLower(st.Phase.String()))
	if !st.Since.IsZero() {
		fmt.Fprintf(w, " since %s", clock(st.Since))
	}
	if st.RequestsOpen {
		fmt.Fprintf(w, "; requests open")
	} else {
		fmt.Fprintf(w, "; requests closed since %s", clock(st.RequestsSince))
	}
	fmt.Fprintln(w)
	if len(cohosts) > 0 {
		fmt.Fprintf(w, "co-hosts (%d): %s\n", len(cohosts), list(cohosts))
	}
	fmt.Fprintf(w, "on stage (%d): %s\n", len(r.OnStage), list(r.OnStage))
	accepted := slices.Clone(r.Accepted)
	for i, u := range accepted {
		if slices.Contains(invited, u) {
			accepted[i] += " (invited)"
		}
	}
	fmt.Fprintf(w, "accepted (%d): %s\n", len(r.Accepted), list(accepted))
	fmt.Fprintf(w, "requests (%d):\n", len(r.Requests))
	writeRequests(w, s, r.Requests)
	fmt.Fprintf(w, "participants (%d):\n", len(r.Participants))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range r.Participants {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tsince %s\n", p.UserID, projections.Role(s, p.UserID), p.Status, clock(p.Since))
	}
	return tw.Flush()
}

// coHostsAndInvited returns, from the roster's entries, the co-hosts and
// the accepted users who were invited (not approved).
func coHostsAndInvited(r projections.Roster) (cohosts, invited []string) {
	for _, p := range r.Participants {
		if p.CoHost {
			cohosts = append(cohosts, p.UserID)
		}
		if p.Invited {
			invited = append(invited, p.UserID)
		}
	}
	return cohosts, invited
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
	writePeriods(w, h)
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

// writePeriods prints the stage's own periods (backstage, live, ended)
// and the times requests were closed, when the meeting used them: a stage
// live from start to end with requests always open prints nothing.
func writePeriods(w io.Writer, h *projections.History) {
	if len(h.Closures) == 0 && (len(h.Periods) == 0 || len(h.Periods) == 1 && h.Periods[0].Phase == aggregate.PhaseLive) {
		return
	}
	until := func(end time.Time) string {
		if end.IsZero() {
			return "(lasts)"
		}
		return clock(end)
	}
	fmt.Fprintln(w, "\nstage periods:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range h.Periods {
		by := ""
		if p.By != "" {
			by = "by " + p.By
		}
		fmt.Fprintf(tw, "  %s\t%s–%s\t%s\t%s\n", strings.ToLower(p.Phase.String()), clock(p.Start), until(p.End),
			projections.FormatDuration(p.Duration(h.End)), by)
	}
	tw.Flush()
	if len(h.Closures) == 0 {
		return
	}
	fmt.Fprintln(w, "requests closed:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range h.Closures {
		how := "by " + c.ClosedBy
		if len(c.Denied) > 0 {
			how += ", denying " + strings.Join(c.Denied, ", ")
		}
		if c.OpenedBy != "" {
			how += "; opened by " + c.OpenedBy
		}
		fmt.Fprintf(tw, "  %s–%s\t%s\t%s\n", clock(c.Closed), until(c.Opened), projections.FormatDuration(c.Duration(h.End)), how)
	}
	tw.Flush()
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
		fmt.Fprintf(w, "  wait for a decision: median %s, longest %s\n",
			projections.FormatDuration(replay.MedianDuration(waits)), projections.FormatDuration(slices.Max(waits)))
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
	JSON         bool          `help:"Write the report as JSON (every finding, each with the index of the finding it follows from)."`
	All          bool          `help:"List every finding, not only each cause with a count of what follows from it."`
	KeyRetention time.Duration `name:"key-retention" default:"24h" help:"The store's idempotency key retention: a command key stored twice within it is a duplicate-key finding."`
	proofArgs
}

// proofArgs are the key and the checkpoints to prove a log against.
type proofArgs struct {
	PublicKey   string   `name:"public-key" help:"The deployment's Ed25519 public key (PEM): prove the log against its signed checkpoints (those kept in the store, and --checkpoints)." type:"path"`
	Checkpoints []string `name:"checkpoints" help:"A JSON Lines file of signed checkpoints (the engine's checkpoint.File); repeatable. Needs --public-key." type:"path"`
}

func (c *verifyCmd) Run(ctx context.Context, e *env) error {
	if c.KeyRetention <= 0 {
		return fmt.Errorf("--key-retention %v: want a positive duration", c.KeyRetention)
	}
	src, done, err := c.open(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	opts := []replay.VerifyOption{replay.WithKeyRetention(c.KeyRetention)}
	if o, err := c.option(ctx, e, src, c.Meeting); err != nil {
		return err
	} else if o != nil {
		opts = append(opts, o)
	}
	if hs, ok := src.(replay.HistorySource); ok {
		// The store's high-water marks: events it saw stored that are gone.
		h, recs, err := hs.History(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, replay.WithHistory(h, recs, c.Meeting))
	}
	rep, err := replay.Verify(ctx, src.Events(ctx, c.Meeting), opts...)
	if err != nil {
		return err
	}
	if c.Meeting != "" && rep.Events == 0 && slices.Equal(rep.Kinds(), []replay.FindingKind{replay.Empty}) {
		return fmt.Errorf("%w: %q", replay.ErrUnknownMeeting, c.Meeting)
	}
	if c.JSON {
		out := struct {
			OK     bool `json:"ok"`
			Causes int  `json:"causes"`
			*replay.Report
		}{rep.OK(), len(rep.Causes()), rep}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		w := e.stdout
		for _, g := range rep.Groups() {
			if g.Cause.Kind == replay.Empty {
				continue // the verdict says it
			}
			fmt.Fprintf(w, "FINDING %s\n", findingLine(g.Cause))
			switch {
			case len(g.Consequences) == 0:
			case c.All:
				for _, i := range g.Consequences {
					fmt.Fprintf(w, "  and %s\n", findingLine(rep.Findings[i]))
				}
			default:
				verb := "follow"
				if len(g.Consequences) == 1 {
					verb = "follows"
				}
				fmt.Fprintf(w, "  and %s that %s from it: %s; --all lists them\n",
					more(rep, g), verb, countKinds(rep, g.Consequences))
			}
		}
		if len(rep.Unchecked) > 0 {
			var ts []string
			for t, n := range rep.Unchecked {
				ts = append(ts, fmt.Sprintf("%s×%d", t, n))
			}
			slices.Sort(ts)
			fmt.Fprintf(w, "note: legality not re-decided for %s (no command known for these types)\n", strings.Join(ts, ", "))
		}
		c.summary(rep).write(w)
		if rep.Events > 0 {
			writeProof(w, rep.Proof)
		}
	}
	if !rep.OK() {
		return findingsError(len(rep.Findings))
	}
	return nil
}

func findingLine(f replay.Finding) string {
	loc := fmt.Sprintf("seq %d", f.Seq)
	if f.MeetingID != "" {
		loc += fmt.Sprintf(" %s v%d", f.MeetingID, f.Version)
	}
	return fmt.Sprintf("%s: %s: %s", loc, f.Kind, f.Reason)
}

// more says how many findings follow from a cause: "106 more findings in
// meeting m" (or "in 2 meetings").
func more(r *replay.Report, g replay.Group) string {
	var ms []string
	for _, i := range g.Consequences {
		if m := r.Findings[i].MeetingID; m != "" && !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
	}
	n := plural(len(g.Consequences), "more finding")
	switch len(ms) {
	case 0:
		return n
	case 1:
		return n + " in meeting " + ms[0]
	}
	return n + " in " + plural(len(ms), "meeting")
}

// countKinds counts the findings at idx by kind, most first: "80 time, 26 illegal".
func countKinds(r *replay.Report, idx []int) string {
	n := map[replay.FindingKind]int{}
	for _, i := range idx {
		n[r.Findings[i].Kind]++
	}
	ks := slices.Collect(maps.Keys(n))
	slices.SortFunc(ks, func(a, b replay.FindingKind) int {
		if n[a] != n[b] {
			return n[b] - n[a]
		}
		return strings.Compare(string(a), string(b))
	})
	var out []string
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(out, ", ")
}

// verifySummary is the end of verify's text output: ok, EMPTY or FAILED, and
// what the check covered.
type verifySummary struct {
	source string
	rep    *replay.Report
	// checked says what was checked, a phrase each, in the order printed.
	checked []string
}

func (c *verifyCmd) summary(rep *replay.Report) verifySummary {
	return verifySummary{source: c.Source, rep: rep, checked: []string{
		"versions continuous",
		"hash chain intact",
		"every event legal",
		"time in order",
		"no command key reused within " + c.KeyRetention.String(),
	}}
}

func (v verifySummary) write(w io.Writer) {
	r := v.rep
	what := strings.Join(v.checked, ", ")
	switch {
	case r.Events == 0 && slices.Equal(r.Kinds(), []replay.FindingKind{replay.Empty}):
		fmt.Fprintf(w, "EMPTY: %s holds no events: nothing to verify\n", v.source)
	case r.OK():
		fmt.Fprintf(w, "ok: %s in %s: %s\n", plural(r.Events, "event"), plural(r.Meetings, "meeting"), what)
	default:
		fmt.Fprintf(w, "FAILED: %s from %s (%s) in %s, %s\n", plural(len(r.Findings), "finding"), plural(len(r.Causes()), "cause"),
			kinds(r), plural(r.Events, "event"), plural(r.Meetings, "meeting"))
		fmt.Fprintf(w, "checked: %s\n", what)
	}
}

// option loads the public key and the checkpoints (those the source keeps
// and those of the --checkpoints files, of meeting if it is not empty) as
// a verify option; nil without --public-key.
func (c *proofArgs) option(ctx context.Context, e *env, src replay.Source, meeting string) (replay.VerifyOption, error) {
	pub, cps, err := c.load(ctx, e, src, meeting)
	if err != nil || pub == nil {
		return nil, err
	}
	return replay.WithCheckpoints(pub, cps), nil
}

// writeProof says what the checkpoints proved, and what they did not.
func writeProof(w io.Writer, p *replay.Proof) {
	if p == nil {
		fmt.Fprintln(w, "not proven: no --public-key given; an intact hash chain shows the log agrees with itself, not that it is the log that was written (whoever can write the store can edit an event and re-hash the chain)")
		return
	}
	proven, unproven := p.ProvenEvents()
	var none []string
	for _, m := range p.Meetings {
		if m.Proven == 0 {
			none = append(none, m.MeetingID)
		}
	}
	fmt.Fprintf(w, "proven: %d of %s are exactly as signed by key %s (%d of %s valid)\n",
		proven, plural(int(proven+unproven), "event"), p.Key, p.Valid, plural(p.Checkpoints, "checkpoint"))
	if unproven > 0 {
		fmt.Fprintf(w, "not proven: %s, after the last checkpoint that matches the log", plural(int(unproven), "event"))
		if len(none) > 0 {
			fmt.Fprintf(w, "; nothing proven in %s: %s", plural(len(none), "meeting"), list(none))
		}
		fmt.Fprintln(w, " (the engine writes a checkpoint every interval and when it closes)")
	}
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
	proofArgs
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
	vopts := []replay.VerifyOption{replay.WithKeyRetention(c.KeyRetention)}
	// With the deployment's key, a meeting that its checkpoints do not
	// vouch for (a re-hashed forgery, a cut tail) is refused too.
	if o, err := c.option(ctx, e, src, ""); err != nil {
		return err
	} else if o != nil {
		vopts = append(vopts, o)
	}
	opts := []replay.ImportOption{replay.WithImportVerify(vopts...)}
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
