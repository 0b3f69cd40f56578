package events

import (
	"crypto/sha256"
	"encoding/hex"
)

// CommandKey identifies a command for idempotency: its idempotency key
// (the CommandID) scoped to the actor who issued it, in 16 bytes. Two
// commands share a CommandKey only if the same actor gave the same key, so
// one user's key never matches another user's (or the backend's) command.
// The backend's own commands have the empty actor: their keys form one
// scope of their own.
type CommandKey [16]byte

// keyDomain separates command keys from every other use of SHA-256 here.
const keyDomain = "productdb/stage command key v1\x00"

// KeyOf returns the CommandKey of the command id that actor issued: the
// first 16 bytes of the SHA-256 of the actor and the id, each with its
// length. It is deterministic across processes and versions (stores and
// snapshots keep it).
func KeyOf(actor, commandID string) CommandKey {
	var buf [256]byte
	b := append(buf[:0], keyDomain...)
	b = appendString(b, actor)
	b = appendString(b, commandID)
	sum := sha256.Sum256(b)
	var k CommandKey
	copy(k[:], sum[:])
	return k
}

// CommandKey returns the key of the command that caused e.
func (e *Envelope) CommandKey() CommandKey { return KeyOf(e.Actor, e.CommandID) }

// String returns the key in hex.
func (k CommandKey) String() string { return hex.EncodeToString(k[:]) }
