package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// fileLines returns the lines of a JSON Lines file.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// writeLines writes lines as a new JSON Lines file and returns its path.
func writeLines(t *testing.T, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// forge edits line i (from 0) of a meeting's events with edit and re-hashes
// the meeting's chain from there on, as a forger who knows the algorithm
// would.
func forge(t *testing.T, lines []string, i int, edit func(*events.Envelope)) []string {
	t.Helper()
	out := append([]string(nil), lines...)
	evs := make([]events.Envelope, len(out))
	for j, l := range out {
		e, err := events.Unmarshal([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		evs[j] = e
	}
	meeting := evs[i].MeetingID
	edit(&evs[i])
	var prev events.Hash
	for j := range evs {
		if evs[j].MeetingID != meeting || j < i {
			if evs[j].MeetingID == meeting {
				prev = evs[j].Hash
			}
			continue
		}
		if err := evs[j].Seal(prev); err != nil {
			t.Fatal(err)
		}
		prev = evs[j].Hash
		b, err := events.Marshal(&evs[j])
		if err != nil {
			t.Fatal(err)
		}
		out[j] = string(b)
	}
	return out
}

// held returns how many events each meeting of the data directory holds.
func held(t *testing.T, dir string) map[string]int {
	t.Helper()
	ctx := context.Background()
	src, err := replay.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ms, err := replay.Meetings(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range ms {
		out[m.ID] = m.Events
	}
	return out
}

func TestImport_malformedLine6(t *testing.T) {
	lines := fileLines(t, two)
	cases := []struct {
		name     string
		line6    string
		refused  string // in stdout and stderr
		wantHeld map[string]int
	}{
		// Not JSON: no way to tell whose it was; nothing is stored.
		{"garbage", "garbage", "the whole file was refused", map[string]int{}},
		// An event of webinar-42 with a damaged type: webinar-42 is refused.
		{"bad event", strings.Replace(lines[5], `"type":"`, `"type":"X`, 1), "webinar-42", map[string]int{"town-hall": 39}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]string(nil), lines...)
			in[5] = c.line6
			dir := filepath.Join(t.TempDir(), "data")
			code, out, errs := stagereplay(t, "import", writeLines(t, in), "--to", dir)
			t.Logf("stdout:\n%sstderr: %s", out, errs)
			if code != exitError {
				t.Fatalf("exit %d, want %d", code, exitError)
			}
			if !strings.Contains(out, "webinar-42: REFUSED, nothing stored") || !strings.Contains(out, c.refused) ||
				!strings.Contains(errs, "import refused") || !strings.Contains(errs, ":6:") && !strings.Contains(errs, c.refused) {
				t.Errorf("the output does not say what was refused")
			}
			if c.refused == "webinar-42" && !strings.Contains(out, "line 6") {
				t.Errorf("stdout does not name line 6")
			}
			if got := held(t, dir); len(got) != len(c.wantHeld) || got["town-hall"] != c.wantHeld["town-hall"] {
				t.Errorf("the directory holds %v, want %v", got, c.wantHeld)
			}
		})
	}
}

func TestImport_tamperedMeeting(t *testing.T) {
	lines := fileLines(t, two)
	cases := []struct {
		name string
		in   []string
		want string // a finding kind in stdout
	}{
		{"actor swapped and re-hashed", forge(t, lines, 21, func(e *events.Envelope) {
			if e.Type != events.TypeAccessGranted || e.Actor != "alice" {
				t.Fatalf("line 22 is %s by %s", e.Type, e.Actor)
			}
			e.Actor = "bob" // bob grants himself
		}), "illegal"},
		{"one event deleted", append(lines[:29:29], lines[30:]...), "version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			code, out, errs := stagereplay(t, "import", writeLines(t, c.in), "--to", dir)
			t.Logf("stdout:\n%sstderr: %s", out, errs)
			if code != exitError {
				t.Fatalf("exit %d, want %d", code, exitError)
			}
			if !strings.Contains(out, "webinar-42: REFUSED, nothing stored") || !strings.Contains(out, "FINDING") ||
				!strings.Contains(out, ": "+c.want+": ") || !strings.Contains(out, "town-hall: imported 39 events") ||
				!strings.Contains(out, "not imported: webinar-42") || !strings.Contains(errs, "webinar-42") {
				t.Errorf("the output does not say what was refused and imported")
			}
			if got := held(t, dir); len(got) != 1 || got["town-hall"] != 39 {
				t.Errorf("the directory holds %v, want town-hall's 39 events only", got)
			}
		})
	}
}

