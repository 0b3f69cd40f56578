package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/aggregate"
)

// LiveMeeting is the meeting of the one-meeting workloads.
const LiveMeeting = "livestream"

// OneMeeting: the Engine on the JetStream store, callers goroutines on one
// meeting, as viewers stream into a large webinar: each operation is either
// the backend adding a new viewer, or a viewer added before raising a hand
// (RequestAccess), by turns. Every command is accepted and is one event,
// and every one goes to the same meeting: the engine's ceiling for a
// single large event. Compare with RawOneSubject.
func OneMeeting(callers int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		s := startStage(b, sync)
		defer s.close()
		ctx := context.Background()
		if _, err := s.eng.AddParticipant(ctx, LiveMeeting, hostP); err != nil {
			b.Fatal(err)
		}
		// Caller c's operation i: even i adds viewer (c, i/2), odd i has
		// that viewer request; a caller's operations run in order.
		lat := runCallers(b, callers, func(c, i int) error {
			v := fmt.Sprintf("v%d-%d", c, i/2)
			var err error
			if i%2 == 0 {
				_, err = s.eng.Execute(ctx, LiveMeeting, aggregate.Command{Action: aggregate.AddParticipant{Participant: viewerP(v)}})
			} else {
				_, err = s.eng.Execute(ctx, LiveMeeting, aggregate.Command{Actor: v, Action: aggregate.RequestAccess{}})
			}
			return err
		})
		perSecond(b, b.N, "cmds/s")
		lat.report(b)
	}
}

// RawOneSubject: synchronous publishes to one subject from callers
// goroutines, with no guard: the transport's own ceiling for one subject,
// what OneMeeting is measured against.
func RawOneSubject(callers int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		e := startEnv(b, sync)
		defer e.close()
		js, _ := jetstream.New(e.nc)
		rawStream(b, js)
		data := payload()
		ctx := context.Background()
		lat := runCallers(b, callers, func(c, i int) error {
			_, err := js.Publish(ctx, "raw.one", data)
			return err
		})
		perSecond(b, b.N, "msgs/s")
		lat.report(b)
	}
}
