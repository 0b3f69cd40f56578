package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/replay"
)

// startView runs "stagereplay view SOURCE --port 0" in-process, as a user
// would, and returns the URL it prints. The server stops with the test.
func startView(t *testing.T, source string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"view", source, "--port", "0"}, args...), &env{stdout: pw, stderr: pw, self: "stagereplay"})
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("view printed %q: %v", line, err)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != exitOK {
				t.Errorf("view exited %d", c)
			}
		case <-time.After(10 * time.Second):
			t.Error("view did not stop")
		}
	})
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(line)
	if url == "" {
		t.Fatalf("no 127.0.0.1 URL in %q", line)
	}
	return url
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return r.StatusCode
}

// rosterAt is what "stagereplay roster SOURCE --at HH:MM:SS --json" says
// (the whole second, as a user types it and the page shows it).
func rosterAt(t *testing.T, source string, at time.Time) projections.Roster {
	t.Helper()
	code, out, errs := stagereplay(t, "roster", source, "--at", at.UTC().Format("15:04:05"), "--json")
	if code != exitOK {
		t.Fatalf("roster --at: %s", errs)
	}
	var r projections.Roster
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestViewServer checks the JSON the page is built from against the
// commands that answer the same questions.
func TestViewServer(t *testing.T) {
	url := startView(t, webinar)
	for _, at := range []string{"2026-11-29T14:02:30Z", "2026-11-29T14:10:00Z", "2026-11-29T14:17:40Z"} {
		var got projections.Roster
		if c := getJSON(t, url+"api/roster?at="+at, &got); c != http.StatusOK {
			t.Fatalf("roster at %s: %d", at, c)
		}
		code, out, errs := stagereplay(t, "roster", webinar, "--at", at, "--json")
		if code != exitOK {
			t.Fatal(errs)
		}
		var want projections.Roster
		if err := json.Unmarshal([]byte(out), &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("at %s the page's roster differs from roster --at:\n%s\n%s", at, gb, wb)
		}
	}
	var bob []projections.HistoryEntry
	getJSON(t, url+"api/history?user=bob", &bob)
	_, out, _ := stagereplay(t, "history", webinar, "--user", "bob", "--json")
	var h projections.History
	if err := json.Unmarshal([]byte(out), &h); err != nil || len(bob) != len(h.Entries) || len(bob) == 0 {
		t.Errorf("history of bob: %d entries, want %d (%v)", len(bob), len(h.Entries), err)
	}
	var fs []viewFinding
	if getJSON(t, url+"api/findings", &fs); len(fs) != 0 {
		t.Errorf("findings on a clean log: %+v", fs)
	}
	for path, want := range map[string]int{"api/roster?at=noon": 400, "api/history?user=nobody": 404, "nope": 404} {
		if c := getJSON(t, url+path, nil); c != want {
			t.Errorf("%s: %d, want %d", path, c, want)
		}
	}
	// Nothing is fetched from elsewhere: the assets name no other host.
	for _, p := range []string{"", "view.js", "view.css", "timeline.svg"} {
		r, err := http.Get(url + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("%s: status %d", p, r.StatusCode)
		}
		for _, m := range regexp.MustCompile(`(?:https?:)?//([a-zA-Z0-9.-]+)`).FindAllStringSubmatch(string(b), -1) {
			if m[1] != "www.w3.org" { // the SVG namespace, not a fetch
				t.Errorf("%s refers to another host: %s", p, m[0])
			}
		}
	}
}

// TestViewStage: the page's roster carries the stage's own state, as
// roster --at --json says it.
func TestViewStage(t *testing.T) {
	url := startView(t, controls)
	for at, phase := range map[string]string{"2026-11-29T14:01:00Z": "Backstage", "2026-11-29T14:10:00Z": "Live", "2026-11-29T14:22:50Z": "Ended"} {
		var got projections.Roster
		if c := getJSON(t, url+"api/roster?at="+at, &got); c != http.StatusOK {
			t.Fatalf("roster at %s: %d", at, c)
		}
		code, out, errs := stagereplay(t, "roster", controls, "--at", at, "--json")
		if code != exitOK {
			t.Fatal(errs)
		}
		var want projections.Roster
		if err := json.Unmarshal([]byte(out), &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) || got.Stage.Phase.String() != phase {
			t.Errorf("at %s (want %s) the page's roster differs from roster --at:\n%s\n%s", at, phase, gb, wb)
		}
	}
}

// TestViewFindings places verify's findings of a tampered log in time.
func TestViewFindings(t *testing.T) {
	path := tamper(t, func(l []string) []string {
		l[75] = strings.Replace(l[75], `"users":["heidi"]`, `"users":["kevin"]`, 1)
		return l
	})
	url := startView(t, path)
	var fs []viewFinding
	getJSON(t, url+"api/findings", &fs)
	if len(fs) == 0 || fs[0].Version != 76 || fs[0].Time.IsZero() || !fs[0].Cause {
		t.Errorf("findings %+v", fs)
	}
}

func TestViewFlags(t *testing.T) {
	for _, args := range [][]string{{"view", webinar, "--port", "70000"}, {"view", webinar, "-m", "nope", "--port", "0"}} {
		if code, _, _ := stagereplay(t, args...); code != exitError {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}

// chromium finds a Chromium or Chrome to drive, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestViewBrowser loads the page in a real headless Chromium, moves the
// time slider, reads the roster the page shows and compares it with
// "roster --at" at the same instant.
func TestViewBrowser(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("SKIPPED: no Chromium installed (apt-get install -y chromium; .ci/run installs it): the view was not tested in a browser")
	}
	url := startView(t, webinar)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1300, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// js evaluates an expression in the page.
	js := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	strs := func(expr string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		t.Fatalf("load: %v", err)
	}
	marks := js(`document.querySelectorAll("#timeline svg [data-version]").length`)
	max := js(`Number(document.querySelector("#slider").max)`)
	if n, _ := marks.(float64); n < 100 || max != float64(29*60+55) {
		t.Errorf("the page shows %v marks, slider max %v", marks, max)
	}
	start := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	// compare reads the roster the page shows once it shows time at, and
	// compares it with roster --at.
	compare := func(at time.Time) {
		t.Helper()
		sel := fmt.Sprintf(`#roster[data-at=%q]`, at.Format("2006-01-02T15:04:05.000Z"))
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("the page never showed %s: %v", at.Format("15:04:05"), err)
		}
		on := strs(`[...document.querySelectorAll("#onstage li")].map(e => e.textContent)`)
		acc := strs(`[...document.querySelectorAll("#accepted li")].map(e => e.textContent.split(" ")[0])`)
		q := strs(`[...document.querySelectorAll("#queue li")].map(e => e.textContent.split(" ")[0])`)
		want := rosterAt(t, webinar, at)
		wq := []string{}
		for _, r := range want.Requests {
			wq = append(wq, r.UserID)
		}
		if !slices.Equal(on, want.OnStage) || !slices.Equal(acc, want.Accepted) || !slices.Equal(q, wq) {
			t.Errorf("at %s the page shows on stage %v, accepted %v, queue %v; roster --at says %v, %v, %v",
				at.Format("15:04:05"), on, acc, q, want.OnStage, want.Accepted, wq)
		}
	}
	nonEmpty := 0
	for _, off := range []int{150, 183, 600, 1060, 1200, 1500} {
		at := start.Add(time.Duration(off) * time.Second)
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#slider"), fmt.Sprint(off))); err != nil {
			t.Fatal(err)
		}
		js(`document.querySelector("#slider").dispatchEvent(new Event("input"))`)
		compare(at)
		if w := rosterAt(t, webinar, at); len(w.Requests) > 0 || len(w.Accepted) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty == 0 {
		t.Error("no instant chosen shows a queue or an acceptance: the comparison proves little")
	}
	// The keyboard moves the slider too: one second back from 14:25:00.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS("#slider")), chromedp.KeyEvent(kb.ArrowLeft)); err != nil {
		t.Fatal(err)
	}
	compare(start.Add(1499 * time.Second))
	// The history filtered by user.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#user"), "bob")); err != nil {
		t.Fatal(err)
	}
	js(`document.querySelector("#user").dispatchEvent(new Event("change"))`)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#history[data-user="bob"]`))); err != nil {
		t.Fatal(err)
	}
	n := js(`document.querySelectorAll("#history li").length`)
	src, err := replay.Open(context.Background(), webinar)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	h, err := replay.History(context.Background(), src, replay.Filter{MeetingID: "webinar-42"})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(h.ForUser("bob").Entries); n != float64(want) {
		t.Errorf("history of bob shows %v entries, want %d", n, want)
	}
	// A link to an instant and a user: ?t=SECONDS&user=U.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"?t=1060&user=carol"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		t.Fatal(err)
	}
	compare(start.Add(1060 * time.Second))
	if n := js(`document.querySelectorAll("#history li").length`); n != float64(len(h.ForUser("carol").Entries)) {
		t.Errorf("?user=carol shows %v entries", n)
	}
	if v := js(`document.querySelector("#verdict").textContent`); !strings.HasPrefix(fmt.Sprint(v), "clean") {
		t.Errorf("verdict %q", v)
	}
	// The stage's own state, in a meeting that used the controls: at
	// 14:01:00 it is backstage, with a co-host; the timeline shades it and
	// draws the control events.
	ctl := startView(t, controls)
	if err := chromedp.Do(ctx, chromedp.Navigate(ctl+"?t=60"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#stage-state[data-phase="Backstage"]`))); err != nil {
		t.Fatal(err)
	}
	if v := fmt.Sprint(js(`document.querySelector("#stage-state").textContent`)); v != "Stage backstage since 14:00:00; requests open; co-hosts: maria" {
		t.Errorf("stage state %q", v)
	}
	for _, kind := range []string{replay.BandBackstage, replay.MarkStageStarted, replay.MarkStageEnded, replay.MarkCoHost, replay.MarkBrought, replay.MarkRequestsClosed} {
		if n := js(fmt.Sprintf(`document.querySelectorAll('#timeline svg [data-kind=%q]').length`, kind)); n == float64(0) {
			t.Errorf("the page's timeline has no %s", kind)
		}
	}
	// A tampered log: its finding is marked on the timeline at its event.
	bad := startView(t, tamper(t, func(l []string) []string {
		l[75] = strings.Replace(l[75], `"users":["heidi"]`, `"users":["kevin"]`, 1)
		return l
	}))
	if err := chromedp.Do(ctx, chromedp.Navigate(bad), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		t.Fatal(err)
	}
	if v := js(`document.querySelector("#verdict").textContent`); !strings.Contains(fmt.Sprint(v), "finding") {
		t.Errorf("verdict on a tampered log: %q", v)
	}
	// The finding's mark sits at the x of the denial (version 76) it is about.
	at := js(`(() => { const f = document.querySelector('#timeline svg g.finding[data-version="76"] line');
		const m = document.querySelector('#timeline svg [data-version="76"]:not(g)');
		return f && m ? [Number(f.getAttribute("x1")), m.getBBox().x + m.getBBox().width / 2] : null })()`)
	if xs, ok := at.([]any); !ok || len(xs) != 2 || math.Abs(xs[0].(float64)-xs[1].(float64)) > 1 {
		t.Errorf("finding at v76 placed at %v, want the x of v76's mark", at)
	}
}
