package aggregate

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestParseUUID(t *testing.T) {
	for range 1000 {
		u := uuid.Must(uuid.NewV7())
		if k, ok := parseUUID(u.String()); !ok || k != cmdKey(u) {
			t.Fatalf("parseUUID(%s) = %x, %v", u, k, ok)
		}
	}
	v4 := uuid.New().String()
	for _, s := range []string{
		"", "x", "01234567-89ab-0def-0123-456789abcdef", // version 0
		strings.ToUpper(v4), "{" + v4[:34] + "}", "urn:uuid:" + v4,
		"01234567-89ab-7def-0123-456789abcdeg", "0123456789ab-7def-0123-456789abcdef-",
	} {
		if _, ok := parseUUID(s); ok {
			t.Errorf("parseUUID(%q) accepted a non-canonical UUID", s)
		}
	}
}

func TestKeyOf_distinct(t *testing.T) {
	v4 := uuid.New().String()
	// Spellings of one UUID that are not the canonical text are other ids.
	ids := []string{v4, strings.ToUpper(v4), "{" + v4 + "}", "urn:uuid:" + v4, "a", "b", ""}
	seen := map[cmdKey]string{}
	for _, id := range ids {
		k := keyOf(id)
		if prev, dup := seen[k]; dup {
			t.Fatalf("keyOf(%q) == keyOf(%q)", id, prev)
		}
		seen[k] = id
	}
}

func TestWindow(t *testing.T) {
	var w window
	w.add("c0", 1)
	w.add("c0", 2) // a command of two events
	if a, ok := w.find("c0"); !ok || a.first != 1 || a.last != 2 {
		t.Fatalf("find(c0) = %+v, %v; want versions 1..2", a, ok)
	}
	for i := 1; i <= CommandWindow; i++ {
		w.add("c"+strconv.Itoa(i), uint64(i+2))
	}
	if _, ok := w.find("c0"); ok {
		t.Fatalf("c0 still in the window after %d newer commands", CommandWindow)
	}
	for i := 1; i <= CommandWindow; i++ {
		id := "c" + strconv.Itoa(i)
		if a, ok := w.find(id); !ok || a.first != uint64(i+2) {
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
	c.add("new", 1000)
	if c.equal(w) || w.newest().key == keyOf("new") {
		t.Fatal("clone shares storage with the original")
	}
}
