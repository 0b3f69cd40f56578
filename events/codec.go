package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ErrMalformed is returned (wrapped) when bytes do not decode to a valid
// event: bad JSON, an unknown type or schema, a payload that does not match
// its type, or a missing field.
var ErrMalformed = errors.New("events: malformed event")

// ErrHashMismatch is returned (wrapped) by [Envelope.Verify] when an event's
// hash is not the hash of its contents: it was edited after it was sealed.
var ErrHashMismatch = errors.New("events: hash does not match contents")

// ErrInvalidID is returned (wrapped) by [ValidateID] for an id that is not
// a meeting or user id.
var ErrInvalidID = errors.New("events: invalid id")

// MaxIDLen is the longest meeting or user id, in bytes.
const MaxIDLen = 128

// ValidateID reports whether id can be used as a meeting or user id: 1 to
// [MaxIDLen] bytes of valid UTF-8 with no control character (Unicode
// category Cc: U+0000-U+001F, U+007F-U+009F, so no tab or line break).
// Anything else is allowed: '.', '*', '>', '@', spaces ("Ana Lima"), any
// script. An id is taken as given, byte for byte: "bob" and "bob " are two
// ids, and so are two Unicode normalizations of one name; trim or
// normalize before, if that is wanted. No id reaches a NATS subject or key
// as is: the JetStream store escapes meeting ids (see natsstore.SubjectToken)
// and never uses user ids in names. The error wraps [ErrInvalidID] and says
// what is wrong.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidID, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		// The common case, ASCII: the same rules, without decoding runes.
		if c := id[i]; c < ' ' || c >= 0x7F {
			return validateIDRunes(id, i)
		}
	}
	return nil
}

// validateIDRunes is ValidateID from byte from on, rune by rune.
func validateIDRunes(id string, from int) error {
	for i := from; i < len(id); {
		r, n := utf8.DecodeRuneInString(id[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidID, i)
		case unicode.IsControl(r):
			return fmt.Errorf("%w: control character %U at byte %d", ErrInvalidID, r, i)
		}
		i += n
	}
	return nil
}

// Hash is a SHA-256 digest, written in JSON as 64 lowercase hex digits.
type Hash [sha256.Size]byte

// IsZero reports whether h is all zeros (the PrevHash of a meeting's first event).
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes h in hex.
func (h Hash) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(b, h[:])
	return b, nil
}

// UnmarshalText decodes 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// Marshal encodes e in the JSON wire format (one line, no trailing newline).
// The bytes are exactly those encoding/json writes for the wire format
// (field order, omitempty, escaping, RFC 3339 UTC time): the audit format is
// defined by them.
func Marshal(e *Envelope) ([]byte, error) {
	if e.Payload == nil {
		return nil, fmt.Errorf("%w: nil payload", ErrMalformed)
	}
	n := 384 + len(e.MeetingID) + len(e.Actor) + len(e.CommandID) + len(e.CorrelationID)
	if p, ok := e.Payload.(*Lapsed); ok && p != nil { // the one payload that may be long
		n += 256 * len(p.Lapses)
	}
	return appendEnvelope(make([]byte, 0, n), e)
}

// appendEnvelope appends the wire encoding of e (whose Payload is not nil).
func appendEnvelope(b []byte, e *Envelope) ([]byte, error) {
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(e.Schema), 10)
	b = append(b, `,"id":`...)
	b = appendJSONUUID(b, e.ID)
	b = append(b, `,"meeting":`...)
	b = appendJSONString(b, e.MeetingID)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, e.Version, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, string(e.Type))
	b = append(b, `,"time":`...)
	b, err := appendJSONTime(b, e.Time)
	if err != nil {
		return nil, err
	}
	if e.Actor != "" {
		b = append(b, `,"actor":`...)
		b = appendJSONString(b, e.Actor)
	}
	b = append(b, `,"command":`...)
	b = appendJSONString(b, e.CommandID)
	if e.CorrelationID != "" {
		b = append(b, `,"correlation":`...)
		b = appendJSONString(b, e.CorrelationID)
	}
	b = append(b, `,"payload":`...)
	if b, err = appendPayload(b, e); err != nil {
		return nil, err
	}
	b = append(b, `,"prev":`...)
	b = appendJSONHash(b, &e.PrevHash)
	b = append(b, `,"hash":`...)
	b = appendJSONHash(b, &e.Hash)
	if e.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, e.Seq, 10)
	}
	return append(b, '}'), nil
}

