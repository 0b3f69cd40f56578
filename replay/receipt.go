package replay

// Receipts: one event of a meeting and the hash chain from it to a later
// head, checkable offline without the rest of the log.
//
// An event's hash is SHA-256(body || PrevHash), where body is the event's
// canonical encoding (events.Envelope.HashBody) and PrevHash, the previous
// event's hash, comes last. So the link from event v to event v+1 can be
// checked without v+1's body: SHA-256 processes its input in 64-byte blocks,
// and its state after the body's whole blocks (32 bytes), the body's length
// and its last length mod 64 bytes are enough to finish the hash of
// body || PrevHash for the PrevHash the chain says. That is the least the
// chain's construction allows: each link of a receipt carries that state,
// that length, those last bytes (at most 63: the end of the event's payload
// JSON) and the hash it yields, and no other part of the event.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
)

// ReceiptFormat is the format number of the receipts this package writes
// and reads (the "receipt" member of the JSON form).
const ReceiptFormat = 1

// ErrMalformedReceipt is wrapped by [ParseReceipt]'s errors: bytes that are
// not a receipt in the JSON form of [Receipt.MarshalJSON].
var ErrMalformedReceipt = errors.New("replay: malformed receipt")

// ErrReceiptInvalid is wrapped by [VerifyReceipt]'s errors: the receipt's
// event is not linked to its head by its hash chain, or its checkpoint does
// not name its head or was not signed by the key.
var ErrReceiptInvalid = errors.New("replay: receipt does not verify")

// ErrNoReceipt is wrapped by [MakeReceipt]'s errors when the log cannot give
// the receipt asked for: no such event, a head before it, or a log whose
// chain is broken between the two (run Verify).
var ErrNoReceipt = errors.New("replay: cannot make the receipt")

// Receipt is one event of a meeting and the hash chain from it to a later
// head of the meeting, optionally anchored by a signed checkpoint of that
// head. See [VerifyReceipt] for what it proves.
type Receipt struct {
	// Event is the event the receipt is for, whole.
	Event events.Envelope
	// Links are the events after it up to the head, in version order,
	// each reduced to what its hash needs besides the previous hash.
	Links []ReceiptLink
	// Head is the last event the chain reaches.
	Head ReceiptHead
	// Checkpoint is a signed checkpoint of the head (same meeting, version
	// and hash), or nil.
	Checkpoint *checkpoint.Signed
}

// ReceiptLink is one event between a receipt's event and its head: its
// hash is SHA-256 resumed from State (the state after Prefix bytes of the
// event's hash body) over Tail (the body's remaining bytes) and the previous
// event's hash.
type ReceiptLink struct {
	// Version is the event's version.
	Version uint64
	// State is SHA-256's chaining value after the first Prefix bytes of
	// the event's hash body.
	State [sha256.Size]byte
	// Prefix is how many bytes of the body State covers: a multiple of 64.
	Prefix uint64
	// Tail is the rest of the body: fewer than 64 bytes.
	Tail []byte
	// Hash is the event's hash.
	Hash events.Hash
}

// ReceiptHead is the head a receipt's chain reaches.
type ReceiptHead struct {
	Version uint64
	Hash    events.Hash
}

// receiptOptions configure [MakeReceipt].
type receiptOptions struct {
	head uint64
	pub  ed25519.PublicKey
	cps  []checkpoint.Signed
}

// ReceiptOption configures [MakeReceipt].
type ReceiptOption func(*receiptOptions)

// ReceiptHeadAt ends the receipt's chain at version v of the meeting (at
// least the event's) instead of the default: the latest checkpointed
// version (with [ReceiptCheckpoints]), else the meeting's last event.
func ReceiptHeadAt(v uint64) ReceiptOption { return func(o *receiptOptions) { o.head = v } }

// ReceiptCheckpoints anchors the receipt: of cps, those of the meeting that
// pub signed, at or after the event's version, whose hash is the log's
// hash at their version, the latest (or the one at [ReceiptHeadAt]'s
// version) becomes the receipt's head and its Checkpoint. With none, the
// receipt has no checkpoint.
func ReceiptCheckpoints(pub ed25519.PublicKey, cps []checkpoint.Signed) ReceiptOption {
	return func(o *receiptOptions) { o.pub, o.cps = pub, cps }
}

// linkOf reduces e to a receipt link.
func linkOf(e *events.Envelope) (ReceiptLink, error) {
	body, err := e.HashBody()
	if err != nil {
		return ReceiptLink{}, err
	}
	n := len(body) - len(body)%sha256.BlockSize
	h := sha256.New()
	h.Write(body[:n])
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return ReceiptLink{}, err
	}
	l := ReceiptLink{Version: e.Version, Prefix: uint64(n), Tail: slices.Clone(body[n:]), Hash: e.Hash}
	copy(l.State[:], st[len(sha256Magic):])
	return l, nil
}

