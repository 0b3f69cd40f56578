package aggregate

import (
	"crypto/sha256"
	"slices"
)

// CommandWindow is how many recent commands a State remembers for
// idempotency. A retry of a command older than the window is decided
// afresh (most stage commands then fail on their own state check: a grant
// of an already accepted user is InvalidState).
const CommandWindow = 64

// cmdKey is a command id in 16 bytes: the UUID itself for an id in the
// canonical UUID text form (what the engine generates), else the first 16
// bytes of the id's SHA-256. Keys are compared, never ids, so the window
// costs a fixed 32 bytes a command and holds no pointers.
type cmdKey [16]byte

func keyOf(id string) cmdKey {
	if k, ok := parseUUID(id); ok {
		return k
	}
	h := sha256.Sum256([]byte(id))
	var k cmdKey
	copy(k[:], h[:])
	k[6] &= 0x0f // version nibble 0: never a generated UUID (v4, v7), which parseUUID requires
	return k
}

// parseUUID decodes s if it is a UUID in canonical text form: 36 characters,
// lowercase hex in the 8-4-4-4-12 form, with a non-zero version nibble.
func parseUUID(s string) (k cmdKey, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' || s[14] == '0' {
		return k, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i-- // skip the hyphen: the pair starts one later
			continue
		}
		hi, lo := unhex[s[i]], unhex[s[i+1]]
		if hi|lo > 0x0f {
			return k, false
		}
		k[j] = hi<<4 | lo
		j++
	}
	return k, true
}

// unhex maps a lowercase hex digit to its value and anything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()

type applied struct {
	key         cmdKey
	first, last uint64
}

// window is a ring of the last CommandWindow commands applied.
type window struct {
	ring []applied // at most CommandWindow entries
	next int       // index of the newest entry + 1, modulo CommandWindow once full
}

func (w *window) newest() *applied {
	if len(w.ring) == 0 {
		return nil
	}
	return &w.ring[(w.next+len(w.ring)-1)%len(w.ring)]
}

func (w *window) find(id string) (applied, bool) {
	k := keyOf(id)
	n := len(w.ring)
	for i := 1; i <= n; i++ { // newest first: retries are usually recent
		if a := w.ring[(w.next-i+n)%n]; a.key == k {
			return a, true
		}
	}
	return applied{}, false
}

// add records that the command id produced an event at version. The events
// of one command are consecutive, so only the newest entry can grow.
func (w *window) add(id string, version uint64) {
	k := keyOf(id)
	if a := w.newest(); a != nil && a.key == k {
		a.last = version
		return
	}
	a := applied{key: k, first: version, last: version}
	if len(w.ring) < CommandWindow {
		w.ring = append(w.ring, a)
		w.next = len(w.ring) % CommandWindow
		return
	}
	w.ring[w.next] = a
	w.next = (w.next + 1) % CommandWindow
}

func (w window) clone() window { return window{ring: slices.Clone(w.ring), next: w.next} }

func (w window) equal(o window) bool { return w.next == o.next && slices.Equal(w.ring, o.ring) }
