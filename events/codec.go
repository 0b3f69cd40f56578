package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// ErrInvalidID is returned (wrapped) by [ValidateID] for an id that could
// change where an event is stored.
var ErrInvalidID = errors.New("events: invalid id")

// MaxIDLen is the longest meeting or user id, in bytes.
const MaxIDLen = 128

// ValidateID reports whether id can be used as a meeting or user id: 1 to
// [MaxIDLen] bytes of valid UTF-8, with no control characters, no white space
// and none of '.', '*', '>' (which would add a token or a wildcard to a NATS
// subject). The error wraps [ErrInvalidID] and says what is wrong.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidID, len(id), MaxIDLen)
	}
	for i, r := range id {
		switch {
		case r == utf8.RuneError:
			return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidID, i)
		case r == '.' || r == '*' || r == '>':
			return fmt.Errorf("%w: %q at byte %d", ErrInvalidID, r, i)
		case unicode.IsControl(r) || unicode.IsSpace(r):
			return fmt.Errorf("%w: control or space character %U at byte %d", ErrInvalidID, r, i)
		}
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

// wire is the JSON form of an Envelope. The field names are the audit format:
// they are documented in doc.go and never change within a schema version.
type wire struct {
	Schema        int             `json:"schema"`
	ID            uuid.UUID       `json:"id"`
	MeetingID     string          `json:"meeting"`
	Version       uint64          `json:"version"`
	Type          Type            `json:"type"`
	Time          time.Time       `json:"time"`
	Actor         string          `json:"actor,omitempty"`
	CommandID     string          `json:"command"`
	CorrelationID string          `json:"correlation,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      Hash            `json:"prev"`
	Hash          Hash            `json:"hash"`
	Seq           uint64          `json:"seq,omitempty"`
}

// Marshal encodes e in the JSON wire format (one line, no trailing newline).
func Marshal(e *Envelope) ([]byte, error) {
	if e.Payload == nil {
		return nil, fmt.Errorf("%w: nil payload", ErrMalformed)
	}
	p, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s payload: %w", e.Type, err)
	}
	return json.Marshal(wire{
		Schema: e.Schema, ID: e.ID, MeetingID: e.MeetingID, Version: e.Version,
		Type: e.Type, Time: e.Time.UTC(), Actor: e.Actor, CommandID: e.CommandID,
		CorrelationID: e.CorrelationID, Payload: p, PrevHash: e.PrevHash,
		Hash: e.Hash, Seq: e.Seq,
	})
}

// Unmarshal decodes one event in the JSON wire format and checks that it is
// well formed (known schema and type, valid ids, version >= 1, a payload of
// the right shape). It does not check the hash: see [Envelope.Verify]. Errors
// wrap [ErrMalformed].
func Unmarshal(data []byte) (Envelope, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Envelope{}, fmt.Errorf("%w: trailing data after the event", ErrMalformed)
	}
	if w.Schema != SchemaVersion {
		return Envelope{}, fmt.Errorf("%w: schema %d, this build reads %d", ErrMalformed, w.Schema, SchemaVersion)
	}
	p := newPayload(w.Type)
	if p == nil {
		return Envelope{}, fmt.Errorf("%w: unknown event type %q", ErrMalformed, w.Type)
	}
	if len(w.Payload) == 0 || w.Payload[0] != '{' {
		return Envelope{}, fmt.Errorf("%w: %s payload is not an object", ErrMalformed, w.Type)
	}
	pd := json.NewDecoder(bytes.NewReader(w.Payload))
	pd.DisallowUnknownFields()
	if err := pd.Decode(p); err != nil {
		return Envelope{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, w.Type, err)
	}
	e := Envelope{
		ID: w.ID, MeetingID: w.MeetingID, Version: w.Version, Type: w.Type,
		Time: w.Time, Actor: w.Actor, CommandID: w.CommandID,
		CorrelationID: w.CorrelationID, Schema: w.Schema, Payload: p,
		PrevHash: w.PrevHash, Hash: w.Hash, Seq: w.Seq,
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
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
	if err := ValidateID(e.MeetingID); err != nil {
		return bad("meeting: %v", err)
	}
	if e.Actor != "" {
		if err := ValidateID(e.Actor); err != nil {
			return bad("actor: %v", err)
		}
	}
	for _, u := range e.Users() {
		if err := ValidateID(u); err != nil {
			return bad("user: %v", err)
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
	p, err := json.Marshal(e.Payload)
	if err != nil {
		return Hash{}, fmt.Errorf("events: encode %s payload: %w", e.Type, err)
	}
	buf := make([]byte, 0, 192+len(p)+len(e.MeetingID)+len(e.CommandID))
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
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(p)))
	buf = append(buf, p...)
	buf = append(buf, e.PrevHash[:]...)
	return sha256.Sum256(buf), nil
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
