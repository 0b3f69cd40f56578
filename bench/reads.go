package bench

import (
	"context"
	"testing"

	"github.com/productdb/stage"
)

// Reads: callers goroutines read (Status) over meetings meetings of the
// JetStream store, lazy sync, while nothing writes: with cached true the
// Engine has WithCachedReads (a read serves the cache while the store's
// follower reports no newer event), without it every read catches up with
// the store first (a round trip to the server). Reports reads/s and the
// latency of a read.
func Reads(callers, meetings int, cached bool) func(*testing.B) {
	return func(b *testing.B) {
		var opts []stage.Option
		if cached {
			opts = append(opts, stage.WithCachedReads())
		}
		s := startStage(b, LazySync, opts...)
		defer s.close()
		Populate(b, s.eng, meetings)
		ctx := context.Background()
		lat := runCallers(b, callers, func(c, i int) error {
			_, err := s.eng.Status(ctx, meetingName((c+i*callers)%meetings), "viewer")
			return err
		})
		perSecond(b, b.N, "reads/s")
		lat.report(b)
	}
}