// TestImport_rerun: an import interrupted after part of a meeting (here: a
// prefix imported first) completes on a rerun, and a rerun of a complete
// import stores nothing.
func TestImport_rerun(t *testing.T) {
	lines := fileLines(t, two)
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errs := stagereplay(t, "import", writeLines(t, lines[:50]), "--to", dir)
	if code != exitOK || !strings.Contains(out, "webinar-42: imported 50 events (versions 1-50, 1 append)") {
		t.Fatalf("prefix: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = stagereplay(t, "import", two, "--to", dir)
	t.Logf("completing run:\n%s", out)
	if code != exitOK || !strings.Contains(out, "webinar-42: completed from version 51: 51 events (the store held versions 1-50)") ||
		!strings.Contains(out, "town-hall: imported 39 events") || !strings.Contains(out, "imported 90 events into") {
		t.Fatalf("completing run: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = stagereplay(t, "import", two, "--to", dir)
	t.Logf("rerun:\n%s", out)
	if code != exitOK || !strings.Contains(out, "webinar-42: already imported (101 events)") ||
		!strings.Contains(out, "town-hall: already imported (39 events)") || !strings.Contains(out, "imported 0 events into") {
		t.Fatalf("rerun: exit %d\n%s%s", code, out, errs)
	}
	// No duplicate: the directory's log is the file, event for event.
	exported := filepath.Join(t.TempDir(), "out.jsonl")
	if code, _, errs := stagereplay(t, "export", dir, "-o", exported); code != exitOK {
		t.Fatal(errs)
	}
	a, _ := os.ReadFile(two)
	b, _ := os.ReadFile(exported)
	if !bytes.Equal(a, b) {
		t.Error("the completed import differs from the file")
	}
	// The same file with a meeting that differs from what the directory
	// holds: refused as a conflict, nothing stored.
	forged := forge(t, lines, 100, func(e *events.Envelope) { e.Time = e.Time.Add(time.Second) })
	code, out, errs = stagereplay(t, "import", writeLines(t, forged), "--to", dir)
	if code != exitError || !strings.Contains(out, "webinar-42: REFUSED, nothing stored: conflict: the store's version 101") {
		t.Errorf("conflict: exit %d\n%s%s", code, out, errs)
	}
}

func TestImport_dryRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errs := stagereplay(t, "import", two, "--to", dir, "--dry-run")
	if code != exitOK || !strings.Contains(out, "webinar-42: would import 101 events") ||
		!strings.Contains(out, "dry run, nothing stored: would import 140 events") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a dry run created %s: %v", dir, err)
	}
	// On a directory that holds part of the file.
	lines := fileLines(t, two)
	if code, _, errs := stagereplay(t, "import", writeLines(t, lines[:60]), "--to", dir); code != exitOK {
		t.Fatal(errs)
	}
	code, out, errs = stagereplay(t, "import", two, "--to", dir, "--dry-run")
	if code != exitOK || !strings.Contains(out, "webinar-42: would complete from version 61: 41 events") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if got := held(t, dir); got["webinar-42"] != 60 || len(got) != 1 {
		t.Errorf("a dry run stored events: %v", got)
	}
}

func TestImport_empty(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	os.WriteFile(empty, nil, 0o644)
	code, _, errs := stagereplay(t, "import", empty, "--to", filepath.Join(t.TempDir(), "data"))
	if code != exitError || !strings.Contains(errs, "holds no events") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
