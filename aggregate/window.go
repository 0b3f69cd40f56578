package aggregate

import (
	"slices"

	"github.com/productdb/stage/events"
)

// CommandWindow is how many recent commands a State remembers for
// idempotency, by their [events.CommandKey]: the fast path, answered with
// no I/O. Retries of older commands are recognised for a time-based
// retention by the store's command index (eventstore.CommandIndex), which
// the Engine consults when the window does not know a caller's key.
const CommandWindow = 64

type applied struct {
	key         events.CommandKey
	first, last uint64
	// lapsed: the entry is a Lapsed event that a command recorded before
	// its own event, which may still join it.
	lapsed bool
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

func (w *window) find(k events.CommandKey) (applied, bool) {
	n := len(w.ring)
	for i := 1; i <= n; i++ { // newest first: retries are usually recent
		if a := w.ring[(w.next-i+n)%n]; a.key == k {
			return a, true
		}
	}
	return applied{}, false
}

// add records that the command with key k produced an event at version
// (a Lapsed event if lapsed). A command's events are a Lapsed event and its
// own, consecutive: only then does the newest entry grow. Two commands
// under one key (the second after the key's retention) stay two entries.
func (w *window) add(k events.CommandKey, version uint64, lapsed bool) {
	if a := w.newest(); a != nil && a.key == k && a.lapsed && !lapsed && a.last+1 == version {
		a.last, a.lapsed = version, false
		return
	}
	a := applied{key: k, first: version, last: version, lapsed: lapsed}
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
