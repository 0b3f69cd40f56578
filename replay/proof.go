package replay

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
)

// The kinds of findings that only a check against signed checkpoints can
// make (see [WithCheckpoints]).
const (
	// BadSignature: a checkpoint that the public key did not sign (forged,
	// edited, or signed with another key).
	BadSignature FindingKind = "signature"
	// CheckpointFailed: the log is not the one a valid checkpoint names: its
	// event at the checkpoint's version has another hash (the history
	// before it was rewritten, even if re-hashed), or the log ends before
	// that version (events lost or cut).
	CheckpointFailed FindingKind = "checkpoint"
)

// Proof says what signed checkpoints proved about a log (see
// [WithCheckpoints]); it is nil in a [Report] made without a key.
type Proof struct {
	// Key is the id of the public key checkpoints were checked with.
	Key checkpoint.KeyID `json:"key"`
	// Checkpoints is how many checkpoints were given, and Valid how many of
	// them the key signed.
	Checkpoints int `json:"checkpoints"`
	Valid       int `json:"valid"`
	// Meetings says, for each meeting of the log or of a valid checkpoint,
	// how much of it is proven, in meeting order.
	Meetings []MeetingProof `json:"meetings"`
}

// MeetingProof is what the checkpoints prove about one meeting.
type MeetingProof struct {
	MeetingID string `json:"meeting"`
	// Last is the meeting's last version in the log (0: no event).
	Last uint64 `json:"last"`
	// Proven is the highest version up to which the log is exactly what
	// the key signed: a valid checkpoint names that version's hash, and the
	// hash chain from it back to version 1 is intact. 0: nothing proven.
	Proven uint64 `json:"proven"`
	// At is the time of that checkpoint.
	At time.Time `json:"at,omitzero"`
}

// Unproven returns the number of the log's events after the proven ones.
func (m MeetingProof) Unproven() uint64 { return m.Last - min(m.Proven, m.Last) }

// ProvenEvents returns how many of the log's events the checkpoints prove,
// and how many they do not.
func (p *Proof) ProvenEvents() (proven, unproven uint64) {
	for _, m := range p.Meetings {
		proven += min(m.Proven, m.Last)
		unproven += m.Unproven()
	}
	return proven, unproven
}

// WithCheckpoints makes [Verify] prove the log against signed checkpoints
// (see package checkpoint): each checkpoint must be signed by pub (else a
// [BadSignature] finding), and the log's event at each valid checkpoint's
// version must have the hash it names (else a [CheckpointFailed] finding:
// a rewritten history, even one re-hashed to keep its chain intact, or a
// log that ends before it). The report's Proof says, per meeting, up to
// which version the log is proven; what follows the last checkpoint is
// not proven. Give only the checkpoints of the meetings being verified.
func WithCheckpoints(pub ed25519.PublicKey, cps []checkpoint.Signed) VerifyOption {
	return func(v *verifier) {
		v.proof = newProver(pub, cps)
	}
}

// prover holds the checkpoints a Verify checks the log against.
type prover struct {
	pub    ed25519.PublicKey
	bad    []checkpoint.Signed                       // not signed by pub
	want   map[string]map[uint64][]checkpoint.Signed // meeting -> version -> valid checkpoints
	last   map[string]uint64                         // meeting -> last version seen
	proven map[string]checkpoint.Signed              // meeting -> the latest checkpoint matched
	broken map[string]uint64                         // meeting -> first version with an integrity finding
	proof  Proof
}

func newProver(pub ed25519.PublicKey, cps []checkpoint.Signed) *prover {
	p := &prover{pub: pub, want: map[string]map[uint64][]checkpoint.Signed{}, last: map[string]uint64{},
		proven: map[string]checkpoint.Signed{}, broken: map[string]uint64{}}
	if len(pub) == ed25519.PublicKeySize {
		p.proof.Key = checkpoint.KeyIDOf(pub)
	}
	p.proof.Checkpoints = len(cps)
	for _, c := range cps {
		if c.Verify(pub) != nil {
			p.bad = append(p.bad, c)
			continue
		}
		p.proof.Valid++
		m := p.want[c.MeetingID]
		if m == nil {
			m = map[uint64][]checkpoint.Signed{}
			p.want[c.MeetingID] = m
		}
		m[c.Version] = append(m[c.Version], c)
	}
	return p
}

// start reports the checkpoints that the key did not sign.
func (p *prover) start(add func(Finding)) {
	for _, c := range p.bad {
		err := c.Verify(p.pub)
		add(Finding{MeetingID: c.MeetingID, Version: c.Version, Kind: BadSignature, Err: err,
			Reason: fmt.Sprintf("the checkpoint of version %d made at %s is not signed by key %s: %v", c.Version, c.Time.Format(timeFmt), p.proof.Key, err)})
	}
}

