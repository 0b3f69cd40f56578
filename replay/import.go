package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// ErrImportRefused is wrapped by the [*ImportError] that [Import] returns
// when it refused one meeting or more (or the whole input): nothing of a
// refused meeting was stored.
var ErrImportRefused = errors.New("replay: import refused")

// ErrInvalidImport is returned (wrapped) by [Import] for arguments it cannot
// use: no store, no events, an option out of range. Nothing was read.
var ErrInvalidImport = errors.New("replay: invalid import arguments")

// ImportOutcome says what [Import] did with one meeting.
type ImportOutcome string

// The outcomes of a meeting's import. In a dry run ([ImportDryRun]) they say
// what Import would have done, and nothing is stored.
const (
	// Imported: the store held none of the meeting; all its events were
	// appended.
	Imported ImportOutcome = "imported"
	// Completed: the store held the meeting's first events, the very same
	// (a rerun of an interrupted import); the rest were appended.
	Completed ImportOutcome = "completed"
	// AlreadyPresent: the store already held every event of the meeting
	// (maybe followed by later ones); nothing was appended.
	AlreadyPresent ImportOutcome = "already-present"
	// Refused: the meeting did not check out (a malformed entry, a broken
	// chain, an illegal event, an event that differs from the store's at
	// the same version); nothing of it was stored.
	Refused ImportOutcome = "refused"
	// Interrupted: some of the meeting's batches were appended, then the
	// store refused or failed the next one. The store holds an intact
	// prefix of the meeting; a rerun completes it.
	Interrupted ImportOutcome = "interrupted"
)

// MeetingImport is the outcome of one meeting's import.
type MeetingImport struct {
	// MeetingID is the meeting.
	MeetingID string `json:"meeting"`
	// Outcome says what was done.
	Outcome ImportOutcome `json:"outcome"`
	// Events is how many well-formed events of the meeting the input holds.
	Events int `json:"events"`
	// Held is the meeting's version in the store before the import (0 for
	// a meeting the store did not hold; not known for a meeting refused
	// before the store was read).
	Held uint64 `json:"held"`
	// Appended is how many events were appended (in a dry run: would be),
	// from version From on, in Batches atomic appends.
	Appended int    `json:"appended"`
	From     uint64 `json:"from,omitempty"`
	Batches  int    `json:"batches"`
	// Reason says why the meeting was refused or interrupted.
	Reason string `json:"reason,omitempty"`
	// Findings are [Verify]'s findings on the meeting's events (a meeting
	// with any is refused).
	Findings []Finding `json:"findings,omitempty"`
	// Malformed are the input's entries that name this meeting but do not
	// decode (a [*DecodeError] for a file, an eventstore.CorruptError for a
	// store); a meeting with any is refused.
	Malformed []error `json:"-"`
	// Err is the store's error that refused or interrupted the meeting
	// (eventstore.ErrConflict, eventstore.ErrCorrupt, ...), when there is one.
	Err error `json:"-"`
}

// ImportReport is the result of [Import]: one [MeetingImport] per meeting,
// in the order of the meetings' first events in the input.
type ImportReport struct {
	// Meetings are the outcomes, one per meeting.
	Meetings []MeetingImport `json:"meetings"`
	// Events is how many well-formed events the input holds, Malformed how
	// many entries did not decode, Appended how many events were appended
	// (in a dry run: would be).
	Events    int `json:"events"`
	Malformed int `json:"malformed"`
	Appended  int `json:"appended"`
	// Whole is why the whole import was refused (an entry that cannot be
	// attributed to a meeting); empty otherwise.
	Whole string `json:"whole,omitempty"`
	// DryRun is set when nothing was stored ([ImportDryRun]).
	DryRun bool `json:"dryRun,omitempty"`
}

// Refused returns the outcomes of the meetings that were refused or
// interrupted.
func (r *ImportReport) Refused() []MeetingImport {
	var out []MeetingImport
	for _, m := range r.Meetings {
		if m.Outcome == Refused || m.Outcome == Interrupted {
			out = append(out, m)
		}
	}
	return out
}

// ImportError is returned by [Import] when it refused the whole input or
// some meetings (the others were imported); it wraps [ErrImportRefused].
type ImportError struct {
	// Whole is why the whole input was refused; empty when only some
	// meetings were.
	Whole string
	// Refused are the outcomes of the refused (or interrupted) meetings.
	Refused []MeetingImport
}