// sha256Magic starts crypto/sha256's marshaled state, followed by the 8
// state words (big-endian), the 64-byte block buffer and the length in
// bytes (big-endian uint64).
const sha256Magic = "sha\x03"

// hash returns the hash the link yields after prev.
func (l *ReceiptLink) hash(prev events.Hash) (events.Hash, error) {
	st := make([]byte, 0, len(sha256Magic)+sha256.Size+sha256.BlockSize+8)
	st = append(st, sha256Magic...)
	st = append(st, l.State[:]...)
	st = append(st, make([]byte, sha256.BlockSize)...)
	st = binary.BigEndian.AppendUint64(st, l.Prefix)
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
		return events.Hash{}, err
	}
	h.Write(l.Tail)
	h.Write(prev[:])
	var out events.Hash
	h.Sum(out[:0])
	return out, nil
}

// MakeReceipt makes the receipt of meetingID's event at version from evs,
// the meeting's events in version order (as [Source.Events] yields them;
// other meetings' events are skipped). Every event from version to the
// head must be intact and linked to the one before (else the error wraps
// [ErrNoReceipt]: run [Verify]); the events after the head are not read.
func MakeReceipt(ctx context.Context, evs iter.Seq2[events.Envelope, error], meetingID string, version uint64, opts ...ReceiptOption) (*Receipt, error) {
	var o receiptOptions
	for _, f := range opts {
		f(&o)
	}
	if err := events.ValidateID(meetingID); err != nil {
		return nil, fmt.Errorf("replay: receipt: %w", err)
	}
	if version == 0 {
		return nil, fmt.Errorf("%w: version 0 (events start at 1)", ErrNoReceipt)
	}
	if o.head != 0 && o.head < version {
		return nil, fmt.Errorf("%w: head version %d is before the event's version %d", ErrNoReceipt, o.head, version)
	}
	// The checkpoints that may anchor it, by version.
	anchors := map[uint64]checkpoint.Signed{}
	for _, c := range o.cps {
		if c.MeetingID != meetingID || c.Version < version || (o.head != 0 && c.Version != o.head) || c.Verify(o.pub) != nil {
			continue
		}
		if old, ok := anchors[c.Version]; !ok || c.Time.After(old.Time) {
			anchors[c.Version] = c
		}
	}
	var (
		r        Receipt
		found    bool
		prev     events.Hash
		last     uint64
		anchored uint64 // the latest anchor the log matches
	)
	for e, err := range evs {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.MeetingID != meetingID || e.Version < version {
			continue
		}
		if o.head != 0 && e.Version > o.head {
			break
		}
		if err := e.Verify(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoReceipt, err)
		}
		switch {
		case !found && e.Version != version:
			return nil, fmt.Errorf("%w: meeting %s has no event at version %d (the first after it is %d)", ErrNoReceipt, meetingID, version, e.Version)
		case !found:
			r.Event, found = e, true
		case e.Version != last+1 || e.PrevHash != prev:
			return nil, fmt.Errorf("%w: meeting %s's chain is broken at version %d (after %d): verify the log", ErrNoReceipt, meetingID, e.Version, last)
		default:
			l, err := linkOf(&e)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNoReceipt, err)
			}
			r.Links = append(r.Links, l)
		}
		prev, last = e.Hash, e.Version
		if c, ok := anchors[e.Version]; ok && c.Hash == e.Hash {
			anchored = e.Version
		}
		if o.head != 0 && e.Version == o.head {
			break
		}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("%w: meeting %s has no event at version %d", ErrNoReceipt, meetingID, version)
	case o.head != 0 && last != o.head:
		return nil, fmt.Errorf("%w: meeting %s ends at version %d, before the head asked for (%d)", ErrNoReceipt, meetingID, last, o.head)
	}
	if anchored != 0 {
		// The chain ends at the latest checkpoint.
		r.Links = r.Links[:anchored-version]
		c := anchors[anchored]
		r.Checkpoint = &c
	}
	r.Head = ReceiptHead{Version: version + uint64(len(r.Links)), Hash: r.Event.Hash}
	if n := len(r.Links); n > 0 {
		r.Head.Hash = r.Links[n-1].Hash
	}
	return &r, nil
}

// ReceiptVerdict is what [VerifyReceipt] established.
type ReceiptVerdict struct {
	// MeetingID, Version, Type, Time and Users are the receipt's event's.
	MeetingID string
	Version   uint64
	Type      events.Type
	Time      time.Time
	Users     []string
	// Head is the head its chain reaches.
	Head ReceiptHead
	// Anchored: a checkpoint of the head was checked against the public
	// key given (Key); false without a key or without a checkpoint.
	Anchored bool
	Key      checkpoint.KeyID
	// CheckpointTime is when the checkpoint was signed (zero without one).
	CheckpointTime time.Time
}

