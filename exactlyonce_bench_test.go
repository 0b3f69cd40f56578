package stage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// BenchmarkKeyedCommand measures what a caller's idempotency key costs a
// command (the command index: a lookup and a record before the append),
// beside the same command with a key the engine makes up, and whether it
// grows with the number of keys the index holds. Each op is a
// RequestAccess or a CancelRequestAccess, by turns, on one meeting.
//
//	go test -run '^$' -bench KeyedCommand -count 6 . | benchstat -
func BenchmarkKeyedCommand(b *testing.B) {
	held := []int{0, 100_000}
	if testing.Short() {
		held = []int{0, 1_000}
	}
	for _, storeName := range []string{"memory", "jetstream"} {
		for _, n := range held {
			for _, keyed := range []bool{false, true} {
				name := fmt.Sprintf("%s/held=%d/keyed=%v", storeName, n, keyed)
				b.Run(name, func(b *testing.B) {
					st := benchStore(b, storeName)
					benchFillIndex(b, st, n)
					eng, err := stage.New(st)
					if err != nil {
						b.Fatal(err)
					}
					defer eng.Close()
					ctx := context.Background()
					if _, err := eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "u", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}); err != nil {
						b.Fatal(err)
					}
					cmds := []aggregate.Command{{Actor: "u", Action: aggregate.RequestAccess{}}, {Actor: "u", Action: aggregate.CancelRequestAccess{}}}
					b.ResetTimer()
					for i := range b.N {
						var opts []stage.ExecOption
						if keyed {
							opts = append(opts, stage.WithIdempotencyKey(fmt.Sprintf("op-%d", i)))
						}
						if _, err := eng.Execute(ctx, "w", cmds[i%2], opts...); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func benchStore(b *testing.B, name string) eventstore.Store {
	if name == "memory" {
		return eventstore.NewMemory()
	}
	srv := jsEmbedded(b, natsstore.WithLazySync())
	st, err := natsstore.New(context.Background(), jsConnect(b, srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// benchFillIndex records n keys of other meetings in the store's index.
func benchFillIndex(b *testing.B, st eventstore.Store, n int) {
	ix := st.(eventstore.CommandIndex)
	ctx := context.Background()
	at := time.Now()
	for i := range n {
		m := fmt.Sprintf("other-%d", i%1000)
		if err := ix.RecordCommand(ctx, m, events.KeyOf("u", fmt.Sprint(i)), eventstore.CommandRecord{Version: uint64(i/1000 + 1), Time: at}); err != nil {
			b.Fatal(err)
		}
	}
}
