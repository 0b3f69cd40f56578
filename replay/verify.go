package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
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
	// for Illegal, events.ErrHashMismatch for HashMismatch, ...).
	Err error `json:"-"`
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

// OK reports whether the log is clean: no findings.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

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
// Malformed entries (errors wrapping events.ErrMalformed) and damaged events
// a store refused to serve (errors wrapping eventstore.ErrCorrupt) become
// findings and reading goes on; any other error from evs ends Verify with
// that error and the report so far.
func Verify(ctx context.Context, evs iter.Seq2[events.Envelope, error], opts ...VerifyOption) (*Report, error) {
	v := newVerifier()
	for _, o := range opts {
		o(v)
	}
	if v.proof != nil {
		v.proof.start(v.add)
	}
	for e, err := range evs {
		if err != nil {
			if errors.Is(err, events.ErrMalformed) {
				v.r.Events++
				f := Finding{Kind: Malformed, Reason: err.Error(), Err: err}
				if de := (*DecodeError)(nil); errors.As(err, &de) {
					f.Seq = de.Seq
				}
				v.add(f)
				continue
			}
			// A store that checks what it serves (the JetStream store's
			// ReadAll) reports a damaged event instead of yielding it.
			if ce := (*eventstore.CorruptError)(nil); errors.As(err, &ce) {
				v.r.Events++
				kind := ChainBroken
				switch {
				case errors.Is(err, events.ErrHashMismatch):
					kind = HashMismatch
				case errors.Is(err, events.ErrMalformed):
					kind = Malformed
				}
				v.add(Finding{Seq: ce.Seq, MeetingID: ce.MeetingID, Version: ce.Version, Kind: kind, Reason: ce.Err.Error(), Err: err})
				continue
			}
			return v.r, err
		}
		if err := ctx.Err(); err != nil {
			return v.r, err
		}
		v.check(&e)
	}
	v.r.Meetings = len(v.states)
	if v.proof != nil {
		v.proof.finish(v.r, v.add)
	}
	return v.r, nil
}

type verifier struct {
	r       *Report
	states  map[string]*aggregate.State
	lapses  map[string]*lapse // meeting -> the Lapsed event just applied
	ids     map[uuid.UUID]uint64
	lastSeq uint64

	retention time.Duration
	keys      map[string]*keyLog // meeting -> the command keys used within the retention

	proof *prover // nil without WithCheckpoints
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
	return &verifier{r: &Report{Findings: []Finding{}}, states: map[string]*aggregate.State{},
		lapses: map[string]*lapse{}, ids: map[uuid.UUID]uint64{},
		retention: eventstore.DefaultKeyRetention, keys: map[string]*keyLog{}}
}

func (v *verifier) add(f Finding) {
	if v.proof != nil {
		v.proof.integrity(&f)
	}
	v.r.Findings = append(v.r.Findings, f)
}

func (v *verifier) check(e *events.Envelope) {
	v.r.Events++
	find := func(kind FindingKind, err error, format string, args ...any) {
		v.add(Finding{Seq: e.Seq, MeetingID: e.MeetingID, Version: e.Version, Kind: kind, Reason: fmt.Sprintf(format, args...), Err: err})
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
	s := v.states[e.MeetingID]
	if s == nil {
		s = aggregate.NewState(e.MeetingID)
		v.states[e.MeetingID] = s
	}
	inPlace := e.Version == s.Version()+1
	switch {
	case inPlace:
	case e.Version > s.Version()+1:
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
		find(TimeReversed, nil, "time %s is before the previous event's %s", e.Time.Format(timeFmt), s.LastTime().Format(timeFmt))
	}
	if v.proof != nil {
		v.proof.see(e, v.add)
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
	aggregate.Evolve(s, e)
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