// appendPayload appends the JSON of e.Payload: exactly what json.Marshal
// writes for it (the differential tests hold each payload's appendJSON to
// encoding/json), failing where json.Marshal fails.
func appendPayload(b []byte, e *Envelope) ([]byte, error) {
	// Static calls, so that b does not escape (the hash encodes into a
	// buffer on the stack).
	var err error
	switch p := e.Payload.(type) {
	case *ParticipantJoined:
		b = p.appendJSON(b)
	case *ParticipantLeft:
		b = p.appendJSON(b)
	case *PermissionsChanged:
		b = p.appendJSON(b)
	case *AccessRequested:
		b = p.appendJSON(b)
	case *AccessRequestCancelled:
		b = p.appendJSON(b)
	case *AccessGranted:
		b = p.appendJSON(b)
	case *AccessDenied:
		b = p.appendJSON(b)
	case *StageJoined:
		b = p.appendJSON(b)
	case *StageLeft:
		b = p.appendJSON(b)
	case *Kicked:
		b = p.appendJSON(b)
	case *SettingsChanged:
		b = p.appendJSON(b)
	case *SeatWaitlisted:
		b = p.appendJSON(b)
	case *StageBanned:
		b, err = p.appendJSON(b)
	case *BanLifted:
		b = p.appendJSON(b)
	case *Disconnected:
		b = p.appendJSON(b)
	case *Reconnected:
		b = p.appendJSON(b)
	case *Lapsed:
		b, err = p.appendJSON(b)
	case *StageStarted:
		b = p.appendJSON(b)
	case *StageEnded:
		b = p.appendJSON(b)
	case *RequestsClosed:
		b = p.appendJSON(b)
	case *RequestsOpened:
		b = p.appendJSON(b)
	case *CoHostPromoted:
		b = p.appendJSON(b)
	case *CoHostDemoted:
		b = p.appendJSON(b)
	case *InvitationDeclined:
		b = p.appendJSON(b)
	case *BroughtOnStage:
		b = p.appendJSON(b)
	default:
		// Unreachable: the payload types are this package's, and the
		// tests encode one of each of Types().
		err = fmt.Errorf("no encoder for %T", p)
	}
	if err != nil {
		return nil, fmt.Errorf("events: encode %s payload: %w", e.Type, err)
	}
	return b, nil
}

// envelopeNames are the wire format's member names, in order.
var envelopeNames = []string{
	"schema", "id", "meeting", "version", "type", "time", "actor",
	"command", "correlation", "payload", "prev", "hash", "seq",
}