// VerifyReceipt checks r offline: that its event is intact (its hash is
// the hash of its contents), that each link continues the chain (its
// version is the next, and its hash is the one its state, tail and the
// previous hash yield), that the chain ends at the head, and that a
// checkpoint, when there is one, names that head. With pub not nil the
// receipt must carry a checkpoint that pub signed: the head is then the
// deployment's, not one anyone could make up. Errors wrap
// [ErrReceiptInvalid] (and checkpoint.ErrBadSignature for a signature).
//
// A valid anchored receipt proves that the deployment's log held the event,
// exactly as given, at that version of the meeting when the checkpoint was
// signed. It does not prove that the event was legal (verify the whole
// log), what the events in between were, nor what came after the head.
func VerifyReceipt(r *Receipt, pub ed25519.PublicKey) (*ReceiptVerdict, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrReceiptInvalid, fmt.Sprintf(format, args...))
	}
	if r == nil {
		return nil, bad("no receipt")
	}
	e := &r.Event
	if err := events.ValidateID(e.MeetingID); err != nil {
		return nil, bad("the event's meeting: %v", err)
	}
	if e.Version == 0 {
		return nil, bad("the event has version 0")
	}
	if err := e.Verify(); err != nil {
		return nil, bad("the event was edited after it was sealed: %v", err)
	}
	h := e.Hash
	for i := range r.Links {
		l := &r.Links[i]
		want := e.Version + uint64(i) + 1
		switch {
		case l.Version != want:
			return nil, bad("link %d is version %d, want %d: a link is missing or out of place", i+1, l.Version, want)
		case l.Prefix%sha256.BlockSize != 0 || len(l.Tail) >= sha256.BlockSize:
			return nil, bad("link %d (version %d): prefix %d and tail of %d bytes are not a SHA-256 state and the rest of a block", i+1, l.Version, l.Prefix, len(l.Tail))
		}
		next, err := l.hash(h)
		if err != nil {
			return nil, bad("link %d (version %d): %v", i+1, l.Version, err)
		}
		if next != l.Hash {
			return nil, bad("link %d (version %d) does not follow version %d: it yields hash %s, it says %s", i+1, l.Version, want-1, short(next), short(l.Hash))
		}
		h = next
	}
	headVersion := e.Version + uint64(len(r.Links))
	if r.Head.Version != headVersion || r.Head.Hash != h {
		return nil, bad("the chain reaches version %d hash %s, the receipt's head is version %d hash %s", headVersion, short(h), r.Head.Version, short(r.Head.Hash))
	}
	v := &ReceiptVerdict{MeetingID: e.MeetingID, Version: e.Version, Type: e.Type, Time: e.Time, Users: e.Users(), Head: r.Head}
	if c := r.Checkpoint; c != nil {
		if c.MeetingID != e.MeetingID || c.Version != r.Head.Version || c.Hash != r.Head.Hash {
			return nil, bad("the checkpoint names meeting %s version %d hash %s, not the head (meeting %s version %d hash %s)",
				c.MeetingID, c.Version, short(c.Hash), e.MeetingID, r.Head.Version, short(r.Head.Hash))
		}
		v.CheckpointTime = c.Time
	}
	if pub != nil {
		if r.Checkpoint == nil {
			return nil, bad("no checkpoint: nothing ties the head to the key")
		}
		if err := r.Checkpoint.Verify(pub); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrReceiptInvalid, err)
		}
		v.Anchored, v.Key = true, r.Checkpoint.Key
	}
	return v, nil
}

// The JSON form of a receipt.
type receiptJSON struct {
	Format     *int            `json:"receipt"`
	Event      json.RawMessage `json:"event"`
	Links      []linkJSON      `json:"links"`
	Head       *headJSON       `json:"head"`
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"`
}

type linkJSON struct {
	Version *uint64      `json:"version"`
	State   *events.Hash `json:"state"`
	Prefix  *uint64      `json:"prefix"`
	Tail    []byte       `json:"tail"`
	Hash    *events.Hash `json:"hash"`
}

type headJSON struct {
	Version *uint64      `json:"version"`
	Hash    *events.Hash `json:"hash"`
}

