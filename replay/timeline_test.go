package replay_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name (-update rewrites it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s", path, got)
	}
}

// svgElem is any element of the picture, with its children.
type svgElem struct {
	XMLName   xml.Name
	Class     string    `xml:"class,attr"`
	Kind      string    `xml:"data-kind,attr"`
	User      string    `xml:"data-user,attr"`
	Version   string    `xml:"data-version,attr"`
	ByVersion string    `xml:"data-by-version,attr"`
	Tick      string    `xml:"data-tick,attr"`
	Title     string    `xml:"title"`
	Text      string    `xml:",chardata"`
	Children  []svgElem `xml:",any"`
}

func (e svgElem) walk(f func(svgElem)) {
	f(e)
	for _, c := range e.Children {
		c.walk(f)
	}
}

func draw(t *testing.T, h *projections.History, o replay.TimelineOptions) ([]byte, svgElem) {
	t.Helper()
	var b bytes.Buffer
	if err := replay.WriteTimeline(&b, h, o); err != nil {
		t.Fatal(err)
	}
	var root svgElem
	if err := xml.Unmarshal(b.Bytes(), &root); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	return b.Bytes(), root
}

// TestTimeline_everyEventOnce draws the 15-second scripted meeting and
// checks, by parsing the SVG, that each event appears exactly once on the
// row of each drawn user it is about, with the mark of its kind, and that
// the legend explains every kind drawn.
func TestTimeline_everyEventOnce(t *testing.T) {
	evs := fifteenSeconds(t)
	h := projections.HistoryOf("short", evs)
	out, root := draw(t, h, replay.TimelineOptions{})
	golden(t, "timeline-short.svg", out)

	rows := map[string]bool{}
	type key struct {
		user    string
		version uint64
	}
	marks := map[key][]string{}   // kinds drawn for an event and user
	decided := map[key][]string{} // decision marks on an actor's row
	kinds := map[string]bool{}
	var legend, ticks []string
	root.walk(func(e svgElem) {
		switch {
		case e.XMLName.Local == "text" && e.User != "":
			rows[e.User] = true
		case e.Tick != "":
			ticks = append(ticks, e.Text)
		case e.Kind != "" && e.Title == "":
			t.Errorf("%s mark of %s has no title", e.Kind, e.User)
		}
		if e.Kind != "" {
			kinds[e.Kind] = true
		}
		if e.Version != "" {
			v, err := strconv.ParseUint(e.Version, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			marks[key{e.User, v}] = append(marks[key{e.User, v}], e.Kind)
		}
		if e.ByVersion != "" {
			v, _ := strconv.ParseUint(e.ByVersion, 10, 64)
			decided[key{e.User, v}] = append(decided[key{e.User, v}], e.Kind)
		}
	})
	root.walk(func(e svgElem) {
		if e.Class == "legend" {
			e.walk(func(c svgElem) {
				if c.XMLName.Local == "text" {
					legend = append(legend, c.Text)
				}
			})
		}
	})
	for _, u := range []string{"alice", "hassan", "bob", "carol", "frank", "dave", "erin", "gina"} {
		if !rows[u] {
			t.Errorf("no row for %s", u)
		}
	}
	seen := 0
	for _, e := range evs {
		for _, u := range e.Users() {
			if !rows[u] {
				continue
			}
			if got := marks[key{u, e.Version}]; len(got) != 1 {
				t.Errorf("v%d %s about %s: %d marks %v, want exactly 1", e.Version, e.Type, u, len(got), got)
			}
			seen++
		}
		if e.Actor != "" && !slices.Contains(e.Users(), e.Actor) {
			if got := decided[key{e.Actor, e.Version}]; len(got) != 1 || got[0] != replay.MarkDecision {
				t.Errorf("v%d %s by %s: decision marks %v, want 1", e.Version, e.Type, e.Actor, got)
			}
		}
	}
	if total := len(marks); total != seen {
		t.Errorf("%d (user, version) marks, want %d: a mark names an event it is not about", total, seen)
	}
	// The kinds the script was written to show, each where it should be.
	want := map[key]string{
		{"bob", 11}: replay.MarkRequest, {"bob", 13}: replay.MarkGranted, {"carol", 14}: replay.MarkDenied,
		{"bob", 15}: replay.MarkStint, {"frank", 16}: replay.MarkInvited, {"frank", 17}: replay.MarkDeclined,
		{"gina", 19}: replay.MarkWaitlisted, {"erin", 21}: replay.MarkCancelled, {"erin", 22}: replay.MarkBanned,
		{"carol", 23}: replay.MarkDisconnect, {"dave", 24}: replay.MarkLapsed, {"carol", 25}: replay.MarkReconnect,
		{"bob", 26}: replay.MarkKicked, {"erin", 28}: replay.MarkBanLifted, {"erin", 29}: replay.MarkPermissions,
		{"gina", 30}: replay.MarkLeft, {"frank", 31}: replay.MarkLeftMeeting, {"alice", 10}: replay.MarkSettings,
		{"alice", 1}: replay.MarkEntered,
	}
	for k, kind := range want {
		if got := marks[k]; len(got) != 1 || got[0] != kind {
			t.Errorf("v%d of %s drawn as %v, want %s", k.version, k.user, got, kind)
		}
	}
	if !kinds[replay.MarkAccepted] || !kinds[replay.MarkWait] {
		t.Errorf("no acceptance or wait bar: %v", kinds)
	}
	// Every kind drawn is explained, each by its own legend entry.
	if len(legend) < len(kinds) {
		t.Errorf("legend has %d entries for %d kinds: %v", len(legend), len(kinds), legend)
	}
	for _, l := range []string{"invited (no request)", "invitation declined", "request denied", "kicked", "banned from the stage",
		"seat waitlisted (stage full)", "connection dropped", "accepted, not on stage yet", "a host's decision"} {
		if !slices.Contains(legend, l) {
			t.Errorf("legend lacks %q: %v", l, legend)
		}
	}
	// 15 seconds: readable ticks with seconds.
	if len(ticks) < 5 || !regexp.MustCompile(`^14:00:\d\d$`).MatchString(ticks[1]) {
		t.Errorf("ticks %v", ticks)
	}
	// The subtitle counts people: alice, bob, gina.
	if !strings.Contains(string(out), "3 people on stage, 3 requests") {
		t.Errorf("subtitle: %s", out[:min(len(out), 1200)])
	}
}

// TestTimeline_forUser draws one user's part, with the hosts who decided.
func TestTimeline_forUser(t *testing.T) {
	h := projections.HistoryOf("short", fifteenSeconds(t)).ForUser("carol")
	_, root := draw(t, h, replay.TimelineOptions{Width: 700})
	var rows []string
	root.walk(func(e svgElem) {
		if e.XMLName.Local == "text" && e.User != "" {
			rows = append(rows, e.User)
		}
	})
	if !slices.Equal(rows, []string{"carol", "hassan"}) {
		t.Errorf("rows %v, want carol and hassan (who denied her)", rows)
	}
}

func TestTimeline_stints(t *testing.T) {
	// Two stints of one person count once.
	h := projections.HistoryOf("short", fifteenSeconds(t))
	h.Stints = append(h.Stints, h.Stints[0])
	out, _ := draw(t, h, replay.TimelineOptions{})
	if !strings.Contains(string(out), "3 people on stage (4 intervals)") {
		t.Error("subtitle does not count people")
	}
	if err := replay.WriteTimeline(&bytes.Buffer{}, nil, replay.TimelineOptions{}); !errors.Is(err, replay.ErrNoHistory) {
		t.Errorf("nil history: %v", err)
	}
}
