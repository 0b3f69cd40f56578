package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// FindingKind classifies a [Finding].
type FindingKind string

// The kinds of findings, from the shape of the log to the rules.
const (
	// Malformed: an entry that does not decode to a valid event.
	Malformed FindingKind = "malformed"
	// SequenceOrder: stream sequences that do not increase.
	SequenceOrder FindingKind = "sequence"
	// DuplicateID: two events with the same id.
	DuplicateID FindingKind = "duplicate-id"
	// VersionGap: a meeting's versions are not 1, 2, 3, ... in stream order
	// (an event deleted, inserted, duplicated or moved).
	VersionGap FindingKind = "version"
	// HashMismatch: an event's hash is not the hash of its contents (it was
	// edited, or its hash forged).
	HashMismatch FindingKind = "hash"
	// ChainBroken: an event's PrevHash is not the previous event's hash.
	ChainBroken FindingKind = "chain"
	// TimeReversed: an event is older than its meeting's previous event.
	TimeReversed FindingKind = "time"
	// Illegal: the stage rules would have rejected the event's command at
	// that moment (e.g. a kick by a user who was not a host).
	Illegal FindingKind = "illegal"
	// Mismatch: the rules accept the event's command but decide a different
	// event (a payload that does not follow from the command and the state).
	Mismatch FindingKind = "mismatch"
	// DuplicateKey: a command was applied twice: its idempotency key, from
	// the same actor in the same meeting, was stored again within the key
	// retention (see [WithKeyRetention]), when the engine must have answered
	// the retry with the first outcome.
	DuplicateKey FindingKind = "duplicate-key"
	// Truncated: the end of the log is gone: a stream reports a last
	// sequence whose message it no longer holds (or stopped delivering
	// before it), or a file stops in the middle of an event.
	Truncated FindingKind = "truncated"
	// Missing: a stream's sequences skip: messages it stored are gone.
	Missing FindingKind = "missing"
	// Empty: the log holds no events at all. Nothing was proven, so an
	// empty log is not a clean one.
	Empty FindingKind = "empty"
)

// Finding is one thing wrong with a log.
type Finding struct {
	// Seq is the event's stream sequence (0 when unknown).
	Seq uint64 `json:"seq"`
	// MeetingID and Version locate the event ("" and 0 when unknown).
	MeetingID string `json:"meeting,omitempty"`
	Version   uint64 `json:"version,omitempty"`
	// Kind says what is wrong, Reason explains it.
	Kind   FindingKind `json:"kind"`
	Reason string      `json:"reason"`
	// Err is the underlying error, when there is one (an *aggregate.Error
	// for Illegal, events.ErrHashMismatch for HashMismatch, a *LostError
	// for Truncated and Missing, ...).
	Err error `json:"-"`
	// Cause is the index in Report.Findings of the earlier finding this
	// one follows from, and nil when it is a cause itself. A finding
	// follows from an earlier one when it is judged on what that one
	// damaged: a later finding on the same event; an event out of
	// place whose version an earlier finding reported missing; a gap in a
	// meeting's versions just after a malformed entry or lost messages;
	// every time, illegal, mismatch and duplicate-key finding in a meeting
	// after a hash, chain, version or time finding in it (the state those
	// are judged on is no longer what happened); and, in a meeting with
	// none of those, an illegal, mismatch or duplicate-key finding about a
	// user an earlier one was about. Hash, chain, sequence, duplicate-id,
	// truncated and missing findings about a new place are always causes:
	// two edits are two causes.
	Cause *int `json:"cause,omitempty"`
}

func (f Finding) String() string {
	return fmt.Sprintf("seq %d meeting %s version %d: %s: %s", f.Seq, f.MeetingID, f.Version, f.Kind, f.Reason)
}

// Report is the result of [Verify].
type Report struct {
	// Events is how many entries were read (malformed ones included), and
	// Meetings how many meetings they belong to.
	Events   int `json:"events"`
	Meetings int `json:"meetings"`
	// Findings lists every problem, in stream order.
	Findings []Finding `json:"findings"`
	// Unchecked counts, by type, the events whose legality could not be
	// re-decided because no command is known for their type (see
	// [aggregate.CommandOf]); their hash chain and versions were still checked.
	Unchecked map[events.Type]int `json:"unchecked,omitempty"`
	// Proof says what signed checkpoints proved (nil when Verify had no
	// key: see [WithCheckpoints]).
	Proof *Proof `json:"proof,omitempty"`
}

