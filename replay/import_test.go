package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"testing"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

// twoMeetings runs the webinar scenario on meetings "a" and "b",
// interleaved, and returns the log (13 events each, the grant of bob at
// version 5 of each).
func twoMeetings(t testing.TB) []events.Envelope { return meetingsLog(t, "a", "b") }

func only(evs []events.Envelope, meeting string) []events.Envelope {
	var out []events.Envelope
	for _, e := range evs {
		if e.MeetingID == meeting {
			out = append(out, e)
		}
	}
	return out
}

// jsonl encodes evs as an export file's bytes.
func jsonl(t testing.TB, evs []events.Envelope) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := replay.WriteJSONL(&b, seq(evs)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// contents returns what store holds, meeting by meeting: the hashes in
// version order.
func contents(t testing.TB, store eventstore.Store, meetings ...string) map[string][]events.Hash {
	t.Helper()
	out := map[string][]events.Hash{}
	for _, m := range meetings {
		for e, err := range store.Load(context.Background(), m, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Version != uint64(len(out[m])+1) {
				t.Fatalf("meeting %s: version %d after %d", m, e.Version, len(out[m]))
			}
			out[m] = append(out[m], e.Hash)
		}
	}
	return out
}

func hashes(evs []events.Envelope) []events.Hash {
	out := make([]events.Hash, len(evs))
	for i := range evs {
		out[i] = evs[i].Hash
	}
	return out
}

func outcome(t *testing.T, rep *replay.ImportReport, meeting string) replay.MeetingImport {
	t.Helper()
	for _, m := range rep.Meetings {
		if m.MeetingID == meeting {
			return m
		}
	}
	t.Fatalf("no outcome for meeting %s in %+v", meeting, rep)
	return replay.MeetingImport{}
}

// wantStore checks that store holds exactly want's events of each meeting
// (none for a meeting want has none of).
func wantStore(t *testing.T, store eventstore.Store, want []events.Envelope, meetings ...string) {
	t.Helper()
	got := contents(t, store, meetings...)
	for _, m := range meetings {
		w := hashes(only(want, m))
		if fmt.Sprint(got[m]) != fmt.Sprint(w) {
			t.Errorf("meeting %s: the store holds %d events, want %d (or they differ)", m, len(got[m]), len(w))
		}
	}
}

func TestImport_cleanAndRerun(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	store := eventstore.NewMemory()
	rep, err := replay.Import(ctx, store, replay.ReadJSONL(bytes.NewReader(jsonl(t, evs)), "two.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 26 || rep.Appended != 26 || len(rep.Meetings) != 2 || rep.Meetings[0].MeetingID != "a" {
		t.Fatalf("report %+v", rep)
	}
	for _, m := range rep.Meetings {
		if m.Outcome != replay.Imported || m.Appended != 13 || m.From != 1 || m.Batches != 1 || m.Held != 0 {
			t.Errorf("%+v", m)
		}
	}
	wantStore(t, store, evs, "a", "b")
	// A rerun appends nothing.
	rep, err = replay.Import(ctx, store, seq(evs))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rep.Meetings {
		if m.Outcome != replay.AlreadyPresent || m.Appended != 0 || m.Held != 13 {
			t.Errorf("rerun: %+v", m)
		}
	}
	wantStore(t, store, evs, "a", "b")
	// So does an older export of a meeting the store has gone on with.
	rep, err = replay.Import(ctx, store, seq(only(evs, "a")[:7]))
	if err != nil || rep.Meetings[0].Outcome != replay.AlreadyPresent || rep.Meetings[0].Held != 13 {
		t.Errorf("older export: %+v %v", rep, err)
	}
	wantStore(t, store, evs, "a", "b")
}

// TestImport_malformedLine: a damaged line stores nothing of its meeting;
// a damaged line that names no meeting of the file stores nothing at all.
func TestImport_malformedLine(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	lines := strings.Split(strings.TrimSuffix(string(jsonl(t, evs)), "\n"), "\n")
	if !strings.Contains(lines[5], `"meeting":"b"`) || !strings.Contains(lines[4], `"meeting":"a"`) {
		t.Fatalf("lines 5 and 6 should be of a and b:\n%s\n%s", lines[4], lines[5])
	}
	cases := []struct {
		name    string
		line6   string
		whole   bool
		refused string
	}{
		{"garbage", "garbage", true, ""},
		{"no meeting", `{"schema":1,"version":3}`, true, ""},
		{"meeting not in the file", strings.Replace(strings.Replace(lines[5], `"meeting":"b"`, `"meeting":"c"`, 1), `"type":"`, `"type":"Nope`, 1), true, ""},
		{"bad event of b", strings.Replace(lines[5], `"type":"`, `"type":"Nope`, 1), false, "b"},
		{"truncated event of b", lines[5][:len(lines[5])/2], true, ""}, // not JSON: cannot be attributed
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]string(nil), lines...)
			in[5] = c.line6
			store := eventstore.NewMemory()
			rep, err := replay.Import(ctx, store, replay.ReadJSONL(strings.NewReader(strings.Join(in, "\n")), "in.jsonl"))
			var ie *replay.ImportError
			if !errors.Is(err, replay.ErrImportRefused) || !errors.As(err, &ie) {
				t.Fatalf("error %v, want an ImportError", err)
			}
			if rep.Malformed != 1 || rep.Events != 25 {
				t.Errorf("report %+v", rep)
			}
			if c.whole {
				if ie.Whole == "" || rep.Whole == "" || len(ie.Refused) != 2 || !strings.Contains(rep.Whole, "in.jsonl:6") {
					t.Errorf("whole import: %+v, report %+v", ie, rep)
				}
				wantStore(t, store, nil, "a", "b")
				return
			}
			if ie.Whole != "" || len(ie.Refused) != 1 || ie.Refused[0].MeetingID != c.refused {
				t.Fatalf("refused %+v", ie)
			}
			m := outcome(t, rep, c.refused)
			var de *replay.DecodeError
			if m.Outcome != replay.Refused || len(m.Malformed) != 1 || !errors.As(m.Malformed[0], &de) || de.Line != 6 ||
				!strings.Contains(m.Reason, "line 6") {
				t.Errorf("outcome %+v", m)
			}
			if a := outcome(t, rep, "a"); a.Outcome != replay.Imported || a.Appended != 13 {
				t.Errorf("a: %+v", a)
			}
			wantStore(t, store, only(evs, "a"), "a", "b")
		})
	}
}