// Unmarshal decodes one event in the JSON wire format and checks that it is
// well formed (known schema and type, valid ids, version >= 1, a payload of
// the right shape). It does not check the hash: see [Envelope.Verify]. Errors
// wrap [ErrMalformed].
//
// Decoding is strict. It accepts what encoding/json (with unknown fields
// disallowed) accepts for the wire format, with three exceptions, all of
// which it rejects: a member name that matches a field only when case is
// ignored, a member name given twice in one object, and anything but white
// space after the event. A null member leaves its field empty, as with
// encoding/json.
func Unmarshal(data []byte) (Envelope, error) {
	var e Envelope
	d := decoder{data: data}
	if err := d.envelope(&e); err != nil {
		return Envelope{}, err
	}
	if d.peek() != 0 || d.off != len(data) {
		return Envelope{}, fmt.Errorf("%w: trailing data after the event", ErrMalformed)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// envelope reads the event object into e, including its payload.
func (d *decoder) envelope(e *Envelope) error {
	payloadAt := -1 // offset of a payload read before the type
	sawPayload := false
	// The meeting, actor, command and correlation ids share one allocation:
	// their bytes gather in text, the k-th at text[starts[k]:ends[k]].
	var textBuf [192]byte
	text := textBuf[:0]
	var starts, ends [4]int
	gather := func(k int, field string) error {
		s, _, err := d.stringOrNull(field)
		starts[k] = len(text)
		text = append(text, s...)
		ends[k] = len(text)
		return err
	}
	err := d.object("event", envelopeNames, false, func(i int) (err error) {
		switch i {
		case 0:
			e.Schema, err = d.intValue("schema")
		case 1:
			e.ID, err = d.uuidValue("id")
		case 2:
			err = gather(0, "meeting")
		case 3:
			e.Version, err = d.uintValue("version")
		case 4:
			var s []byte
			if s, _, err = d.stringOrNull("type"); err != nil || len(s) == 0 {
				return err
			}
			if e.Payload = newPayload(Type(s)); e.Payload == nil {
				return d.errorf("unknown event type %q", s)
			}
			if e.Type = e.Payload.EventType(); string(e.Type) != string(s) {
				e.Type = Type(s)
			}
		case 5:
			e.Time, err = d.timeValue("time")
		case 6:
			err = gather(1, "actor")
		case 7:
			err = gather(2, "command")
		case 8:
			err = gather(3, "correlation")
		case 9:
			sawPayload = true
			if e.Payload != nil {
				return d.payload(e.Type, e.Payload)
			}
			if d.peek() != '{' {
				return d.wrongType("payload", "an object")
			}
			payloadAt = d.off
			return d.skipValue()
		case 10:
			err = d.hashValue("prev", &e.PrevHash)
		case 11:
			err = d.hashValue("hash", &e.Hash)
		case 12:
			e.Seq, err = d.uintValue("seq")
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(text) > 0 {
		all := string(text)
		e.MeetingID = all[starts[0]:ends[0]]
		e.Actor = all[starts[1]:ends[1]]
		e.CommandID = all[starts[2]:ends[2]]
		e.CorrelationID = all[starts[3]:ends[3]]
	}
	if e.Schema != SchemaVersion {
		return fmt.Errorf("%w: schema %d, this build reads %d", ErrMalformed, e.Schema, SchemaVersion)
	}
	if e.Payload == nil {
		return fmt.Errorf("%w: unknown event type %q", ErrMalformed, e.Type)
	}
	if payloadAt >= 0 {
		end := d.off
		d.off = payloadAt
		if err := d.payload(e.Type, e.Payload); err != nil {
			return err
		}
		d.off = end
	} else if !sawPayload {
		return fmt.Errorf("%w: %s event with no payload", ErrMalformed, e.Type)
	}
	return nil
}

// Validate checks the envelope's shape: the fields every event must have and
// ids that are valid. It does not check the hash or any stage rule. Errors
// wrap [ErrMalformed].
func (e *Envelope) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	switch {
	case e.ID == uuid.Nil:
		return bad("missing id")
	case e.Version == 0:
		return bad("version 0 (versions start at 1)")
	case e.CommandID == "":
		return bad("missing command id")
	case e.Time.IsZero():
		return bad("missing time")
	case !ValidTime(e.Time):
		return bad("time %s outside the years 1678 to 2262 that the hash can encode", e.Time)
	case e.Payload == nil:
		return bad("missing payload")
	case e.Payload.EventType() != e.Type:
		return bad("type %q with a %s payload", e.Type, e.Payload.EventType())
	}
	if err := validPolicy(e.Payload); err != nil {
		return bad("%s: %v", e.Type, err)
	}
	if err := ValidateID(e.MeetingID); err != nil {
		return bad("meeting: %v", err)
	}
	if e.Actor != "" {
		if err := ValidateID(e.Actor); err != nil {
			return bad("actor: %v", err)
		}
	}
	if u, ok := e.user(); ok { // the common case, without allocating Users
		if err := ValidateID(u); err != nil {
			return bad("user: %v", err)
		}
	} else if p, ok := e.Payload.(*Lapsed); ok { // Users without the list
		for _, l := range p.Lapses {
			if err := ValidateID(l.UserID); err != nil {
				return bad("user: %v", err)
			}
		}
	} else if p, ok := e.Payload.(*StageEnded); ok {
		for _, l := range [...][]string{p.OnStage, p.Accepted, p.Requests} {
			for _, u := range l {
				if err := ValidateID(u); err != nil {
					return bad("user: %v", err)
				}
			}
		}
	} else {
		for _, u := range e.Users() {
			if err := ValidateID(u); err != nil {
				return bad("user: %v", err)
			}
		}
	}
	switch p := e.Payload.(type) {
	case *ParticipantJoined:
		if err := p.Permissions.Validate(); err != nil {
			return bad("%s: %v", e.Type, err)
		}
	case *PermissionsChanged:
		if err := p.Permissions.Validate(); err != nil {
			return bad("%s: %v", e.Type, err)
		}
	case *AccessGranted, *AccessDenied, *Kicked:
		if len(e.Users()) == 0 {
			return bad("%s names no users", e.Type)
		}
	}
	return nil
}

// ValidTime reports whether t can be an event's time: the hash encodes time
// as Unix nanoseconds, so t must be one of them (about the years 1678 to
// 2262). Outside that range two different times would hash alike, and the
// wire format could not encode some of them.
func ValidTime(t time.Time) bool {
	return time.Unix(0, t.UnixNano()).Equal(t)
}

// MarshalJSON implements json.Marshaler with [Marshal].
func (e Envelope) MarshalJSON() ([]byte, error) { return Marshal(&e) }

// UnmarshalJSON implements json.Unmarshaler with [Unmarshal].
func (e *Envelope) UnmarshalJSON(b []byte) error {
	d, err := Unmarshal(b)
	if err != nil {
		return err
	}
	*e = d
	return nil
}

// hashDomain separates this hash from any other use of SHA-256.
const hashDomain = "productdb/stage event v1\x00"

// ComputeHash returns the SHA-256 of e's canonical encoding: a domain tag,
// then each field from ID to PrevHash in declaration order, integers as 8-byte
// big-endian, strings and the payload's JSON length-prefixed, time as Unix
// nanoseconds. Seq and Hash are not covered.
func (e *Envelope) ComputeHash() (Hash, error) {
	if e.Payload == nil {
		return Hash{}, fmt.Errorf("%w: nil payload", ErrMalformed)
	}
	var stack [512]byte
	buf, err := appendHashBody(stack[:0], e)
	if err != nil {
		return Hash{}, err
	}
	buf = append(buf, e.PrevHash[:]...)
	return sha256.Sum256(buf), nil
}

// appendHashBody appends what e's hash covers before PrevHash (e.Payload
// is not nil).
func appendHashBody(buf []byte, e *Envelope) ([]byte, error) {
	buf = append(buf, hashDomain...)
	buf = append(buf, e.ID[:]...)
	buf = appendString(buf, e.MeetingID)
	buf = binary.BigEndian.AppendUint64(buf, e.Version)
	buf = appendString(buf, string(e.Type))
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Time.UnixNano()))
	buf = appendString(buf, e.Actor)
	buf = appendString(buf, e.CommandID)
	buf = appendString(buf, e.CorrelationID)
	buf = binary.BigEndian.AppendUint64(buf, uint64(e.Schema))
	// The payload's JSON, prefixed with its length once it is known.
	at := len(buf)
	buf = binary.BigEndian.AppendUint64(buf, 0)
	buf, err := appendPayload(buf, e)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint64(buf[at:], uint64(len(buf)-at-8))
	return buf, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// Seal links e to the meeting's previous event (prev is its Hash, or zero for
// version 1) and sets e.Hash. Seal after every other field is final.
func (e *Envelope) Seal(prev Hash) error {
	e.PrevHash = prev
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// Verify reports whether e.Hash is the hash of e's contents. The error wraps
// [ErrHashMismatch]. To check the chain as well, compare e.PrevHash with the
// previous event's Hash.
func (e *Envelope) Verify() error {
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	if h != e.Hash {
		return fmt.Errorf("%w: meeting %s version %d: stored %s, computed %s",
			ErrHashMismatch, e.MeetingID, e.Version, e.Hash, h)
	}
	return nil
}

// payload reads the payload object of an event of type t into p, by p's
// own decodeJSON.
func (d *decoder) payload(t Type, p Payload) error {
	if d.peek() != '{' {
		return d.errorf("%s payload is not an object", t)
	}
	var err error
	// Static calls, so that d does not escape.
	switch p := p.(type) {
	case *ParticipantJoined:
		err = p.decodeJSON(d)
	case *ParticipantLeft:
		err = p.decodeJSON(d)
	case *PermissionsChanged:
		err = p.decodeJSON(d)
	case *AccessRequested:
		err = p.decodeJSON(d)
	case *AccessRequestCancelled:
		err = p.decodeJSON(d)
	case *AccessGranted:
		err = p.decodeJSON(d)
	case *AccessDenied:
		err = p.decodeJSON(d)
	case *StageJoined:
		err = p.decodeJSON(d)
	case *StageLeft:
		err = p.decodeJSON(d)
	case *Kicked:
		err = p.decodeJSON(d)
	case *SettingsChanged:
		err = p.decodeJSON(d)
	case *SeatWaitlisted:
		err = p.decodeJSON(d)
	case *StageBanned:
		err = p.decodeJSON(d)
	case *BanLifted:
		err = p.decodeJSON(d)
	case *Disconnected:
		err = p.decodeJSON(d)
	case *Reconnected:
		err = p.decodeJSON(d)
	case *Lapsed:
		err = p.decodeJSON(d)
	case *StageStarted:
		err = p.decodeJSON(d)
	case *StageEnded:
		err = p.decodeJSON(d)
	case *RequestsClosed:
		err = p.decodeJSON(d)
	case *RequestsOpened:
		err = p.decodeJSON(d)
	case *CoHostPromoted:
		err = p.decodeJSON(d)
	case *CoHostDemoted:
		err = p.decodeJSON(d)
	case *InvitationDeclined:
		err = p.decodeJSON(d)
	case *BroughtOnStage:
		err = p.decodeJSON(d)
	default:
		// Unreachable: newPayload makes this package's types, and the
		// tests decode one of each of Types().
		return d.errorf("no decoder for %s payload", t)
	}
	if err != nil {
		return fmt.Errorf("%s payload: %w", t, err)
	}
	return nil
}
