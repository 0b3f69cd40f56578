package main

// Fuzz targets for what the command reads from its user: the --at and
// --version arguments. Each target keeps a seed corpus in
// testdata/fuzz/<FuzzName>/ (go test runs it as a regular test) and is run
// briefly by .ci/fuzz, which finds every func Fuzz... in the module: a new
// target needs no CI change. Run one longer with
//
//	go test ./replay/cmd/stagereplay -run '^$' -fuzz '^FuzzParseAt$' -fuzztime 1m

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/replay"
)

// maxUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const maxUnix = 253402300799

// FuzzParseAt: parseAt never panics; what it refuses it refuses whatever the
// meeting's day, with a message naming --at; a clock time needs the day
// (errNoDay without one); what it accepts round-trips through RFC 3339, and
// a clock time lands on the meeting's first UTC day, at the end of the
// second named.
func FuzzParseAt(f *testing.F) {
	for _, s := range []string{"14:10", "14:10:00", "00:00", "23:59:59", "2026-11-29T14:17:40Z",
		"2026-11-29T14:17:40.123456789+01:00", "0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59",
		"24:00", "14:60", "1:2", "teatime", "", "2026-11-29", "14:10:00Z", "2026-11-29T14:17:40"} {
		f.Add(s, int64(1795960800)) // 2026-11-29T14:00:00Z
		f.Add(s, int64(0))
	}
	day := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, firstUnix int64) {
		var first time.Time // zero: the day is not known yet
		if firstUnix != 0 {
			first = time.Unix(int64(uint64(firstUnix)%maxUnix), 0)
		}
		got, err := parseAt(s, first)
		if errors.Is(err, errNoDay) {
			if !first.IsZero() {
				t.Fatalf("parseAt(%q, %v) asks for the day it was given", s, first)
			}
			first = day
			got, err = parseAt(s, first)
			if err != nil {
				t.Fatalf("parseAt(%q) asked for the day, then refused: %v", s, err)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), "--at") {
				t.Errorf("error %q does not name --at", err)
			}
			if _, err2 := parseAt(s, day.AddDate(0, 0, 1)); err2 == nil {
				t.Errorf("parseAt(%q) refused with one day, accepted with another", s)
			}
			return
		}
		// Accepted: it round-trips through RFC 3339.
		again, err := parseAt(got.Format(time.RFC3339Nano), time.Time{})
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseAt(%q) = %v, which does not round-trip: %v, %v", s, got, again, err)
		}
		if abs, err := time.Parse(time.RFC3339Nano, s); err == nil {
			if !abs.Equal(got) {
				t.Fatalf("parseAt(%q) = %v, want %v", s, got, abs)
			}
			return
		}
		// A clock time: on the first event's UTC day, the whole second.
		fy, fm, fd := first.UTC().Date()
		gy, gm, gd := got.Date()
		if got.Location() != time.UTC || fy != gy || fm != gm || fd != gd || got.Nanosecond() != int(time.Second-1) {
			t.Fatalf("parseAt(%q, %v) = %v: not the end of a second on the first day in UTC", s, first, got)
		}
		if h, m, _ := got.Clock(); !strings.Contains(s, strconv.Itoa(h)) || !strings.Contains(s, strconv.Itoa(m)) {
			t.Fatalf("parseAt(%q) = %v: hour or minute not the ones given", s, got)
		}
		if c, err := parseAt(got.Format("15:04:05"), first); err != nil || !c.Equal(got) {
			t.Fatalf("parseAt(%q) = %v, whose clock gives %v, %v", s, got, c, err)
		}
	})
}

var rosterVersion = regexp.MustCompile(`(?m)^meeting webinar-42 at version (\d+)`)

// FuzzArgs runs the whole command line, kong included, with fuzzed --version
// and --at values on the fixed webinar log: it never panics, exits 0 or 2
// (with a message), and when it answers, it answers at the version the
// value names: min(version, 101) (0: all), or the last event at or before
// the time.
func FuzzArgs(f *testing.F) {
	for _, c := range [][2]string{{"60", "14:10:00"}, {"0", ""}, {"0x10", "2026-11-29T14:17:40Z"}, {"1_000", "00:00"},
		{"-1", "teatime"}, {"18446744073709551616", "2026-11-29T14:00:00.5Z"}, {"", "23:59:59"}, {"1e3", "2026-11-30T00:00:00+10:00"}} {
		f.Add(c[0], c[1])
	}
	b, err := os.ReadFile(webinar)
	if err != nil {
		f.Fatal(err)
	}
	var times []time.Time
	for e, err := range replay.ReadJSONL(strings.NewReader(string(b)), webinar) {
		if err != nil {
			f.Fatal(err)
		}
		times = append(times, e.Time)
	}
	const n = 101
	if len(times) != n {
		f.Fatalf("%s holds %d events", webinar, len(times))
	}
	do := func(t *testing.T, arg string) (int, uint64) {
		t.Helper()
		var out, errb strings.Builder
		code := run(context.Background(), []string{"roster", webinar, arg}, &env{stdout: &out, stderr: &errb, self: "stagereplay"})
		switch code {
		case exitOK:
			m := rosterVersion.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("%s: exit 0 but no roster:\n%s", arg, out.String())
			}
			v, _ := strconv.ParseUint(m[1], 10, 64)
			return code, v
		case exitError:
			if errb.Len() == 0 {
				t.Fatalf("%s: exit 2 and no message", arg)
			}
		default:
			t.Fatalf("%s: exit %d", arg, code)
		}
		return code, 0
	}
	f.Fuzz(func(t *testing.T, version, at string) {
		code, got := do(t, "--version="+version)
		if v, err := strconv.ParseUint(version, 0, 64); err == nil {
			want := min(v, n)
			if v == 0 {
				want = n
			}
			if code != exitOK || got != want {
				t.Fatalf("--version=%s: exit %d, version %d, want %d", version, code, got, want)
			}
		} else if code != exitError {
			t.Fatalf("--version=%q: accepted, kong and strconv disagree", version)
		}
		code, got = do(t, "--at="+at)
		if at == "" {
			if code != exitOK || got != n {
				t.Fatalf("--at=: exit %d, version %d", code, got)
			}
			return
		}
		upTo, err := parseAt(at, times[0])
		if err != nil {
			if code != exitError {
				t.Fatalf("--at=%q: exit %d, but parseAt refuses it: %v", at, code, err)
			}
			return
		}
		want := uint64(0)
		for i, tm := range times {
			if !tm.After(upTo) {
				want = uint64(i) + 1
			}
		}
		if code != exitOK || got != want {
			t.Fatalf("--at=%s (%v): exit %d, version %d, want %d", at, upTo, code, got, want)
		}
	})
}