// TestImport_tampered: a forged meeting (edited and re-hashed, or with an
// event deleted) is refused with Verify's findings; the other is imported.
func TestImport_tampered(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		edit  func(t *testing.T, a []events.Envelope) []events.Envelope
		kinds []replay.FindingKind // at least these
	}{
		{"actor swapped and re-hashed", func(t *testing.T, a []events.Envelope) []events.Envelope {
			// bob grants himself.
			if a[4].Type != events.TypeAccessGranted {
				t.Fatalf("version 5 is %s", a[4].Type)
			}
			a[4].Actor = "bob"
			reseal(t, a, 4)
			return a
		}, []replay.FindingKind{replay.Illegal}},
		{"event deleted", func(t *testing.T, a []events.Envelope) []events.Envelope {
			return append(a[:4:4], a[5:]...)
		}, []replay.FindingKind{replay.VersionGap}},
		{"event deleted, renumbered and re-hashed", func(t *testing.T, a []events.Envelope) []events.Envelope {
			a = append(a[:4:4], a[5:]...)
			for i := 4; i < len(a); i++ {
				a[i].Version = uint64(i) + 1
			}
			reseal(t, a, 4)
			return a
		}, []replay.FindingKind{replay.Illegal}},
		{"hash forged", func(t *testing.T, a []events.Envelope) []events.Envelope {
			a[9].Hash[0] ^= 1
			return a
		}, []replay.FindingKind{replay.HashMismatch, replay.ChainBroken}},
		{"starts at version 2", func(t *testing.T, a []events.Envelope) []events.Envelope {
			return a[1:]
		}, []replay.FindingKind{replay.VersionGap}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := twoMeetings(t)
			a := c.edit(t, clone(t, only(evs, "a")))
			in := append(a, only(evs, "b")...)
			store := eventstore.NewMemory()
			rep, err := replay.Import(ctx, store, replay.ReadJSONL(bytes.NewReader(jsonl(t, in)), "in.jsonl"))
			var ie *replay.ImportError
			if !errors.As(err, &ie) || len(ie.Refused) != 1 || ie.Refused[0].MeetingID != "a" {
				t.Fatalf("error %v, want meeting a refused", err)
			}
			m := outcome(t, rep, "a")
			got := (&replay.Report{Findings: m.Findings}).Kinds()
			for _, k := range c.kinds {
				if !strings.Contains(fmt.Sprint(got), string(k)) {
					t.Errorf("findings %v lack %s", got, k)
				}
			}
			if m.Outcome != replay.Refused || m.Appended != 0 || !strings.Contains(m.Reason, "finding") {
				t.Errorf("outcome %+v", m)
			}
			t.Logf("a: %s", m.Reason)
			if b := outcome(t, rep, "b"); b.Outcome != replay.Imported {
				t.Errorf("b: %+v", b)
			}
			wantStore(t, store, only(evs, "b"), "a", "b")
		})
	}
}

