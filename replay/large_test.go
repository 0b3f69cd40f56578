package replay_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

var (
	large    = flag.Int("large", 0, "generate a log of this many events and time replaying it (TestLargeLog)")
	largeOut = flag.String("large-out", "", "also keep the generated log in this file")
)

// generate writes a legal log of about n events over several meetings, made
// by the engine, to a JSON Lines file and returns its path.
func generate(t testing.TB, n, meetings, viewers int) string {
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store, stage.WithClock(steppingClock()))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	status := make([][]aggregate.Status, meetings)
	ids := make([]string, meetings)
	count := 0
	exec := func(m int, actor string, a aggregate.Action) {
		if _, err := eng.Execute(ctx, ids[m], aggregate.Command{Actor: actor, Action: a}); err != nil {
			t.Fatal(err)
		}
		count++
	}
	for m := range meetings {
		ids[m] = fmt.Sprintf("meeting-%04d", m)
		exec(m, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "host", Permissions: host}})
		status[m] = make([]aggregate.Status, viewers)
		for v := range viewers {
			exec(m, "", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: fmt.Sprint("v", v), Permissions: viewer}})
			status[m][v] = aggregate.OffStage
		}
	}
	for count < n {
		m, v := rng.IntN(meetings), rng.IntN(viewers)
		u := fmt.Sprint("v", v)
		switch status[m][v] {
		case aggregate.OffStage:
			exec(m, u, aggregate.RequestAccess{})
			status[m][v] = aggregate.RequestedToJoinStage
		case aggregate.RequestedToJoinStage:
			if rng.IntN(5) == 0 {
				exec(m, "host", aggregate.DenyAccess{Users: []string{u}})
				status[m][v] = aggregate.OffStage
			} else {
				exec(m, "host", aggregate.GrantAccess{Users: []string{u}})
				status[m][v] = aggregate.AcceptedToJoinStage
			}
		case aggregate.AcceptedToJoinStage:
			exec(m, u, aggregate.Join{})
			status[m][v] = aggregate.OnStage
		case aggregate.OnStage:
			if rng.IntN(5) == 0 {
				exec(m, "host", aggregate.Kick{Users: []string{u}})
			} else {
				exec(m, u, aggregate.Leave{})
			}
			status[m][v] = aggregate.OffStage
		}
	}
	path := filepath.Join(t.TempDir(), "large.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if _, err := replay.WriteJSONL(w, store.ReadAll(ctx, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLargeLog times replay of a generated log:
//
//	go test ./replay -run TestLargeLog -large 1000000 -v
func TestLargeLog(t *testing.T) {
	if *large == 0 {
		t.Skip("set -large N to generate and replay an N-event log")
	}
	ctx := context.Background()
	start := time.Now()
	path := generate(t, *large, 100, 50)
	if *largeOut != "" {
		b, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(*largeOut, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	fi, _ := os.Stat(path)
	t.Logf("generated %d events (%.0f MB) through the engine in %v", *large, float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond))
	src, err := replay.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	timeIt := func(what string, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		t.Logf("%-36s %8v  (%.0f events/s)", what, d.Round(time.Millisecond), float64(*large)/d.Seconds())
	}
	timeIt("verify (whole log)", func() error {
		rep, err := replay.Verify(ctx, src.Events(ctx, ""))
		if err == nil && !rep.OK() {
			err = fmt.Errorf("findings: %v", rep.Findings[:1])
		}
		return err
	})
	timeIt("fold (every meeting's state)", func() error { _, err := replay.Fold(ctx, src, replay.Filter{}); return err })
	timeIt("roster of one meeting (full scan)", func() error {
		_, err := replay.Roster(ctx, src, replay.Filter{MeetingID: "meeting-0042"})
		return err
	})
	timeIt("history of one meeting (full scan)", func() error {
		_, err := replay.History(ctx, src, replay.Filter{MeetingID: "meeting-0042"})
		return err
	})
}

func BenchmarkVerify(b *testing.B) {
	path := generate(b, 20000, 10, 30)
	ctx := context.Background()
	src, err := replay.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.ResetTimer()
	for b.Loop() {
		rep, err := replay.Verify(ctx, src.Events(ctx, ""))
		if err != nil || !rep.OK() {
			b.Fatal(err, rep)
		}
	}
	b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkFold(b *testing.B) {
	path := generate(b, 20000, 10, 30)
	ctx := context.Background()
	src, err := replay.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := replay.Fold(ctx, src, replay.Filter{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "events/s")
}
