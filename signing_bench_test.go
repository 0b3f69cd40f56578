package stage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
)

// BenchmarkSignedCommand measures what a signing key with checkpoints
// costs a command (noting the meeting's head for the next checkpoint; the
// signing itself happens every interval, off the command's path), over
// meetings commands spread across. Each op is a RequestAccess or a
// CancelRequestAccess, by turns.
//
//	go test -run '^$' -bench SignedCommand -count 6 . | benchstat -
func BenchmarkSignedCommand(b *testing.B) {
	priv, _ := signingKey(b)
	for _, storeName := range []string{"memory", "jetstream"} {
		for _, meetings := range []int{1, 1000} {
			for _, signed := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/meetings=%d/signed=%v", storeName, meetings, signed), func(b *testing.B) {
					st := benchStore(b, storeName)
					opts := []stage.Option{stage.WithAutoTick(false)}
					if signed {
						opts = append(opts, stage.WithSigningKey(priv), stage.WithCheckpoints(100*time.Millisecond, discardSink{}))
					}
					eng, err := stage.New(st, opts...)
					if err != nil {
						b.Fatal(err)
					}
					defer eng.Close()
					ctx := context.Background()
					for m := range meetings {
						if _, err := eng.AddParticipant(ctx, fmt.Sprint("w", m), aggregate.Participant{UserID: "u", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}); err != nil {
							b.Fatal(err)
						}
					}
					cmds := []aggregate.Command{{Actor: "u", Action: aggregate.RequestAccess{}}, {Actor: "u", Action: aggregate.CancelRequestAccess{}}}
					b.ResetTimer()
					for i := range b.N {
						m := i % meetings
						if _, err := eng.Execute(ctx, fmt.Sprint("w", m), cmds[(i/meetings)%2]); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

type discardSink struct{}

func (discardSink) WriteCheckpoints(context.Context, []checkpoint.Signed) error { return nil }
