package bench

import (
	"context"
	"testing"

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
		rep, err := replay.Verify(ctx, src.Events(ctx, ""))
		if err != nil {
			b.Fatal(err)
		}
		if rep.Events != n || len(rep.Findings) > 0 {
			b.Fatalf("verified %d events with %d findings, want %d and none", rep.Events, len(rep.Findings), n)
		}
	}
	b.StopTimer()
	perSecond(b, b.N*n, "events/s")
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