// TestImport_interrupted: an import that stopped after some of a meeting's
// events (here: a prefix imported first) completes on a rerun, without
// duplicates.
func TestImport_interrupted(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	store := eventstore.NewMemory()
	if _, err := replay.Import(ctx, store, seq(only(evs, "a")[:6])); err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Import(ctx, store, seq(evs))
	if err != nil {
		t.Fatal(err)
	}
	if a := outcome(t, rep, "a"); a.Outcome != replay.Completed || a.Held != 6 || a.From != 7 || a.Appended != 7 {
		t.Errorf("a: %+v", a)
	}
	if b := outcome(t, rep, "b"); b.Outcome != replay.Imported || b.Appended != 13 {
		t.Errorf("b: %+v", b)
	}
	wantStore(t, store, evs, "a", "b")
	rep, err = replay.Import(ctx, store, seq(evs))
	if err != nil || rep.Appended != 0 {
		t.Fatalf("rerun: %+v %v", rep, err)
	}
	wantStore(t, store, evs, "a", "b")
}

// flaky fails the appends whose number (from 1) is in fail, as a store
// that lost its connection would (ambiguously: nothing was stored).
type flaky struct {
	eventstore.Store
	n    int
	fail map[int]bool
}

var errLost = errors.New("connection lost")

func (f *flaky) Append(ctx context.Context, m string, v uint64, evs []events.Envelope) (uint64, error) {
	f.n++
	if f.fail[f.n] {
		return 0, errLost
	}
	return f.Store.Append(ctx, m, v, evs)
}

// TestImport_batches: a meeting longer than a batch is appended in several
// atomic appends; a failure between two leaves a prefix (the outcome says
// so and the import stops) that a rerun completes.
func TestImport_batches(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	store := eventstore.NewMemory()
	f := &flaky{Store: store, fail: map[int]bool{3: true}}
	rep, err := replay.Import(ctx, f, seq(evs), replay.WithImportBatch(5))
	if !errors.Is(err, errLost) {
		t.Fatalf("error %v, want the store's", err)
	}
	a := outcome(t, rep, "a")
	if a.Outcome != replay.Interrupted || a.Appended != 10 || a.Batches != 2 || !errors.Is(a.Err, errLost) {
		t.Errorf("a: %+v", a)
	}
	if len(rep.Meetings) != 1 {
		t.Errorf("the import went on after a store error: %+v", rep.Meetings)
	}
	wantStore(t, store, only(evs, "a")[:10], "a", "b")
	rep, err = replay.Import(ctx, store, seq(evs), replay.WithImportBatch(5))
	if err != nil {
		t.Fatal(err)
	}
	if a := outcome(t, rep, "a"); a.Outcome != replay.Completed || a.From != 11 || a.Batches != 1 {
		t.Errorf("a on rerun: %+v", a)
	}
	if b := outcome(t, rep, "b"); b.Outcome != replay.Imported || b.Batches != 3 {
		t.Errorf("b on rerun: %+v", b)
	}
	wantStore(t, store, evs, "a", "b")
}

// TestImport_conflict: a store that holds other events of a meeting keeps
// them; the meeting is refused, the others imported.
func TestImport_conflict(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	store := eventstore.NewMemory()
	// The store's meeting "a" is another history: w1's first events, moved.
	other := clone(t, webinar(t)[:3])
	for i := range other {
		other[i].MeetingID = "a"
	}
	reseal(t, other, 0)
	if _, err := store.Append(ctx, "a", 0, other); err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Import(ctx, store, seq(evs))
	if !errors.Is(err, replay.ErrImportRefused) {
		t.Fatalf("error %v", err)
	}
	a := outcome(t, rep, "a")
	if a.Outcome != replay.Refused || !errors.Is(a.Err, eventstore.ErrConflict) || !strings.Contains(a.Reason, "version 1") {
		t.Errorf("a: %+v", a)
	}
	wantStore(t, store, append(other, only(evs, "b")...), "a", "b")
	// An Append conflict (another writer) refuses the meeting too.
	store = eventstore.NewMemory()
	racer := &racing{Store: store, first: only(evs, "a")[0]}
	rep, err = replay.Import(ctx, racer, seq(evs))
	if !errors.Is(err, replay.ErrImportRefused) {
		t.Fatalf("error %v", err)
	}
	if a := outcome(t, rep, "a"); a.Outcome != replay.Refused || !errors.Is(a.Err, eventstore.ErrConflict) {
		t.Errorf("a: %+v", a)
	}
}

