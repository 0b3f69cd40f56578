package aggregate

import (
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/productdb/stage/events"
)

func TestKeyOf_scoped(t *testing.T) {
	v4 := uuid.New().String()
	// The same id under another actor, and ids that only split differently
	// between actor and id, are other keys.
	pairs := [][2]string{{"", v4}, {"bob", v4}, {"alice", v4}, {"", "a"}, {"a", ""}, {"ab", "c"}, {"a", "bc"}, {"", ""}}
	seen := map[events.CommandKey][2]string{}
	for _, p := range pairs {
		k := events.KeyOf(p[0], p[1])
		if prev, dup := seen[k]; dup {
			t.Fatalf("KeyOf%q == KeyOf%q", p, prev)
		}
		seen[k] = p
		if events.KeyOf(p[0], p[1]) != k {
			t.Fatalf("KeyOf%q is not deterministic", p)
		}
	}
}

func key(id string) events.CommandKey { return events.KeyOf("", id) }

func TestWindow(t *testing.T) {
	var w window
	w.add(key("c0"), 1, true)
	w.add(key("c0"), 2, false) // a command of two events: Lapsed, then its own
	if a, ok := w.find(key("c0")); !ok || a.first != 1 || a.last != 2 {
		t.Fatalf("find(c0) = %+v, %v; want versions 1..2", a, ok)
	}
	for i := 1; i <= CommandWindow; i++ {
		w.add(key("c"+strconv.Itoa(i)), uint64(i+2), false)
	}
	if _, ok := w.find(key("c0")); ok {
		t.Fatalf("c0 still in the window after %d newer commands", CommandWindow)
	}
	for i := 1; i <= CommandWindow; i++ {
		id := "c" + strconv.Itoa(i)
		if a, ok := w.find(key(id)); !ok || a.first != uint64(i+2) {
			t.Fatalf("find(%s) = %+v, %v", id, a, ok)
		}
	}
	if len(w.ring) != CommandWindow {
		t.Fatalf("ring holds %d, bound %d", len(w.ring), CommandWindow)
	}
	c := w.clone()
	if !c.equal(w) {
		t.Fatal("clone differs")
	}
	c.add(key("new"), 1000, false)
	// Two commands under one key are two entries.
	c.add(key("new"), 1001, false)
	if a, _ := c.find(key("new")); a.first != 1001 || a.last != 1001 || c.newest().first != 1001 {
		t.Fatalf("a second command under a key merged into the first: %+v", a)
	}
	if c.equal(w) || w.newest().key == key("new") {
		t.Fatal("clone shares storage with the original")
	}
}
