package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestVerify_empty(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, loc := range []string{empty, os.DevNull} {
		code, out, errs := stagereplay(t, "verify", loc)
		if code != exitFindings || out != "EMPTY: "+loc+" holds no events: nothing to verify\n" {
			t.Errorf("verify %s: exit %d\n%s%s", loc, code, out, errs)
		}
		code, out, _ = stagereplay(t, "verify", loc, "--json")
		if code != exitFindings || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"kind": "empty"`) {
			t.Errorf("verify %s --json: exit %d\n%s", loc, code, out)
		}
	}
	// An unknown meeting is still an error, not an empty log.
	if code, _, errs := stagereplay(t, "verify", webinar, "-m", "nope"); code != exitError || !strings.Contains(errs, "unknown meeting") {
		t.Errorf("unknown meeting: exit %d %s", code, errs)
	}
}

// One event of the demo's log dated a day later: its hash is wrong and every
// later event is older than it. It reports once.
func TestVerify_oneCauseOnce(t *testing.T) {
	path := tamper(t, func(l []string) []string {
		l[19] = strings.Replace(l[19], `"time":"2026-11-29T`, `"time":"2026-11-30T`, 1)
		return l
	})
	code, out, errs := stagereplay(t, "verify", path)
	if code != exitFindings {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"FINDING seq 20 webinar-42 v20: hash: ",
		"  and 81 more findings in meeting webinar-42 that follow from it: 81 time; --all lists them",
		"FAILED: 82 findings from 1 cause (hash, time) in 101 events, 1 meeting",
		"checked: versions continuous, hash chain intact, every event legal, time in order, no command key reused within 24h0m0s",
		"not proven: no --public-key given",
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], w)
		}
	}
	// --all lists every finding, under its cause.
	_, out, _ = stagereplay(t, "verify", path, "--all")
	if n := len(regexp.MustCompile(`(?m)^  and seq \d+ webinar-42 v\d+: time: `).FindAllString(out, -1)); n != 81 {
		t.Errorf("--all lists %d consequences:\n%s", n, out)
	}
	// --json lists every finding, each consequence with its cause.
	_, out, _ = stagereplay(t, "verify", path, "--json")
	var rep struct {
		OK       bool `json:"ok"`
		Causes   int  `json:"causes"`
		Findings []struct {
			Kind  string `json:"kind"`
			Cause *int   `json:"cause"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Causes != 1 || len(rep.Findings) != 82 || rep.Findings[0].Cause != nil {
		t.Fatalf("json: %+v", rep)
	}
	for _, f := range rep.Findings[1:] {
		if f.Cause == nil || *f.Cause != 0 {
			t.Fatalf("json finding %+v", f)
		}
	}
}

func TestVerify_truncatedFile(t *testing.T) {
	b, err := os.ReadFile(webinar)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.jsonl")
	if err := os.WriteFile(path, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := stagereplay(t, "verify", path)
	if code != exitFindings || !strings.Contains(out, "FINDING seq 0: truncated: "+path+":101: replay: log truncated: the file ends in the middle of an event") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
