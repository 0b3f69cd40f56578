package natsstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// BenchmarkStore_Append measures one guarded append of n events on an
// embedded server, syncing before each acknowledgement or not.
func BenchmarkStore_Append(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, n := range []int{1, 3} {
			name := fmt.Sprintf("sync=%v/events=%d", sync, n)
			b.Run(name, func(b *testing.B) {
				var opts []natsstore.ServerOption
				if !sync {
					opts = append(opts, natsstore.WithLazySync())
				}
				srv := startServer(b, opts...)
				s := newStore(b, connect(b, srv))
				c := storetest.NewChain("bench")
				b.ResetTimer()
				for b.Loop() {
					v := c.Version
					if _, err := s.Append(ctx(b), "bench", v, c.Next(n)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStore_AppendMarks measures one single-event append with the
// high-water marks written in the background (the default interval) or
// before each Append returns (interval 0, the strict mode).
func BenchmarkStore_AppendMarks(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, iv := range []time.Duration{natsstore.DefaultMarkInterval, 0} {
			b.Run(fmt.Sprintf("sync=%v/interval=%v", sync, iv), func(b *testing.B) {
				var opts []natsstore.ServerOption
				if !sync {
					opts = append(opts, natsstore.WithLazySync())
				}
				srv := startServer(b, opts...)
				s := newStore(b, connect(b, srv), natsstore.WithMarkInterval(iv))
				c := storetest.NewChain("bench")
				b.ResetTimer()
				for b.Loop() {
					v := c.Version
					if _, err := s.Append(ctx(b), "bench", v, c.Next(1)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
