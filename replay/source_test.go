package replay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

func TestOpen_errors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, loc := range []string{"", filepath.Join(dir, "nope.jsonl"), dir, "nats://", "nats://%zz"} {
		if _, err := replay.Open(ctx, loc); !errors.Is(err, replay.ErrSource) {
			t.Errorf("Open(%q): %v", loc, err)
		}
	}
}

func writeLog(t *testing.T, evs []events.Envelope) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replay.WriteJSONL(f, seq(evs)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestFileSource(t *testing.T) {
	ctx := context.Background()
	evs := webinar(t)
	path := writeLog(t, evs)
	var last, total atomic.Int64
	src, err := replay.Open(ctx, path, replay.WithProgress(func(d, tot int64) { last.Store(d); total.Store(tot) }))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Read twice (the file is re-read from the start), stopping early once.
	for e := range src.Events(ctx, "") {
		if e.Version == 3 {
			break
		}
	}
	n := 0
	for e, err := range src.Events(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		if e.Hash != evs[n].Hash || e.Seq != evs[n].Seq {
			t.Fatalf("event %d differs", n)
		}
		n++
	}
	if n != len(evs) {
		t.Fatalf("read %d of %d", n, len(evs))
	}
	fi, _ := os.Stat(path)
	if last.Load() != fi.Size() || total.Load() != fi.Size() {
		t.Errorf("progress %d/%d, file %d bytes", last.Load(), total.Load(), fi.Size())
	}
	// Meeting filter.
	if _, err := replay.Roster(ctx, src, replay.Filter{MeetingID: "w2"}); !errors.Is(err, replay.ErrUnknownMeeting) {
		t.Errorf("unknown meeting: %v", err)
	}
	r, err := replay.Roster(ctx, src, replay.Filter{MeetingID: "w1", UpToVersion: 6})
	if err != nil || len(r.OnStage) != 1 || r.OnStage[0] != "bob" {
		t.Errorf("roster at 6: %+v %v", r, err)
	}
	r, err = replay.Roster(ctx, src, replay.Filter{MeetingID: "w1", UpTo: evs[3].Time})
	if err != nil || r.Version != 4 || len(r.Requests) != 1 {
		t.Errorf("roster at %v: %+v %v", evs[3].Time, r, err)
	}
}

func TestReadJSONL_malformed(t *testing.T) {
	in := "\n{\"schema\":1}\nnot json\n"
	var errs []error
	for _, err := range replay.ReadJSONL(strings.NewReader(in), "in") {
		errs = append(errs, err)
	}
	var de *replay.DecodeError
	if len(errs) != 2 || !errors.As(errs[1], &de) || de.Line != 3 || !errors.Is(errs[0], events.ErrMalformed) {
		t.Fatalf("errors %v", errs)
	}
}

func TestDataDir_persists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	run := func(f func(*stage.Engine)) {
		dd, err := replay.OpenDataDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := stage.New(dd.Store)
		if err != nil {
			t.Fatal(err)
		}
		f(eng)
		if err := dd.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run(func(eng *stage.Engine) {
		eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: host})
		eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "bob", Permissions: viewer})
	})
	run(func(eng *stage.Engine) {
		if _, err := eng.RequestAccess(ctx, "m", "bob"); err != nil {
			t.Fatal(err)
		}
	})
	src, err := replay.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := replay.Verify(ctx, src.Events(ctx, ""))
	if err != nil || !rep.OK() || rep.Events != 3 {
		t.Fatalf("%+v %v", rep, err)
	}
}
