package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore/natsstore"
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

// Livestream: a large webinar on the Engine and the JetStream store, as a
// backend drives it: viewers enter (the backend adds them), a tenth of them
// raise a hand, three hosts grant the queue's head in bulk (50 at a time),
// the granted join the stage, speak and leave (the stage rotates), and half
// the audience leaves; callers goroutines issue the commands, and one
// watcher follows the meeting. One b.N iteration is one whole webinar. It
// reports the commands per second, their p50 and p99 latency, the
// notifications the watcher received per second, the cold load of the
// meeting at the end (a fresh Engine reading it, from the snapshot the
// first Engine wrote on Close), and the heap of the cached state per
// participant.
func Livestream(viewers, callers int, mode Sync) func(*testing.B) {
	return func(b *testing.B) {
		for range b.N {
			livestream(b, viewers, callers, mode)
		}
	}
}

func livestream(b *testing.B, viewers, callers int, mode Sync) {
	b.StopTimer()
	s := startStage(b, mode)
	defer s.env.close()
	ctx := context.Background()
	for _, h := range []string{"h0", "h1", "h2"} {
		if _, err := s.eng.AddParticipant(ctx, LiveMeeting, aggregate.Participant{UserID: h, Permissions: hostP.Permissions}); err != nil {
			b.Fatal(err)
		}
	}
	// One watcher follows the meeting from now on.
	wctx, stopWatch := context.WithCancel(ctx)
	var notified atomic.Int64
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for _, err := range s.eng.Watch(wctx, LiveMeeting, 0) {
			if err != nil {
				return
			}
			notified.Add(1)
		}
	}()
	var lat Latency
	var cmds atomic.Int64
	run := func(n int, op func(i int) error) {
		if err := runOps(callers, n, &lat, func(_, _, i int) error {
			if err := op(i); err != nil {
				return err
			}
			cmds.Add(1)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	viewer := func(i int) string { return fmt.Sprintf("v%06d", i) }
	b.StartTimer()
	start := time.Now()
	run(viewers, func(i int) error { // enter
		_, err := s.eng.Execute(ctx, LiveMeeting, aggregate.Command{Action: aggregate.AddParticipant{Participant: viewerP(viewer(i))}})
		return err
	})
	hands := viewers / 10
	run(hands, func(i int) error { // raise hands
		_, err := s.eng.RequestAccess(ctx, LiveMeeting, viewer(i*10))
		return err
	})
	const batch = 50
	for first := 0; first+batch <= min(hands, 500); first += batch { // grant, join, speak, leave
		users := make([]string, batch)
		for j := range users {
			users[j] = viewer((first + j) * 10)
		}
		if _, err := s.eng.GrantAccess(ctx, LiveMeeting, fmt.Sprint("h", first/batch%3), users); err != nil {
			b.Fatal(err)
		}
		cmds.Add(1)
		run(batch, func(j int) error {
			_, err := s.eng.Join(ctx, LiveMeeting, users[j])
			return err
		})
		run(batch, func(j int) error {
			_, err := s.eng.Leave(ctx, LiveMeeting, users[j])
			return err
		})
	}
	run(viewers/2, func(i int) error { // half the audience leaves
		_, err := s.eng.Execute(ctx, LiveMeeting, aggregate.Command{Action: aggregate.RemoveParticipant{UserID: viewer(viewers - 1 - i)}})
		return err
	})
	took := time.Since(start)
	b.StopTimer()
	// The watcher has every notification once it has caught up.
	r, err := s.eng.Roster(ctx, LiveMeeting)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && notified.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stopWatch()
	<-watching
	s.eng.Close() // writes the meeting's snapshot
	s.store.Close()
	s.eng = nil
	cold, held := coldHeld(b, s.nc)
	b.ReportMetric(float64(cmds.Load())/took.Seconds(), "cmds/s")
	lat.report(b)
	b.ReportMetric(float64(notified.Load())/took.Seconds(), "notifications/s")
	b.ReportMetric(float64(cold.Microseconds())/1000, "coldload-ms")
	b.ReportMetric(float64(held)/float64(max(len(r.Participants), 1)), "B/participant")
	b.StartTimer()
}

// coldHeld times a fresh Engine's first read of the live meeting and
// measures the heap it then holds: the heap with the Engine, less the heap
// once it is closed and dropped (the embedded server's caches shrink in
// between too: the figure is a floor).
func coldHeld(b *testing.B, nc *nats.Conn) (time.Duration, int64) {
	ctx := context.Background()
	store, err := natsstore.New(ctx, nc)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := stage.New(store, stage.WithAutoTick(false))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := eng.Status(ctx, LiveMeeting, "h0"); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	with := heapInUse()
	eng.Close()
	store.Close()
	eng = nil
	without := heapInUse()
	return took, int64(with) - int64(without)
}
