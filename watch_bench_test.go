package stage_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
)

// BenchmarkWatchers measures Engine.Watch as the number of watched meetings
// grows, the work staying the same: N watchers, one per meeting, while
// 10 writers append the same total number of events (RequestAccess and
// CancelRequestAccess by turns, spread evenly over the N meetings). It
// reports the notifications delivered per second (from the first command to
// the last watcher's last notification), the commands per second the
// writers reached, and, for N > 10, the ratio to N = 10 of the same store
// and path in the same run (x-vs-10). path=meeting is Watch as it is (each
// watcher follows its meeting alone: eventstore.MeetingSubscriber);
// path=global hides that interface, so each watcher follows the whole log
// and skips the other meetings' events (Watch before the change). A path
// that is not done after watchDeadline reports what it delivered by then.
// On JetStream it also reports the heap each watcher costs (client and
// embedded server: they share the process) and the process's CPU with the
// watchers idle. tail-ms is the time from the last command's return to
// the last notification: near zero when the watchers keep up with the
// writers (the writers are then the limit, in both counts of N).
//
//	go test -run '^$' -bench Watchers -benchtime 1x .
func BenchmarkWatchers(b *testing.B) {
	total, counts := 8000, []int{10, 1000}
	if testing.Short() {
		total, counts = 800, []int{10, 100}
	}
	for _, storeName := range []string{"jetstream", "memory"} {
		for _, path := range []string{"meeting", "global"} {
			var base float64
			for _, n := range counts {
				b.Run(fmt.Sprintf("%s/path=%s/watchers=%d", storeName, path, n), func(b *testing.B) {
					var rate float64
					for range b.N {
						rate = runWatchers(b, storeName, path, n, total)
					}
					if n == counts[0] {
						base = rate
					} else if base > 0 {
						b.ReportMetric(rate/base, "x-vs-10")
					}
				})
			}
		}
	}
}

// watchDeadline bounds one run of BenchmarkWatchers.
const watchDeadline = time.Minute

func runWatchers(b *testing.B, storeName, path string, meetings, total int) float64 {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var store eventstore.Store
	var js jetstream.JetStream
	var stream string
	switch storeName {
	case "memory":
		store = eventstore.NewMemory()
	default:
		emb, err := natsstore.OpenEmbedded(ctx, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer emb.Close()
		store, stream = emb.Store, emb.Store.Stream()
		js, _ = jetstream.New(emb.Conn)
	}
	eng, err := stage.New(store)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	watcher := eng
	if path == "global" {
		if watcher, err = stage.New(globalOnly{store}); err != nil {
			b.Fatal(err)
		}
		defer watcher.Close()
	}
	name := func(i int) string { return fmt.Sprintf("m%05d", i) }
	perMeeting := total / meetings
	setup := make(chan int, meetings)
	for i := range meetings {
		setup <- i
	}
	close(setup)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range setup {
				eng.AddParticipant(ctx, name(i), aggregate.Participant{UserID: "host", Permissions: hostPerms})
				eng.AddParticipant(ctx, name(i), aggregate.Participant{UserID: "viewer", Permissions: viewerPerms})
			}
		})
	}
	wg.Wait()

	heap0, cpu0 := heapInUse(), 0.0
	var delivered atomic.Int64
	var finished sync.WaitGroup
	want := expectedNotes(b, perMeeting)
	for i := range meetings {
		finished.Go(func() {
			got := 0
			for _, err := range watcher.Watch(ctx, name(i), 3) {
				if err != nil {
					return
				}
				delivered.Add(1)
				if got++; got == want {
					return
				}
			}
		})
	}
	if js != nil { // every watcher's consumer is in place
		for deadline := time.Now().Add(watchDeadline); ; {
			// The server may be too busy setting up to answer at once.
			st, err := js.Stream(ctx, stream)
			if err == nil && st.CachedInfo().State.Consumers >= meetings {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d watchers not set up after %v: %v", meetings, watchDeadline, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		heap := heapInUse()
		b.ReportMetric(float64(int64(heap)-int64(heap0))/float64(meetings), "heapB/watcher")
		cpu0 = cpuSeconds()
		t0 := time.Now()
		time.Sleep(time.Second)
		b.ReportMetric(100*(cpuSeconds()-cpu0)/time.Since(t0).Seconds(), "idleCPU%")
	} else {
		time.Sleep(50 * time.Millisecond)
	}

	b.StartTimer()
	start := time.Now()
	var writes sync.WaitGroup
	var failed atomic.Int64
	const writers = 10
	for w := range writers {
		writes.Go(func() {
			for r := range perMeeting {
				for i := w; i < meetings; i += writers {
					var err error
					if r%2 == 0 {
						_, err = eng.RequestAccess(ctx, name(i), "viewer")
					} else {
						_, err = eng.CancelRequestAccess(ctx, name(i), "viewer")
					}
					if err != nil && ctx.Err() == nil {
						// The old path at 1,000 watchers can starve the
						// server until appends time out: that is the
						// result, counted, not a failure of the benchmark.
						if failed.Add(1) == 1 {
							b.Logf("%s/%s/%d: %v", storeName, path, meetings, err)
						}
					}
				}
			}
		})
	}
	writes.Wait()
	wrote := time.Since(start)
	done := make(chan struct{})
	go func() { finished.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(watchDeadline - min(wrote, watchDeadline/2)):
		b.Logf("%s/%s/%d: not done after %v: %d notifications delivered", storeName, path, meetings, time.Since(start).Round(time.Second), delivered.Load())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	finished.Wait()
	rate := float64(delivered.Load()) / elapsed.Seconds()
	b.ReportMetric(rate, "notes/s")
	b.ReportMetric(float64(perMeeting*meetings)/elapsed.Seconds(), "events-delivered/s")
	b.ReportMetric(float64(perMeeting*meetings)/wrote.Seconds(), "commands/s")
	b.ReportMetric(float64((elapsed - wrote).Milliseconds()), "tail-ms")
	b.ReportMetric(float64(failed.Load()), "failed-commands")
	b.ReportMetric(0, "ns/op")
	return rate
}

// expectedNotes is how many notifications a watcher of one meeting of
// BenchmarkWatchers receives from version 3: the meeting played on Memory
// and folded through projections.Notify.
func expectedNotes(b *testing.B, perMeeting int) int {
	ctx := context.Background()
	mem := eventstore.NewMemory()
	eng, err := stage.New(mem)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "host", Permissions: hostPerms})
	eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "viewer", Permissions: viewerPerms})
	for r := range perMeeting {
		if r%2 == 0 {
			_, err = eng.RequestAccess(ctx, "m", "viewer")
		} else {
			_, err = eng.CancelRequestAccess(ctx, "m", "viewer")
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	s, n := aggregate.NewState("m"), 0
	for ev, err := range mem.Load(ctx, "m", 1) {
		if err != nil {
			b.Fatal(err)
		}
		if ev.Version >= 3 {
			n += len(projections.Notify(s, &ev))
		}
		aggregate.Evolve(s, &ev)
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// cpuSeconds is the CPU time the process's Go code (the embedded server's
// included) has used: the runtime's estimate of its busy time.
func cpuSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/cpu/classes/idle:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64() - s[1].Value.Float64()
}
