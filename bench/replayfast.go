package bench

import (
	"context"
	"testing"
	"time"

	"github.com/productdb/stage/replay"
)

// OursReplayVerify runs replay.Verify over the stream OursReplay folds,
// read as `stagereplay verify` reads it (the JetStream source): every
// event decoded, its hash and link checked, and every command re-decided
// by the rules; one b.N iteration is one whole verification, which must
// find nothing.
func OursReplayVerify(b *testing.B) {
	n, meetings := replaySize()
	f := fillStream(b, n, meetings)
	ctx := context.Background()
	src, err := replay.OpenConn(ctx, f.nc, replay.WithStream(f.store.Stream()))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.ResetTimer()
	for range b.N {
		verifyPass(b, src, n)
	}
	b.StopTimer()
	perSecond(b, b.N*n, "events/s")
}

// verifyPass verifies the whole stream of src, which must hold n events
// and no finding.
func verifyPass(b *testing.B, src replay.Source, n int) {
	ctx := context.Background()
	rep, err := replay.Verify(ctx, src.Events(ctx, ""))
	if err != nil {
		b.Fatal(err)
	}
	if rep.Events != n || len(rep.Findings) > 0 {
		b.Fatalf("verified %d events with %d findings, want %d and none", rep.Events, len(rep.Findings), n)
	}
}

// loadSize is how many events OursLoadMeeting's meeting has: 20k (5k with
// -short, still a long read).
func loadSize() int {
	if testing.Short() {
		return 5_000
	}
	return 20_000
}

// OursLoadMeeting loads one meeting of loadSize events, alone in its
// stream, with Store.Load (each event decoded and its hash and link
// checked), as an Engine's cold load without a snapshot does; one b.N
// iteration is one whole load.
func OursLoadMeeting(b *testing.B) {
	n := loadSize()
	f := fillStream(b, n, 1)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		got := 0
		for _, err := range f.store.Load(ctx, meetingName(0), 1) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("loaded %d events, want %d", got, n)
		}
	}
	b.StopTimer()
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/load")
	perSecond(b, b.N*n, "events/s")
}

// ReplayPaired measures OursReplay, OursReplayVerify and RawReplay
// interleaved: each b.N iteration reads the stream raw, then folds it,
// then verifies it, so that the three see the same load on a shared
// machine (run one after the other, minutes apart, their ratios move with
// whatever else runs). It reports the fold's events/s, the raw consumer's
// (raw-events/s), their ratio (x-raw), and verify's (verify-events/s,
// verify-x-raw), each over the iterations' summed times.
func ReplayPaired(b *testing.B) {
	n, meetings := replaySize()
	f := fillStream(b, n, meetings)
	ctx := context.Background()
	src, err := replay.OpenConn(ctx, f.nc, replay.WithStream(f.store.Stream()))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var raw, fold, verify time.Duration
	timed := func(d *time.Duration, run func(*testing.B)) {
		t0 := time.Now()
		run(b)
		*d += time.Since(t0)
	}
	b.ResetTimer()
	for range b.N {
		timed(&raw, func(b *testing.B) { rawPass(b, f, n) })
		timed(&fold, func(b *testing.B) { foldPass(b, f, n) })
		timed(&verify, func(b *testing.B) { verifyPass(b, src, n) })
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(b.N*n) / d.Seconds() }
	b.ReportMetric(rate(fold), "events/s")
	b.ReportMetric(rate(raw), "raw-events/s")
	b.ReportMetric(rate(fold)/rate(raw), "x-raw")
	b.ReportMetric(rate(verify), "verify-events/s")
	b.ReportMetric(rate(verify)/rate(raw), "verify-x-raw")
}