// MarshalJSON writes the receipt's JSON form: {"receipt": 1, "event": the
// event in the wire format of package events, "links": [{"version",
// "state" (hex), "prefix", "tail" (base64), "hash" (hex)}, ...], "head":
// {"version", "hash"}, "checkpoint": the signed checkpoint or absent}.
func (r *Receipt) MarshalJSON() ([]byte, error) {
	ev, err := events.Marshal(&r.Event)
	if err != nil {
		return nil, err
	}
	f := ReceiptFormat
	out := receiptJSON{Format: &f, Event: ev, Links: make([]linkJSON, len(r.Links)),
		Head: &headJSON{Version: &r.Head.Version, Hash: &r.Head.Hash}}
	for i := range r.Links {
		l := &r.Links[i]
		st := events.Hash(l.State)
		tail := l.Tail
		if tail == nil {
			tail = []byte{}
		}
		out.Links[i] = linkJSON{Version: &l.Version, State: &st, Prefix: &l.Prefix, Tail: tail, Hash: &l.Hash}
	}
	if r.Checkpoint != nil {
		if out.Checkpoint, err = checkpoint.Marshal(r.Checkpoint); err != nil {
			return nil, err
		}
	}
	return json.Marshal(out)
}

// maxReceiptLinks bounds the links ParseReceipt accepts.
const maxReceiptLinks = 1 << 24

// ParseReceipt decodes a receipt's JSON form. It is strict: unknown
// members, trailing data, a missing member, an event that does not decode,
// a link that is not one (a prefix that is not a multiple of 64, a tail of
// 64 bytes or more), or a checkpoint that does not parse return an error
// wrapping [ErrMalformedReceipt]. It checks no hash: see [VerifyReceipt].
func ParseReceipt(b []byte) (*Receipt, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedReceipt, fmt.Sprintf(format, args...))
	}
	var w receiptJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return nil, bad("%v", err)
	}
	if _, err := d.Token(); err == nil {
		return nil, bad("data after the receipt")
	}
	switch {
	case w.Format == nil:
		return nil, bad(`no "receipt" member (the format number)`)
	case *w.Format != ReceiptFormat:
		return nil, bad("format %d, this program reads format %d", *w.Format, ReceiptFormat)
	case w.Event == nil:
		return nil, bad(`no "event"`)
	case w.Head == nil || w.Head.Version == nil || w.Head.Hash == nil:
		return nil, bad(`no "head" with "version" and "hash"`)
	case w.Links == nil:
		return nil, bad(`no "links" (an empty list when the event is the head)`)
	case len(w.Links) > maxReceiptLinks:
		return nil, bad("%d links, at most %d", len(w.Links), maxReceiptLinks)
	}
	e, err := events.Unmarshal(w.Event)
	if err != nil {
		return nil, bad("event: %v", err)
	}
	r := &Receipt{Event: e, Head: ReceiptHead{Version: *w.Head.Version, Hash: *w.Head.Hash}, Links: make([]ReceiptLink, len(w.Links))}
	for i, l := range w.Links {
		if l.Version == nil || l.State == nil || l.Prefix == nil || l.Tail == nil || l.Hash == nil {
			return nil, bad(`link %d: want "version", "state", "prefix", "tail" and "hash"`, i+1)
		}
		if *l.Prefix%sha256.BlockSize != 0 || len(l.Tail) >= sha256.BlockSize {
			return nil, bad("link %d: prefix %d is not a multiple of %d, or its tail of %d bytes is not shorter", i+1, *l.Prefix, sha256.BlockSize, len(l.Tail))
		}
		r.Links[i] = ReceiptLink{Version: *l.Version, State: *l.State, Prefix: *l.Prefix, Tail: l.Tail, Hash: *l.Hash}
	}
	if w.Checkpoint != nil {
		c, err := checkpoint.Parse(w.Checkpoint)
		if err != nil {
			return nil, bad("checkpoint: %v", err)
		}
		r.Checkpoint = &c
	}
	return r, nil
}

// KicksAndDenials returns the events of evs (one meeting's, or a log's)
// that kicked userID off the stage or denied their request, in order: the
// events a receipt is usually asked for. A host's decision about the whole
// meeting counts for the users it moved: a StageEnded that took them off
// the stage (or withdrew their acceptance, or closed their request), a
// RequestsClosed that denied their pending request. With userID "" it
// returns every such event (a StageEnded or RequestsClosed only when it
// moved someone).
func KicksAndDenials(evs iter.Seq2[events.Envelope, error], userID string) ([]events.Envelope, error) {
	var out []events.Envelope
	for e, err := range evs {
		if err != nil {
			return out, err
		}
		switch e.Type {
		case events.TypeKicked, events.TypeAccessDenied:
		case events.TypeStageEnded, events.TypeRequestsClosed:
			if len(e.Users()) == 0 {
				continue
			}
		default:
			continue
		}
		if userID == "" || slices.Contains(e.Users(), userID) {
			out = append(out, e)
		}
	}
	return out, nil
}