// OK reports whether the log is clean: no findings. An empty log is not:
// it has an [Empty] finding.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// Group is a finding that follows from no other, and the findings that
// follow from it.
type Group struct {
	// Index is the cause's index in Report.Findings.
	Index int
	// Cause is the finding.
	Cause Finding
	// Consequences are the indexes in Report.Findings of the findings that
	// follow from it, in order.
	Consequences []int
}

// Groups returns the findings grouped by cause, in the order of the causes.
func (r *Report) Groups() []Group {
	var out []Group
	at := map[int]int{} // finding index -> its group
	for i, f := range r.Findings {
		if f.Cause == nil {
			at[i] = len(out)
			out = append(out, Group{Index: i, Cause: f})
			continue
		}
		if g, ok := at[*f.Cause]; ok {
			out[g].Consequences = append(out[g].Consequences, i)
		}
	}
	return out
}

// Causes returns the findings that follow from no other, in order.
func (r *Report) Causes() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Cause == nil {
			out = append(out, f)
		}
	}
	return out
}

// Consequences returns the findings that follow from r.Findings[i], in
// order (none when i is not the index of a finding).
func (r *Report) Consequences(i int) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Cause != nil && *f.Cause == i {
			out = append(out, f)
		}
	}
	return out
}

// Kinds returns the distinct kinds of the findings, sorted.
func (r *Report) Kinds() []FindingKind {
	var out []FindingKind
	for _, f := range r.Findings {
		out = append(out, f.Kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Verify reads a log and checks, for every event: that stream sequences
// increase and ids are unique; that each meeting's versions run 1, 2, 3, ...
// in stream order; that the event's hash matches its contents and links to
// the previous event's hash; that time does not run backwards; and that the
// event was legal when it happened: the command it records (see
// [aggregate.CommandOf]) is decided again with aggregate.Decide on the meeting's state
// just before it, and must be accepted and give the same event.
//
// Every event is then applied as stored (the log is the truth), so one bad
// event is reported once and the events after it are judged on the state
// the log really describes.
//
// A command key (an idempotency key scoped to its actor) stored again
// within the key retention (default eventstore.DefaultKeyRetention) is a
// [DuplicateKey] finding: a retry that was applied twice. Keys the engine
// made up for callers who gave none (the id of the command's first event)
// are held to the state's command window only, as the engine holds them.
//
// Malformed entries (errors wrapping events.ErrMalformed), damaged events
// a store refused to serve (errors wrapping eventstore.ErrCorrupt) and
// messages a stream lost (errors wrapping [ErrMissing]) become findings
// and reading goes on; a lost end (an error wrapping [ErrTruncated])
// becomes a [Truncated] finding; any other error from evs ends Verify with
// that error and the report so far. A log with no events at all gets an
// [Empty] finding: it is not clean.
//
// A finding that follows from an earlier one (see Finding.Cause) is linked
// to it: [Report.Groups] gives each cause with its consequences.
func Verify(ctx context.Context, evs iter.Seq2[events.Envelope, error], opts ...VerifyOption) (*Report, error) {
	v := newVerifier()
	for _, o := range opts {
		o(v)
	}
	for _, f := range v.history {
		// One loss, seen by the marks from several sides: one cause.
		if i := v.add(f, v.lost); v.lost < 0 {
			v.lost = i
		}
	}
	if v.proof != nil {
		v.proof.start(v.addRoot)
	}
	for e, err := range evs {
		if err != nil {
			if !v.sourceError(err) {
				return v.r, err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return v.r, err
		}
		v.check(&e)
	}
	if v.r.Events == 0 && len(v.r.Findings) == 0 {
		v.add(Finding{Kind: Empty, Reason: "the log holds no events: there is nothing to verify"}, -1)
	}
	v.r.Meetings = len(v.states)
	if v.proof != nil {
		v.proof.finish(v.r, v.addLoss)
	}
	return v.r, nil
}

// sourceError turns an error of the source into a finding, and reports
// whether it did (false: Verify must stop with it).
func (v *verifier) sourceError(err error) bool {
	v.entries++
	var (
		le *LostError
		de *DecodeError
		ce *eventstore.CorruptError
	)
	switch {
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrMissing):
		kind := Missing
		if errors.Is(err, ErrTruncated) {
			kind = Truncated
		}
		f := Finding{Kind: kind, Reason: err.Error(), Err: err}
		switch {
		case errors.As(err, &le):
			f.Seq = le.From
		case errors.As(err, &de):
			f.Seq = de.Seq
			v.r.Events++ // a line that stops mid-event is an entry
		}
		v.stray(f, "")
	case errors.Is(err, events.ErrMalformed):
		v.r.Events++
		f := Finding{Kind: Malformed, Reason: err.Error(), Err: err}
		if errors.As(err, &de) {
			f.Seq = de.Seq
		}
		v.stray(f, "")
	case errors.As(err, &ce):
		// A store that checks what it serves (the JetStream store's
		// ReadAll) reports a damaged event instead of yielding it.
		v.r.Events++
		kind := ChainBroken
		switch {
		case errors.Is(err, events.ErrHashMismatch):
			kind = HashMismatch
		case errors.Is(err, events.ErrMalformed):
			kind = Malformed
		}
		v.stray(Finding{Seq: ce.Seq, MeetingID: ce.MeetingID, Version: ce.Version, Kind: kind, Reason: ce.Err.Error(), Err: err}, ce.MeetingID)
	default:
		return false
	}
	return true
}

// stray records a finding about an entry that is not an event in hand (a
// malformed line, lost messages, an event a store refused): a cause, which
// a later gap in a meeting's versions may follow from. A known meeting's
// state is no longer what happened.
func (v *verifier) stray(f Finding, meetingID string) {
	cause := -1
	if f.Kind == Truncated || f.Kind == Missing {
		cause = v.lost // the marks saw the loss first
	}
	i := v.add(f, cause)
	v.strays = append(v.strays, strayFinding{entry: v.entries, index: i, meetingID: meetingID})
	if meetingID != "" {
		v.trail(meetingID).whole = i
	}
}

type strayFinding struct {
	entry     int // v.entries when it was read
	index     int
	meetingID string
}

// trail is what Verify remembers of a meeting's findings, to tell a finding
// that follows from an earlier one from a new cause.
type trail struct {
	// whole is the latest cause after which the meeting's state is not
	// what happened (-1: none).
	whole int
	// users: the cause of the latest finding about each user, while whole
	// is -1.
	users map[string]int
	// timeRoot is the cause behind the meeting's latest time (the event
	// that set it had a finding, or an event before it was found older):
	// -1 when it is clean.
	timeRoot int
	// gaps are the versions reported missing, and by which finding.
	gaps []gap
	// maxVersion is the highest version read; order the latest cause
	// about versions out of order (-1: none).
	maxVersion uint64
	order      int
	// entry is v.entries when the meeting's last event was read.
	entry int
	// timeVersion is the version whose time is the meeting's latest.
	timeVersion uint64
}

type gap struct {
	from, to uint64
	cause    int
}

func (v *verifier) trail(meetingID string) *trail {
	t := v.trails[meetingID]
	if t == nil {
		t = &trail{whole: -1, timeRoot: -1, order: -1}
		v.trails[meetingID] = t
	}
	return t
}

type verifier struct {
	r       *Report
	trails  map[string]*trail
	strays  []strayFinding
	entries int // entries read: events, and errors that became findings
	states  map[string]*aggregate.State
	lapses  map[string]*lapse // meeting -> the Lapsed event just applied
	ids     map[uuid.UUID]uint64
	lastSeq uint64

	retention time.Duration
	keys      map[string]*keyLog // meeting -> the command keys used within the retention

	proof   *prover   // nil without WithCheckpoints
	history []Finding // losses of WithHistory, reported first
	lost    int       // the first of them (-1: none): what a lost end follows from
}

// VerifyOption configures [Verify].
type VerifyOption func(*verifier)

// WithKeyRetention sets the key retention that Verify holds the log to: a
// command key stored twice less than d apart is a [DuplicateKey] finding
// (default eventstore.DefaultKeyRetention, the engine's default). Use the
// retention the deployment's store was configured with.
func WithKeyRetention(d time.Duration) VerifyOption {
	return func(v *verifier) {
		if d > 0 {
			v.retention = d
		}
	}
}

// keyLog is one meeting's command keys within the retention: the latest use
// of each, and every use in log order, so that the ones older than the
// retention are dropped as the log's time moves on.
type keyLog struct {
	at   map[events.CommandKey]keyUse
	fifo []keyUse
	// The previous event: a backend command that recorded passed deadlines
	// first is a Lapsed event and its own event, consecutive, at one time,
	// with one key.
	last        events.CommandKey
	lastVersion uint64
	lastLapsed  bool
	lastTime    time.Time
	lastID      string
}

type keyUse struct {
	key     events.CommandKey
	version uint64
	time    time.Time
	// generated: the engine made the key up (the caller gave none), as the
	// id of the command's first event. Such a key is remembered by the
	// state's window only: a caller learns it from the acknowledged result,
	// so a later use of it is a new command, not a retry.
	generated bool
}

// duplicateKey reports whether e starts a command whose key was used less
// than the retention before, and records its use.
func (v *verifier) duplicateKey(e *events.Envelope) (keyUse, bool) {
	kl := v.keys[e.MeetingID]
	if kl == nil {
		kl = &keyLog{at: map[events.CommandKey]keyUse{}}
		v.keys[e.MeetingID] = kl
	}
	k := e.CommandKey()
	afterLapse := kl.lastLapsed && e.Version == kl.lastVersion+1 && e.Time.Equal(kl.lastTime) && e.Type != events.TypeLapsed
	same := afterLapse && k == kl.last
	generated := e.ID.String() == e.CommandID || afterLapse && kl.lastID == e.CommandID
	kl.last, kl.lastVersion, kl.lastLapsed, kl.lastTime, kl.lastID = k, e.Version, e.Type == events.TypeLapsed, e.Time, e.ID.String()
	if same {
		return keyUse{}, false
	}
	cut := e.Time.Add(-v.retention)
	for len(kl.fifo) > 0 && kl.fifo[0].time.Before(cut) {
		old := kl.fifo[0]
		if kl.at[old.key].version == old.version {
			delete(kl.at, old.key)
		}
		kl.fifo = kl.fifo[1:]
	}
	prev, dup := kl.at[k]
	u := keyUse{key: k, version: e.Version, time: e.Time, generated: generated}
	kl.at[k] = u
	kl.fifo = append(kl.fifo, u)
	return prev, dup && !prev.generated && !prev.time.Before(cut)
}

// lapse remembers a Lapsed event and the state before it: a command whose
// deadlines had passed is recorded as the Lapsed event and then its own
// event, both with the command's id, and is re-decided on the state before
// the pair.
type lapse struct {
	before  *aggregate.State
	command string
	version uint64
}

func newVerifier() *verifier {
	return &verifier{r: &Report{Findings: []Finding{}}, states: map[string]*aggregate.State{}, trails: map[string]*trail{},
		lapses: map[string]*lapse{}, ids: map[uuid.UUID]uint64{},
		retention: eventstore.DefaultKeyRetention, keys: map[string]*keyLog{}, lost: -1}
}

// addRoot appends f as a cause of its own.
func (v *verifier) addRoot(f Finding) { v.add(f, -1) }

// addLoss appends f as following from the loss the marks found, if any.
func (v *verifier) addLoss(f Finding) { v.add(f, v.lost) }

// add appends f, following from the finding at index cause (-1: none), and
// returns its index.
func (v *verifier) add(f Finding, cause int) int {
	if cause >= 0 {
		f.Cause = &cause
	}
	if v.proof != nil {
		v.proof.integrity(&f)
	}
	v.r.Findings = append(v.r.Findings, f)
	return len(v.r.Findings) - 1
}

func (v *verifier) check(e *events.Envelope) {
	v.r.Events++
	v.entries++
	s := v.states[e.MeetingID]
	if s == nil {
		s = aggregate.NewState(e.MeetingID)
		v.states[e.MeetingID] = s
	}
	tr := v.trail(e.MeetingID)
	// root is the cause the event's findings follow from (-1: none yet).
	// An event whose version an earlier finding reported missing is out of
	// place: what is wrong with it follows from that finding.
	root := -1
	for i, g := range tr.gaps {
		if e.Version >= g.from && e.Version <= g.to {
			root = g.cause
			tr.gaps = slices.Delete(tr.gaps, i, i+1)
			break
		}
	}
	inPlace := e.Version == s.Version()+1
	skips := e.Version > s.Version()+1
	find := func(kind FindingKind, err error, format string, args ...any) {
		f := Finding{Seq: e.Seq, MeetingID: e.MeetingID, Version: e.Version, Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err}
		cause := root
		switch {
		case kind == TimeReversed && tr.timeRoot >= 0:
			cause = tr.timeRoot // older than a time that is suspect itself
		case cause < 0:
			cause = v.causeOf(tr, e, kind, skips)
		}
		i := v.add(f, cause)
		if cause < 0 {
			cause = i
			switch kind {
			case Illegal, Mismatch, DuplicateKey:
			case VersionGap:
				tr.whole, tr.order = i, i
			default:
				tr.whole = i
			}
		}
		if kind == VersionGap && skips {
			tr.gaps = append(tr.gaps, gap{from: s.Version() + 1, to: e.Version - 1, cause: cause})
			tr.whole = cause
		}
		if tr.whole < 0 {
			if tr.users == nil {
				tr.users = map[string]int{}
			}
			for _, u := range usersOf(e) {
				tr.users[u] = cause
			}
		}
		if root < 0 {
			root = cause
		}
	}
	if e.Seq != 0 {
		if e.Seq <= v.lastSeq {
			find(SequenceOrder, nil, "stream sequence %d after %d", e.Seq, v.lastSeq)
		}
		v.lastSeq = max(v.lastSeq, e.Seq)
	}
	if seq, dup := v.ids[e.ID]; dup {
		find(DuplicateID, nil, "event id %s already used at sequence %d", e.ID, seq)
	} else {
		v.ids[e.ID] = e.Seq
	}
	switch {
	case inPlace:
	case skips:
		find(VersionGap, nil, "version %d follows version %d: %s missing", e.Version, s.Version(), missing(s.Version()+1, e.Version-1))
	default:
		find(VersionGap, nil, "version %d comes after version %d: duplicated or out of order", e.Version, s.Version())
	}
	if err := e.Verify(); err != nil {
		find(HashMismatch, err, "stored hash %s is not the hash of the event's contents: edited after it was sealed", short(e.Hash))
	}
	if inPlace && e.PrevHash != s.LastHash() {
		find(ChainBroken, nil, "prev %s does not link to version %d's hash %s", short(e.PrevHash), s.Version(), short(s.LastHash()))
	}
	if e.Time.Before(s.LastTime()) {
		find(TimeReversed, nil, "time %s is before %s, the time of version %d", e.Time.Format(timeFmt), s.LastTime().Format(timeFmt), tr.timeVersion)
		if tr.timeRoot < 0 {
			// Every later event older than that time follows from this.
			tr.timeRoot = root
		}
	}
	if v.proof != nil {
		v.proof.see(e, v.addRoot)
	}
	prev, dupKey := v.duplicateKey(e)
	if dupKey {
		find(DuplicateKey, nil, "command key %q of %s was already used at version %d, %v before (key retention %v): a retry applied twice, or another command stored under a used key",
			e.CommandID, actorName(e.Actor), prev.version, e.Time.Sub(prev.time).Round(time.Millisecond), v.retention)
	}
	v.legal(s, e, dupKey, find)
	if e.Type == events.TypeLapsed {
		v.lapses[e.MeetingID] = &lapse{before: s.Clone(), command: e.CommandID, version: e.Version}
	} else {
		delete(v.lapses, e.MeetingID)
	}
	if e.Time.After(s.LastTime()) {
		// The meeting's time is now this event's: later events are
		// judged against it, and are suspect if it is.
		tr.timeRoot, tr.timeVersion = root, e.Version
	}
	tr.maxVersion = max(tr.maxVersion, e.Version)
	tr.entry = v.entries
	aggregate.Evolve(s, e)
}

// causeOf returns the earlier cause a finding of kind about e follows from,
// or -1 when it is a cause itself. skips: e's version skips versions.
func (v *verifier) causeOf(tr *trail, e *events.Envelope, kind FindingKind, skips bool) int {
	switch kind {
	case TimeReversed:
		if tr.timeRoot >= 0 {
			return tr.timeRoot
		}
		return tr.whole
	case Illegal, Mismatch, DuplicateKey:
		if tr.whole >= 0 {
			return tr.whole
		}
		cause := -1
		for _, u := range usersOf(e) {
			if c, ok := tr.users[u]; ok {
				cause = max(cause, c)
			}
		}
		return cause
	case VersionGap:
		if !skips {
			return -1 // a version seen before, and not one reported missing: a copy
		}
		if e.Version-1 <= tr.maxVersion && tr.order >= 0 {
			// The versions it skips were read already: out of order.
			return tr.order
		}
		// The entries since the meeting's last event that were not events
		// (malformed, lost, refused) are the missing versions.
		i := sort.Search(len(v.strays), func(i int) bool { return v.strays[i].entry > tr.entry })
		for _, st := range v.strays[i:] {
			if st.meetingID == "" || st.meetingID == e.MeetingID {
				return st.index
			}
		}
	}
	return -1
}

// usersOf returns the users an event is about, and its actor.
func usersOf(e *events.Envelope) []string {
	us := e.Users()
	if e.Actor != "" && !slices.Contains(us, e.Actor) {
		us = append(slices.Clip(us), e.Actor)
	}
	return us
}

const timeFmt = "2006-01-02T15:04:05.000Z07:00"

func (v *verifier) legal(s *aggregate.State, e *events.Envelope, dupKey bool, find func(FindingKind, error, string, ...any)) {
	cmd, ok := aggregate.CommandOf(e)
	if !ok {
		if v.r.Unchecked == nil {
			v.r.Unchecked = map[events.Type]int{}
		}
		v.r.Unchecked[e.Type]++
		return
	}
	// The second event of a command that first recorded passed deadlines
	// is decided on the state before the Lapsed event.
	base, second := s, false
	if l := v.lapses[e.MeetingID]; l != nil && e.Type != events.TypeLapsed && l.command == e.CommandID && l.version+1 == e.Version {
		base, second = l.before, true
	}
	d, err := aggregate.Decide(base, cmd, e.Time)
	if err != nil {
		find(Illegal, err, "%s by %s was not allowed: %v", e.Type, actorName(e.Actor), err)
		return
	}
	if d.Duplicate {
		if !dupKey { // stored twice outside the retention, but within the command window
			find(DuplicateKey, nil, "command %s was already applied at version %d: a retry was stored twice", e.CommandID, d.First)
		}
		return
	}
	switch {
	case len(d.Events) == 0:
		find(Illegal, nil, "%s at %s: nothing was due then", e.Type, e.Time.Format(timeFmt))
		return
	case second && len(d.Events) != 2:
		find(Mismatch, nil, "the rules record no lapse before this command")
		return
	case !second && e.Type != events.TypeLapsed && len(d.Events) == 2:
		find(Mismatch, nil, "deadlines had passed: the rules record a Lapsed event before this one")
		return
	}
	if second {
		d.Events = d.Events[1:]
	}
	want := d.Events[0]
	var diffs []string
	if want.Type != e.Type {
		diffs = append(diffs, fmt.Sprintf("type %s, not %s", want.Type, e.Type))
	}
	if want.Schema != e.Schema {
		diffs = append(diffs, fmt.Sprintf("schema %d, not %d", want.Schema, e.Schema))
	}
	// A grant recorded before AccessGranted named the invited users has
	// none: it matches the rules' grant with the same users. Invited only
	// says what the state before already shows (who had no request).
	if g, ok := want.Payload.(*events.AccessGranted); ok {
		if r, ok := e.Payload.(*events.AccessGranted); ok && r.Invited == nil {
			c := *g
			c.Invited = nil
			want.Payload = &c
		}
	}
	wp, _ := json.Marshal(want.Payload)
	gp, _ := json.Marshal(e.Payload)
	if !bytes.Equal(wp, gp) {
		diffs = append(diffs, fmt.Sprintf("payload %s, not %s", wp, gp))
	}
	if len(diffs) > 0 {
		find(Mismatch, nil, "the rules give %s", strings.Join(diffs, "; "))
	}
}

func actorName(a string) string {
	if a == "" {
		return "the backend"
	}
	return a
}

func missing(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("version %d", from)
	}
	return fmt.Sprintf("versions %d-%d", from, to)
}

func short(h events.Hash) string { return h.String()[:12] }
