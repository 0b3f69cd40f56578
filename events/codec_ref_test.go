package events

// The reference codec: the encoding/json implementation that the
// hand-written codec replaced, kept verbatim (renamed) as the definition the
// differential tests hold the fast codec to.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// refWire is the JSON form of an Envelope.
type refWire struct {
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

// refMarshal is the old Marshal.
func refMarshal(e *Envelope) ([]byte, error) {
	if e.Payload == nil {
		return nil, fmt.Errorf("%w: nil payload", ErrMalformed)
	}
	p, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("events: encode %s payload: %w", e.Type, err)
	}
	return json.Marshal(refWire{
		Schema: e.Schema, ID: e.ID, MeetingID: e.MeetingID, Version: e.Version,
		Type: e.Type, Time: e.Time.UTC(), Actor: e.Actor, CommandID: e.CommandID,
		CorrelationID: e.CorrelationID, Payload: p, PrevHash: e.PrevHash,
		Hash: e.Hash, Seq: e.Seq,
	})
}

// refUnmarshal is the old Unmarshal.
func refUnmarshal(data []byte) (Envelope, error) {
	var w refWire
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

// refComputeHash is the old ComputeHash.
func refComputeHash(e *Envelope) (Hash, error) {
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

// refStrictUnmarshal is refUnmarshal with the three rules the fast decoder
// adds (see Unmarshal): it also rejects anything but white space after the
// event (the old decoder let a '}' or ']' through), a member name that is
// not exactly a field's name (the old decoder ignored case), and a member
// name given twice in one object (the old decoder kept the last, or merged
// nested objects).
func refStrictUnmarshal(data []byte) (Envelope, error) {
	if err := refStrictShape(data); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return refUnmarshal(data)
}

// refNames is every member name of the wire format, envelope and payloads.
var refNames = func() map[string]bool {
	names := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice:
			walk(t.Elem())
		case reflect.Struct:
			switch t {
			case reflect.TypeFor[time.Time]():
				return
			case reflect.TypeFor[Settings](): // written by its MarshalJSON
				t = reflect.TypeFor[settingsWire]()
			}
			for i := range t.NumField() {
				name, _, _ := bytes.Cut([]byte(t.Field(i).Tag.Get("json")), []byte(","))
				names[string(name)] = true
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeFor[refWire]())
	for _, typ := range Types() {
		walk(reflect.TypeOf(newPayload(typ)))
	}
	return names
}()

// refStrictShape checks the three rules of refStrictUnmarshal with the
// encoding/json tokenizer.
func refStrictShape(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 10000 {
			return errors.New("exceeded max depth")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := tok.(string)
				if seen[k] {
					return fmt.Errorf("duplicate field %q", k)
				}
				if !refNames[k] {
					return fmt.Errorf("unknown field %q", k)
				}
				seen[k] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			return err
		}
		return nil
	}
	if err := walk(0); err != nil {
		return err
	}
	rest := data[dec.InputOffset():]
	if len(bytes.Trim(rest, " \t\r\n")) != 0 {
		return errors.New("trailing data after the event")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data: %v", err)
	}
	return nil
}

// refValidateID is the old ValidateID, rune by rune.
func refValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidID, len(id), MaxIDLen)
	}
	for i, r := range id {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(id[i:], "\uFFFD"):
			return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrInvalidID, i)
		case unicode.IsControl(r):
			return fmt.Errorf("%w: control character %U at byte %d", ErrInvalidID, r, i)
		}
	}
	return nil
}
