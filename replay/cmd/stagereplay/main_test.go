package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	webinar = "testdata/webinar.jsonl"      // one meeting, written by the demo
	two     = "testdata/two-meetings.jsonl" // webinar-42 and town-hall
	// controls: one meeting written by the demo once it used the stage
	// controls (demo --viewers 6 --steps 40, exported): backstage, a
	// co-host, a user brought on stage, requests that expire, requests
	// closed and the stage ended.
	controls = "testdata/stage-demo.jsonl"
)

// stagereplay runs the command in-process and returns its exit status,
// standard output and standard error.
func stagereplay(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, &env{stdout: &out, stderr: &errb, self: "stagereplay"})
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"meetings.txt", []string{"meetings", two}},
		{"meetings.json", []string{"meetings", two, "--json"}},
		{"roster.txt", []string{"roster", webinar}},
		{"roster-at.txt", []string{"roster", webinar, "--at", "14:10:00"}},
		{"roster-version.json", []string{"roster", webinar, "--version", "60", "--json"}},
		{"roster-town-hall.txt", []string{"roster", two, "-m", "town-hall"}},
		{"requests-at.txt", []string{"requests", webinar, "--at", "2026-11-29T14:17:40Z"}},
		{"requests-at.json", []string{"requests", webinar, "--at", "2026-11-29T14:17:40Z", "--json"}},
		{"history.txt", []string{"history", webinar}},
		{"history-bob.txt", []string{"history", webinar, "--user", "bob"}},
		{"history-bob.json", []string{"history", webinar, "-u", "bob", "--json"}},
		{"history-version.txt", []string{"history", two, "-m", "town-hall", "--version", "20"}},
		{"timeline.svg", []string{"timeline", webinar}},
		{"timeline-bob.svg", []string{"timeline", webinar, "--user", "bob", "--width", "700"}},
		{"verify.txt", []string{"verify", two}},
		{"verify.json", []string{"verify", webinar, "--json"}},
		{"history-stage.txt", []string{"history", controls}},
		{"roster-stage-backstage.txt", []string{"roster", controls, "--at", "14:01:00"}},
		{"roster-stage.json", []string{"roster", controls, "--json"}},
		{"timeline-stage.svg", []string{"timeline", controls}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := stagereplay(t, c.args...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr: %s", code, errs)
			}
			if errs != "" {
				t.Errorf("stderr: %s", errs)
			}
			golden(t, c.name, out)
		})
	}
}

// tamper writes a copy of the webinar log with line i (from 0) changed by f.
func tamper(t *testing.T, f func(lines []string) []string) string {
	t.Helper()
	b, err := os.ReadFile(webinar)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	path := filepath.Join(t.TempDir(), "tampered.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(f(lines), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerify_tampered(t *testing.T) {
	cases := []struct {
		name string
		edit func([]string) []string
	}{
		{"edited-payload", func(l []string) []string {
			// Version 76 denied heidi; make it say kevin.
			l[75] = strings.Replace(l[75], `"users":["heidi"]`, `"users":["kevin"]`, 1)
			return l
		}},
		{"deleted-event", func(l []string) []string { return append(l[:30:30], l[31:]...) }},
		{"swapped-events", func(l []string) []string { l[50], l[51] = l[51], l[50]; return l }},
		{"malformed-line", func(l []string) []string { l[10] = `{"schema":1,"type":"Nope"}`; return l }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := tamper(t, c.edit)
			code, out, errs := stagereplay(t, "verify", path)
			if code != exitFindings {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr: %s", code, exitFindings, out, errs)
			}
			golden(t, "verify-"+c.name+".txt", strings.ReplaceAll(out, path, "TAMPERED"))
		})
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
		is   error  // what the library returns for it
	}{
		{"unknown meeting", []string{"roster", webinar, "-m", "nope"}, `unknown meeting: "nope"`, replay.ErrUnknownMeeting},
		{"unknown meeting verify", []string{"verify", webinar, "-m", "nope"}, `unknown meeting`, replay.ErrUnknownMeeting},
		{"missing file", []string{"history", "testdata/no-such-file.jsonl"}, "does not exist", replay.ErrSource},
		{"bad url", []string{"roster", "nats://"}, "bad URL", replay.ErrSource},
		{"two meetings", []string{"roster", two}, "choose one with -m: webinar-42, town-hall", nil},
		{"bad time", []string{"roster", webinar, "--at", "teatime"}, "--at", nil},
		{"version and time", []string{"roster", webinar, "--at", "14:00", "--version", "3"}, "can't be used together", nil},
		{"unknown user", []string{"history", webinar, "--user", "nobody"}, `user "nobody" does not appear`, nil},
		{"not a data directory", []string{"roster", "testdata"}, "not a data directory", replay.ErrSource},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := stagereplay(t, c.args...)
			if code != exitError {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", code, exitError, out, errs)
			}
			if !strings.Contains(errs, c.want) {
				t.Errorf("stderr %q does not say %q", errs, c.want)
			}
			if c.is != nil {
				src, err := replay.Open(context.Background(), c.args[1])
				if err == nil {
					_, err = replay.Roster(context.Background(), src, replay.Filter{MeetingID: "nope"})
					src.Close()
				}
				if !errors.Is(err, c.is) {
					t.Errorf("library error %v, want %v", err, c.is)
				}
			}
		})
	}
}