func (e *ImportError) Error() string {
	if e.Whole != "" {
		return "replay: import refused: " + e.Whole
	}
	ids := make([]string, len(e.Refused))
	for i, m := range e.Refused {
		ids[i] = m.MeetingID
	}
	return fmt.Sprintf("replay: import refused for %d meeting(s): %s", len(ids), strings.Join(ids, ", "))
}

// Unwrap returns [ErrImportRefused].
func (e *ImportError) Unwrap() error { return ErrImportRefused }

// ImportOption configures [Import].
type ImportOption func(*importConfig)

type importConfig struct {
	dryRun bool
	batch  int
	verify []VerifyOption
}

// ImportDryRun makes [Import] check everything, the store's copy included,
// and report what it would do, storing nothing.
func ImportDryRun() ImportOption { return func(c *importConfig) { c.dryRun = true } }

// WithImportBatch sets the most events [Import] appends at once (default
// natsstore.MaxBatch, the JetStream store's limit). It must be at least 1.
func WithImportBatch(n int) ImportOption { return func(c *importConfig) { c.batch = n } }

// WithImportVerify passes options to the [Verify] that checks the input
// (e.g. [WithKeyRetention], the retention the events were stored under).
func WithImportVerify(opts ...VerifyOption) ImportOption {
	return func(c *importConfig) { c.verify = append(c.verify, opts...) }
}

// meetingInput is one meeting's part of the input.
type meetingInput struct {
	id  string
	evs []events.Envelope
	bad []error
	out MeetingImport
}