// see checks an event against the checkpoints that name its version.
func (p *prover) see(e *events.Envelope, add func(Finding)) {
	p.last[e.MeetingID] = max(p.last[e.MeetingID], e.Version)
	for _, c := range p.want[e.MeetingID][e.Version] {
		if c.Hash != e.Hash {
			add(Finding{Seq: e.Seq, MeetingID: e.MeetingID, Version: e.Version, Kind: CheckpointFailed,
				Reason: fmt.Sprintf("the event's hash %s is not the hash %s that the checkpoint signed at %s names: the history up to here was rewritten after it was signed", short(e.Hash), short(c.Hash), c.Time.Format(timeFmt))})
			continue
		}
		if best, ok := p.proven[e.MeetingID]; !ok || c.Version > best.Version || c.Version == best.Version && c.Time.Before(best.Time) {
			p.proven[e.MeetingID] = c
		}
	}
}

// integrity notes a finding that breaks a meeting's chain at a version:
// nothing from there on can be proven.
func (p *prover) integrity(f *Finding) {
	switch f.Kind {
	case Malformed, VersionGap, HashMismatch, ChainBroken, DuplicateID, SequenceOrder:
	default:
		return
	}
	if f.MeetingID == "" {
		return
	}
	if v, ok := p.broken[f.MeetingID]; !ok || f.Version < v {
		p.broken[f.MeetingID] = f.Version
	}
}

// finish reports checkpoints past the log's end and fills the proof.
func (p *prover) finish(r *Report, add func(Finding)) {
	ids := map[string]bool{}
	for id := range p.last {
		ids[id] = true
	}
	for id, vs := range p.want {
		ids[id] = true
		last := p.last[id]
		var beyond []checkpoint.Signed
		for v, cs := range vs {
			if v > last {
				beyond = append(beyond, cs...)
			}
		}
		if len(beyond) == 0 {
			continue
		}
		top := slices.MaxFunc(beyond, func(a, b checkpoint.Signed) int { return cmp.Compare(a.Version, b.Version) })
		what := fmt.Sprintf("the log ends at version %d", last)
		if last == 0 {
			what = "the log holds no event of the meeting"
		}
		add(Finding{MeetingID: id, Version: top.Version, Kind: CheckpointFailed,
			Reason: fmt.Sprintf("the checkpoint signed at %s names version %d (hash %s), but %s: %s lost or cut",
				top.Time.Format(timeFmt), top.Version, short(top.Hash), what, missing(last+1, top.Version))})
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		m := MeetingProof{MeetingID: id, Last: p.last[id]}
		if c, ok := p.proven[id]; ok {
			m.Proven, m.At = c.Version, c.Time
			if b, broken := p.broken[id]; broken && b <= c.Version {
				m.Proven, m.At = 0, time.Time{}
			}
		}
		p.proof.Meetings = append(p.proof.Meetings, m)
	}
	r.Proof = &p.proof
}

// CheckpointSource is implemented by sources that keep signed checkpoints
// beside the log (a JetStream stream, a data directory of the embedded
// default: natsstore's checkpoint stream).
type CheckpointSource interface {
	// Checkpoints yields the checkpoints kept with the log, signatures
	// unchecked; a checkpoint that does not parse is an error wrapping
	// checkpoint.ErrMalformed, and reading goes on if the caller keeps
	// ranging.
	Checkpoints(ctx context.Context) iter.Seq2[checkpoint.Signed, error]
}

var _ CheckpointSource = (*jsSource)(nil)

// Checkpoints implements [CheckpointSource]: the stream's checkpoint stream
// (natsstore.CheckpointStream).
func (s *jsSource) Checkpoints(ctx context.Context) iter.Seq2[checkpoint.Signed, error] {
	return natsstore.ReadCheckpoints(ctx, s.js, s.stream)
}

// ReadCheckpoints returns the checkpoints a source keeps (nothing for a
// source that keeps none) and the errors of those that do not parse,
// joined; any other error ends the read.
func ReadCheckpoints(ctx context.Context, src Source) ([]checkpoint.Signed, error) {
	cs, ok := src.(CheckpointSource)
	if !ok {
		return nil, nil
	}
	var out []checkpoint.Signed
	var bad []error
	for c, err := range cs.Checkpoints(ctx) {
		if errors.Is(err, checkpoint.ErrMalformed) {
			bad = append(bad, err)
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, errors.Join(bad...)
}