// racing appends the meeting's first event itself just before the import's
// first append, as another writer would.
type racing struct {
	eventstore.Store
	first events.Envelope
	done  bool
}

func (r *racing) Append(ctx context.Context, m string, v uint64, evs []events.Envelope) (uint64, error) {
	if !r.done {
		r.done = true
		if _, err := r.Store.Append(ctx, r.first.MeetingID, 0, []events.Envelope{r.first}); err != nil {
			return 0, err
		}
	}
	return r.Store.Append(ctx, m, v, evs)
}

func TestImport_dryRun(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	store := eventstore.NewMemory()
	if _, err := replay.Import(ctx, store, seq(only(evs, "a")[:4])); err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Import(ctx, store, seq(evs), replay.ImportDryRun(), replay.WithImportBatch(4))
	if err != nil || !rep.DryRun || rep.Appended != 22 {
		t.Fatalf("%+v %v", rep, err)
	}
	if a := outcome(t, rep, "a"); a.Outcome != replay.Completed || a.Appended != 9 || a.Batches != 3 {
		t.Errorf("a: %+v", a)
	}
	wantStore(t, store, only(evs, "a")[:4], "a", "b")
}

func TestImport_errors(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	store := eventstore.NewMemory()
	for name, f := range map[string]func() (*replay.ImportReport, error){
		"nil store":  func() (*replay.ImportReport, error) { return replay.Import(ctx, nil, seq(evs)) },
		"nil events": func() (*replay.ImportReport, error) { return replay.Import(ctx, store, nil) },
		"batch 0": func() (*replay.ImportReport, error) {
			return replay.Import(ctx, store, seq(evs), replay.WithImportBatch(0))
		},
		"nil option": func() (*replay.ImportReport, error) { return replay.Import(ctx, store, seq(evs), nil) },
	} {
		if _, err := f(); !errors.Is(err, replay.ErrInvalidImport) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An input that cannot be read to its end stores nothing.
	broken := func(yield func(events.Envelope, error) bool) {
		for _, e := range evs[:20] {
			if !yield(e, nil) {
				return
			}
		}
		yield(events.Envelope{}, errLost)
	}
	if _, err := replay.Import(ctx, store, iter.Seq2[events.Envelope, error](broken)); !errors.Is(err, errLost) {
		t.Errorf("broken input: %v", err)
	}
	wantStore(t, store, nil, "a", "b")
	// Nothing to import: an empty report.
	rep, err := replay.Import(ctx, store, seq(nil))
	if err != nil || len(rep.Meetings) != 0 || rep.Events != 0 {
		t.Errorf("empty input: %+v %v", rep, err)
	}
}

// TestImport_dataDir imports into the embedded default, a meeting in
// several batches, with an interrupted first run.
func TestImport_dataDir(t *testing.T) {
	ctx := context.Background()
	evs := twoMeetings(t)
	dir := filepath.Join(t.TempDir(), "data")
	dd, err := replay.OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	f := &flaky{Store: dd.Store, fail: map[int]bool{2: true}}
	if _, err := replay.Import(ctx, f, seq(evs), replay.WithImportBatch(4)); !errors.Is(err, errLost) {
		t.Fatalf("first run: %v", err)
	}
	wantStore(t, dd.Store, only(evs, "a")[:4], "a", "b")
	rep, err := replay.Import(ctx, dd.Store, seq(evs), replay.WithImportBatch(4))
	if err != nil {
		t.Fatal(err)
	}
	if a := outcome(t, rep, "a"); a.Outcome != replay.Completed || a.From != 5 || a.Batches != 3 {
		t.Errorf("a: %+v", a)
	}
	wantStore(t, dd.Store, evs, "a", "b")
	rep, err = replay.Import(ctx, dd.Store, seq(evs))
	if err != nil || rep.Appended != 0 {
		t.Fatalf("rerun: %+v %v", rep, err)
	}
	vr, err := replay.Verify(ctx, dd.Store.ReadAll(ctx, 1))
	if err != nil || !vr.OK() || vr.Events != 26 {
		t.Fatalf("verify of the store: %+v %v", vr, err)
	}
}