// Import appends a log's events (an export, usually: [ReadJSONL], or
// [Source.Events]) to store, keeping every event as it is (ids, times,
// hashes; the store assigns new positions). It checks everything before it
// stores anything, and stores all or nothing of each meeting:
//
//  1. It reads the whole input and groups the events by meeting, in
//     memory (an import holds every event of the input at once). An entry
//     that does not decode refuses the meeting it names (the "meeting" field
//     of the damaged JSON line, when the input holds well-formed events of
//     that meeting); an entry that cannot be attributed to a meeting so
//     refuses the whole import. Any other error of evs (an unreadable file)
//     ends Import with that error, having stored nothing.
//  2. It runs [Verify] on the whole input: a meeting with any finding (a
//     version gap, a hash that does not match the contents, a broken
//     PrevHash link, a first event that is not version 1, an event id used
//     twice, time running backwards, an illegal event, a command key stored
//     twice) is refused, with its findings in the report. The input's
//     stream positions (seq) are not held to their order: they are not
//     imported, and exports of single meetings may be concatenated.
//  3. For each meeting left, in the order of the input, it reads what store
//     holds of the meeting (Load) and compares it with the input version by
//     version (ids and hashes): if the store holds none of it, all the
//     events are appended ([Imported]); if it holds the first ones, the
//     same, the rest are appended ([Completed]); if it holds all of them
//     (and maybe more), nothing is ([AlreadyPresent]); if it holds a
//     different event at some version, the meeting is refused as a
//     conflict and nothing is appended.
//
// A meeting's events are appended in as few atomic appends as the store
// takes (batches of [WithImportBatch] events, natsstore.MaxBatch by
// default): a meeting of at most one batch is stored all or nothing. A
// longer one is stored batch by batch; a crash or a store error between two
// batches leaves an intact prefix of the meeting, and rerunning the same
// import completes it without duplicates. A store error other than a
// conflict (which is ambiguous: the batch may or may not be stored) ends
// Import with the report so far and that error; rerun it.
//
// Import returns a report with one outcome per meeting. When it refused
// some meetings (the others are imported) or the whole input, the error is
// an [*ImportError] wrapping [ErrImportRefused]. An input with no events
// gives an empty report and no error.
func Import(ctx context.Context, store eventstore.Store, evs iter.Seq2[events.Envelope, error], opts ...ImportOption) (*ImportReport, error) {
	c := importConfig{batch: natsstore.MaxBatch}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: a nil option", ErrInvalidImport)
		}
		o(&c)
	}
	switch {
	case store == nil:
		return nil, fmt.Errorf("%w: no store", ErrInvalidImport)
	case evs == nil:
		return nil, fmt.Errorf("%w: no events", ErrInvalidImport)
	case c.batch < 1:
		return nil, fmt.Errorf("%w: batch size %d, want at least 1", ErrInvalidImport, c.batch)
	}
	rep := &ImportReport{DryRun: c.dryRun, Meetings: []MeetingImport{}}

	// 1. Read everything, grouped by meeting.
	var (
		order        []*meetingInput
		byID         = map[string]*meetingInput{}
		all          []events.Envelope // in input order, for Verify
		unattributed []error
		named        []error // malformed entries that name a meeting
	)
	meeting := func(id string) *meetingInput {
		m := byID[id]
		if m == nil {
			m = &meetingInput{id: id}
			byID[id] = m
			order = append(order, m)
		}
		return m
	}
	for e, err := range evs {
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, eventstore.ErrCorrupt) {
				return rep, fmt.Errorf("replay: import: %w", err)
			}
			rep.Malformed++
			if meetingOfError(err) == "" {
				unattributed = append(unattributed, err)
			} else {
				named = append(named, err)
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Events++
		all = append(all, e)
		m := meeting(e.MeetingID)
		m.evs = append(m.evs, e)
	}
	// A damaged entry is attributed to the meeting it names only when the
	// input holds that meeting's events: a name damaged into another
	// meeting's id (or none) may hide whose event it was.
	for _, err := range named {
		if m := byID[meetingOfError(err)]; m != nil {
			m.bad = append(m.bad, err)
		} else {
			unattributed = append(unattributed, err)
		}
	}
	for _, m := range order {
		m.out = MeetingImport{MeetingID: m.id, Events: len(m.evs)}
	}
	if len(unattributed) > 0 {
		rep.Whole = fmt.Sprintf("%s cannot be attributed to a meeting: %v", plural(len(unattributed), "malformed entry", "malformed entries"), unattributed[0])
		for _, m := range order {
			m.out.Outcome, m.out.Reason = Refused, "the whole input was refused (a malformed entry names no meeting of it)"
			rep.Meetings = append(rep.Meetings, m.out)
		}
		return rep, &ImportError{Whole: rep.Whole, Refused: rep.Refused()}
	}

	// 2. Verify the whole input.
	vr, err := Verify(ctx, func(yield func(events.Envelope, error) bool) {
		for _, e := range all {
			if !yield(e, nil) {
				return
			}
		}
	}, c.verify...)
	if err != nil {
		return rep, fmt.Errorf("replay: import: verify: %w", err)
	}
	for _, f := range vr.Findings {
		if f.Kind == SequenceOrder {
			// The input's positions are not imported (the store assigns
			// new ones), and exports of single meetings, concatenated,
			// interleave otherwise than the log they came from.
			continue
		}
		if m := byID[f.MeetingID]; m != nil {
			m.out.Findings = append(m.out.Findings, f)
		}
	}
	all = nil

	// 3. Compare with the store and append, meeting by meeting.
	var refused bool
	for _, m := range order {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		err := importMeeting(ctx, store, m, &c)
		rep.Appended += m.out.Appended
		rep.Meetings = append(rep.Meetings, m.out)
		if err != nil {
			return rep, err
		}
		refused = refused || m.out.Outcome == Refused || m.out.Outcome == Interrupted
	}
	if refused {
		return rep, &ImportError{Refused: rep.Refused()}
	}
	return rep, nil
}

