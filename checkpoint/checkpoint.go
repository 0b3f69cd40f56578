// Package checkpoint makes a stage log provable, not only tamper-evident.
//
// The hash chain of a meeting shows that its events are consistent with one
// another, but anyone who can write the log can edit an event and re-hash
// every event after it: the chain then checks again. A checkpoint is the
// head of one meeting's chain (its version and hash) at one moment, signed
// with an Ed25519 key the deployment holds. An edit before a checkpointed
// version changes the hash the checkpoint names; a cut tail leaves the log
// shorter than a checkpoint; neither can be hidden without the private key.
//
// The Engine writes checkpoints periodically and on Close
// (stage.WithCheckpoints) to the sinks the operator chooses: a [File]
// outside the store, the JetStream store's checkpoint stream, or both.
// replay.Verify checks a log against them (replay.WithCheckpoints;
// `stagereplay verify --public-key`).
//
// Keys are PEM files in the standard encodings (PKCS #8 private keys, PKIX
// public keys), the ones `openssl genpkey -algorithm ed25519` writes; see
// [GenerateKey], [ParsePrivateKey] and [ParsePublicKey].
package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/productdb/stage/events"
)

// ErrMalformed is returned (wrapped) for bytes that are not a signed
// checkpoint: bad JSON, a missing or invalid field, unknown fields.
var ErrMalformed = errors.New("checkpoint: malformed")

// ErrBadSignature is returned (wrapped) by [Signed.Verify] for a checkpoint
// whose signature is not the given key's signature of its contents: it was
// forged, edited, or signed with another key.
var ErrBadSignature = errors.New("checkpoint: bad signature")

// Checkpoint is the head of one meeting's hash chain at one moment.
type Checkpoint struct {
	// MeetingID is the meeting.
	MeetingID string `json:"meeting"`
	// Version and Hash are the version and hash of the meeting's last event
	// when the checkpoint was made.
	Version uint64      `json:"version"`
	Hash    events.Hash `json:"hash"`
	// Time is when the checkpoint was made (the signer's clock).
	Time time.Time `json:"time"`
}

// Validate reports whether c names a meeting head: a valid meeting id, a
// version of at least 1, a hash and a time. The error wraps [ErrMalformed].
func (c *Checkpoint) Validate() error {
	switch {
	case events.ValidateID(c.MeetingID) != nil:
		return fmt.Errorf("%w: meeting: %w", ErrMalformed, events.ValidateID(c.MeetingID))
	case c.Version == 0:
		return fmt.Errorf("%w: version 0 (a checkpoint names an event)", ErrMalformed)
	case c.Hash.IsZero():
		return fmt.Errorf("%w: no hash", ErrMalformed)
	case c.Time.IsZero():
		return fmt.Errorf("%w: no time", ErrMalformed)
	}
	return nil
}

// signDomain separates checkpoint signatures from any other use of the key.
const signDomain = "productdb/stage checkpoint v1\n"

// message is what is signed: the domain, then the meeting id (length first),
// the version, the hash and the time in Unix nanoseconds, big-endian.
func (c *Checkpoint) message() []byte {
	b := make([]byte, 0, len(signDomain)+2+len(c.MeetingID)+8+len(c.Hash)+8)
	b = append(b, signDomain...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.MeetingID)))
	b = append(b, c.MeetingID...)
	b = binary.BigEndian.AppendUint64(b, c.Version)
	b = append(b, c.Hash[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
}

// KeyID names a public key: the first 8 bytes of its SHA-256, so that a
// reader can tell which key signed a checkpoint without holding it.
type KeyID [8]byte

// KeyIDOf returns the id of pub.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	return KeyID(sum[:8])
}

// String returns the id in hex.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// MarshalText encodes the id in hex.
func (k KeyID) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes an id in hex.
func (k *KeyID) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(k) {
		return fmt.Errorf("key id %q: want %d hex digits", b, 2*len(k))
	}
	_, err := hex.Decode(k[:], b)
	return err
}

// Signed is a checkpoint and its signature.
type Signed struct {
	Checkpoint
	// Key names the key that signed it.
	Key KeyID `json:"key"`
	// Sig is the Ed25519 signature of the checkpoint.
	Sig []byte `json:"sig"`
}

// Sign signs c with key. It fails for a checkpoint that does not pass
// [Checkpoint.Validate] or a key of the wrong size.
func Sign(key ed25519.PrivateKey, c Checkpoint) (Signed, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Signed{}, fmt.Errorf("checkpoint: sign: a private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if err := c.Validate(); err != nil {
		return Signed{}, err
	}
	c.Time = c.Time.UTC()
	return Signed{
		Checkpoint: c,
		Key:        KeyIDOf(key.Public().(ed25519.PublicKey)),
		Sig:        ed25519.Sign(key, c.message()),
	}, nil
}

// Verify reports whether s is pub's signature of its checkpoint; the error
// wraps [ErrBadSignature] and says whether another key signed it.
func (s *Signed) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("checkpoint: verify: a public key of %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if id := KeyIDOf(pub); id != s.Key {
		return fmt.Errorf("%w: signed with key %s, not %s", ErrBadSignature, s.Key, id)
	}
	if !ed25519.Verify(pub, s.Checkpoint.message(), s.Sig) {
		return fmt.Errorf("%w: the signature of key %s does not match the checkpoint of meeting %s version %d", ErrBadSignature, s.Key, s.MeetingID, s.Version)
	}
	return nil
}

// Marshal encodes s as one line of JSON (no trailing newline).
func Marshal(s *Signed) ([]byte, error) {
	return json.Marshal(s)
}

// Parse decodes one checkpoint encoded by [Marshal]. It is strict: unknown
// fields, trailing data, a missing field or a signature of the wrong size
// return an error wrapping [ErrMalformed]. It does not check the signature.
func Parse(b []byte) (Signed, error) {
	var w struct {
		MeetingID *string      `json:"meeting"`
		Version   *uint64      `json:"version"`
		Hash      *events.Hash `json:"hash"`
		Time      *time.Time   `json:"time"`
		Key       *KeyID       `json:"key"`
		Sig       []byte       `json:"sig"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d.More() {
		return Signed{}, fmt.Errorf("%w: data after the checkpoint", ErrMalformed)
	}
	if w.MeetingID == nil || w.Version == nil || w.Hash == nil || w.Time == nil || w.Key == nil || w.Sig == nil {
		return Signed{}, fmt.Errorf("%w: a field is missing (want meeting, version, hash, time, key, sig)", ErrMalformed)
	}
	if len(w.Sig) != ed25519.SignatureSize {
		return Signed{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(w.Sig), ed25519.SignatureSize)
	}
	s := Signed{Checkpoint: Checkpoint{MeetingID: *w.MeetingID, Version: *w.Version, Hash: *w.Hash, Time: *w.Time}, Key: *w.Key, Sig: w.Sig}
	if err := s.Validate(); err != nil {
		return Signed{}, err
	}
	return s, nil
}