// TestDataDirInUse: a data directory that a running embedded server holds
// (here this process's; a backend's alike) is refused, by a read and by an
// import, with a message that names the holder and the way in; once it is
// let go, the same commands work.
func TestDataDirInUse(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "solaris" || runtime.GOOS == "aix" || runtime.GOOS == "plan9" {
		t.Skip("no directory lock on " + runtime.GOOS)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errs := stagereplay(t, "import", two, "--to", dir); code != exitOK {
		t.Fatalf("import: %s", errs)
	}
	dd, err := replay.OpenDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	holder := fmt.Sprintf("in use by pid %d (", os.Getpid())
	for _, args := range [][]string{{"meetings", dir}, {"verify", dir}, {"import", two, "--to", dir}} {
		code, out, errs := stagereplay(t, args...)
		if code != exitError {
			t.Fatalf("%v on a held directory: exit %d, want %d; stdout %s stderr %s", args, code, exitError, out, errs)
		}
		t.Logf("%v: %s", args[0], strings.TrimSpace(errs))
		if !strings.Contains(errs, holder) || !strings.Contains(errs, "nats://") {
			t.Errorf("%v: stderr %q does not name the holder (%q) and the nats:// way in", args, errs, holder)
		}
	}
	if _, err := replay.Open(context.Background(), dir); !errors.Is(err, natsstore.ErrDirLocked) || !errors.Is(err, replay.ErrSource) {
		t.Errorf("replay.Open on a held directory: %v, want ErrSource and natsstore.ErrDirLocked", err)
	}
	if _, err := replay.OpenDataDir(context.Background(), dir); !errors.Is(err, natsstore.ErrDirLocked) {
		t.Errorf("replay.OpenDataDir on a held directory: %v, want natsstore.ErrDirLocked", err)
	}
	if err := dd.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := stagereplay(t, "meetings", dir); code != exitOK || !strings.Contains(out, "town-hall") {
		t.Errorf("meetings after the holder closed: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	path := filepath.Join(t.TempDir(), "locked.jsonl")
	os.WriteFile(path, nil, 0o000)
	code, _, errs := stagereplay(t, "verify", path)
	if code != exitError || !strings.Contains(errs, "permission denied") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestExportImport_roundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errs := stagereplay(t, "import", two, "--to", dir); code != exitOK {
		t.Fatalf("import: %s", errs)
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	if code, _, errs := stagereplay(t, "export", dir, "-o", out); code != exitOK {
		t.Fatalf("export: %s", errs)
	}
	a, _ := os.ReadFile(two)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Error("export of an import differs from the original")
	}
	// One meeting, to stdout; it keeps its stream sequences.
	code, one, errs := stagereplay(t, "export", two, "-m", "town-hall")
	if code != exitOK {
		t.Fatal(errs)
	}
	n := 0
	for e, err := range replay.ReadJSONL(strings.NewReader(one), "export") {
		if err != nil {
			t.Fatal(err)
		}
		if e.MeetingID != "town-hall" {
			t.Fatalf("exported %s", e.MeetingID)
		}
		n++
	}
	if n != 39 {
		t.Errorf("exported %d events, want 39", n)
	}
	if code, out, _ := stagereplay(t, "verify", dir); code != exitOK {
		t.Errorf("verify of the imported log: %s", out)
	}
}

// TestTimeline parses the SVG and checks it against the history it draws.
func TestTimeline(t *testing.T) {
	code, out, errs := stagereplay(t, "timeline", webinar, "--width", "800")
	if code != exitOK {
		t.Fatal(errs)
	}
	src, err := replay.Open(context.Background(), webinar)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	h, err := replay.History(context.Background(), src, replay.Filter{MeetingID: "webinar-42"})
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		XMLName xml.Name
		Class   string `xml:"class,attr"`
		Kind    string `xml:"data-kind,attr"`
		User    string `xml:"data-user,attr"`
		Version string `xml:"data-version,attr"`
		Title   string `xml:"title"`
	}
	var svg struct {
		XMLName xml.Name
		Width   string  `xml:"width,attr"`
		Shapes  []shape `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(out), &svg); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if svg.XMLName.Local != "svg" || svg.XMLName.Space != "http://www.w3.org/2000/svg" || svg.Width != "800" {
		t.Fatalf("root %v width %s", svg.XMLName, svg.Width)
	}
	if strings.Contains(out, "http://") && strings.Count(out, "http://") != 1 || strings.Contains(out, "<script") || strings.Contains(out, "href") {
		t.Error("the picture is not self-contained")
	}
	count := map[string]int{}
	users := map[string]bool{}
	marks := map[string]int{} // "user vN"
	for _, s := range svg.Shapes {
		if s.Kind != "" {
			count[s.Kind]++
			if s.Title == "" {
				t.Errorf("%s of %s has no title", s.Kind, s.User)
			}
		}
		if s.Version != "" {
			marks[s.User+" v"+s.Version]++
		}
		if s.XMLName.Local == "text" && s.User != "" {
			users[s.User] = true
		}
	}
	// Each event appears once on the row of each drawn user it is about.
	for _, en := range h.Entries {
		for _, u := range en.Users {
			if users[u] {
				if n := marks[fmt.Sprintf("%s v%d", u, en.Version)]; n != 1 {
					t.Errorf("v%d %s about %s: %d marks", en.Version, en.Type, u, n)
				}
			}
		}
	}
	want := map[string]int{"stint": len(h.Stints)}
	for _, en := range h.Entries {
		if en.Type == events.TypeKicked {
			want["kicked"] += len(en.Users) // off stage, or an acceptance revoked
		}
	}
	for _, s := range h.Stints {
		if !users[s.UserID] {
			t.Errorf("no row for %s", s.UserID)
		}
	}
	for _, r := range h.Requests {
		switch r.Outcome {
		case projections.OutcomeAuto:
			want["auto-accepted"]++
			continue
		case projections.OutcomeDenied, projections.OutcomeCanceled:
			want[r.Outcome]++
		}
		want["request"]++
		want["wait"]++
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d marks of kind %s, want %d", count[k], k, n)
		}
	}
	for _, k := range []string{"granted", "invited", "declined", "denied", "kicked", "banned", "lapsed", "disconnected", "accepted"} {
		if count[k] == 0 {
			t.Errorf("the fixed log should show marks of kind %s: %v", k, count)
		}
	}
	// --user draws the hosts who decided for the user.
	code, out, errs = stagereplay(t, "timeline", webinar, "--user", "bob")
	if code != exitOK {
		t.Fatal(errs)
	}
	for _, u := range []string{"bob", "alice", "hassan"} {
		if !strings.Contains(out, fmt.Sprintf(`data-user="%s">%s</text>`, u, u)) {
			t.Errorf("--user bob draws no row for %s", u)
		}
	}
}

// TestDemo runs the demo as CI does, then the commands it prints.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	code, out, errs := stagereplay(t, "demo", "--dir", dir, "--steps", "80")
	if code != exitOK {
		t.Fatalf("demo: exit %d: %s\n%s", code, errs, out)
	}
	for _, want := range []string{"granted", "denied", "kicked", "refused", "cancelled", "left the stage",
		"started the stage: live after", "made maria a co-host", "maria (co-host) granted", "declined the invitation",
		"brought erin on stage", "closed requests", "took maria's co-host role", "ended the stage for everyone",
		"live projection and offline replay agree", "verify: clean", "Replay it:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Run every printed command.
	re := regexp.MustCompile(`(?m)^  stagereplay (.*)$`)
	cmds := re.FindAllStringSubmatch(out, -1)
	if len(cmds) < 5 {
		t.Fatalf("printed %d commands:\n%s", len(cmds), out)
	}
	for _, m := range cmds {
		args := strings.Fields(m[1])
		for i, a := range args {
			if a == "-o" {
				args[i+1] = filepath.Join(t.TempDir(), args[i+1])
			}
		}
		if code, _, errs := stagereplay(t, args...); code != exitOK {
			t.Errorf("%s: exit %d: %s", m[1], code, errs)
		}
	}
	// A second demo refuses to overwrite the log.
	if code, _, _ := stagereplay(t, "demo", "--dir", dir); code != exitError {
		t.Errorf("demo over an existing log: exit %d", code)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := stagereplay(t, "--help")
	if code != exitOK || !strings.Contains(out, "verify") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestGoldenLogIsEngineOutput keeps the fixture honest: it must verify clean
// and decode strictly.
func TestGoldenLogIsEngineOutput(t *testing.T) {
	for _, path := range []string{webinar, two, controls} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := replay.Verify(context.Background(), replay.ReadJSONL(f, path))
		f.Close()
		if err != nil || !rep.OK() {
			t.Fatalf("%s: %v %+v", path, err, rep.Findings)
		}
	}
	var r projections.Roster
	_, out, _ := stagereplay(t, "roster", webinar, "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Version != 101 {
		t.Fatalf("roster json: %v %+v", err, r)
	}
	_ = events.SchemaVersion
	_ = io.Discard
}