// importMeeting decides and does one meeting's import, filling m.out. It
// returns an error only for a store error that ends the import.
func importMeeting(ctx context.Context, store eventstore.Store, m *meetingInput, c *importConfig) error {
	out := &m.out
	refuse := func(err error, format string, args ...any) {
		out.Outcome, out.Reason, out.Err = Refused, fmt.Sprintf(format, args...), err
	}
	switch {
	case len(m.bad) > 0:
		lines := make([]string, len(m.bad))
		for i, err := range m.bad {
			lines[i] = entryName(err)
		}
		refuse(nil, "%s: %s", plural(len(m.bad), "malformed entry", "malformed entries"), strings.Join(lines, ", "))
		out.Malformed = m.bad
		return nil
	case len(out.Findings) > 0:
		kinds := (&Report{Findings: out.Findings}).Kinds()
		ks := make([]string, len(kinds))
		for i, k := range kinds {
			ks[i] = string(k)
		}
		f := out.Findings[0]
		refuse(nil, "%s (%s), the first at version %d: %s", plural(len(out.Findings), "finding", "findings"), strings.Join(ks, ", "), f.Version, f.Reason)
		return nil
	}
	// Verify found no gap, no broken link: versions run 1..n. Check it
	// anyway, as the appends below rely on it.
	for i := range m.evs {
		if m.evs[i].Version != uint64(i)+1 {
			refuse(nil, "version %d at position %d of the meeting", m.evs[i].Version, i+1)
			return nil
		}
	}

	// What does the store hold?
	n := uint64(len(m.evs))
	var held uint64
	for e, err := range store.Load(ctx, m.id, 1) {
		if err != nil {
			if errors.Is(err, eventstore.ErrCorrupt) {
				refuse(err, "the store's copy of the meeting is damaged: %v", err)
				return nil
			}
			return fmt.Errorf("replay: import meeting %s: read the store: %w", m.id, err)
		}
		if e.Version != held+1 {
			refuse(nil, "the store's copy of the meeting has version %d after version %d", e.Version, held)
			return nil
		}
		held = e.Version
		if held > n {
			continue // the store went on after this export
		}
		if f := &m.evs[held-1]; f.ID != e.ID || f.Hash != e.Hash {
			refuse(eventstore.ErrConflict, "conflict: the store's version %d is another event (id %s, hash %s) than the input's (id %s, hash %s)",
				held, e.ID, short(e.Hash), f.ID, short(f.Hash))
			return nil
		}
	}
	out.Held = held
	if held >= n {
		out.Outcome = AlreadyPresent
		return nil
	}
	out.Outcome, out.From = Imported, held+1
	if held > 0 {
		out.Outcome = Completed
	}
	rest := m.evs[held:]
	for i := range rest {
		rest[i].Seq = 0 // the store assigns positions
	}
	for len(rest) > 0 {
		b := rest[:min(len(rest), c.batch)]
		rest = rest[len(b):]
		if c.dryRun {
			out.Appended += len(b)
			out.Batches++
			continue
		}
		expected := b[0].Version - 1
		_, err := store.Append(ctx, m.id, expected, b)
		if err == nil {
			out.Appended += len(b)
			out.Batches++
			continue
		}
		if out.Appended > 0 {
			out.Outcome = Interrupted
		} else {
			out.Outcome = Refused
		}
		out.Err = err
		out.Reason = fmt.Sprintf("append of versions %d-%d: %v", b[0].Version, b[len(b)-1].Version, err)
		if errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrInvalidEvents) {
			// Another writer appended to the meeting, or the store will not
			// take these events: this meeting only.
			return nil
		}
		return fmt.Errorf("replay: import meeting %s: %w", m.id, err)
	}
	return nil
}

// meetingOfError returns the meeting a malformed entry names, or "".
func meetingOfError(err error) string {
	if de := (*DecodeError)(nil); errors.As(err, &de) {
		return de.MeetingID
	}
	if ce := (*eventstore.CorruptError)(nil); errors.As(err, &ce) {
		if events.ValidateID(ce.MeetingID) == nil {
			return ce.MeetingID
		}
	}
	return ""
}

// entryName locates a malformed entry: "line 6" or "sequence 41".
func entryName(err error) string {
	if de := (*DecodeError)(nil); errors.As(err, &de) {
		if de.Line > 0 {
			return fmt.Sprintf("line %d", de.Line)
		}
		return fmt.Sprintf("sequence %d", de.Seq)
	}
	if ce := (*eventstore.CorruptError)(nil); errors.As(err, &ce) {
		return fmt.Sprintf("sequence %d", ce.Seq)
	}
	return err.Error()
}

// meetingOfLine returns the meeting id a line that is not a valid event
// names: its top-level "meeting" member, when the line is a JSON object and
// that member is a string holding a valid meeting id; "" otherwise.
func meetingOfLine(line []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil {
		return ""
	}
	var id string
	if raw, ok := obj["meeting"]; !ok || json.Unmarshal(raw, &id) != nil || events.ValidateID(id) != nil {
		return ""
	}
	return id
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
