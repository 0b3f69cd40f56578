// Package peer benchmarks the engine against a peer, bruth/rita (event
// sourcing on JetStream with a guarded publish per event), and against raw
// guarded publishes, side by side on the same kind of embedded server in
// the same run. It is a module of its own (bench/peer/go.mod), so that the
// main module and its CI never need rita's source, which fetch-rita.sh puts
// in the git-ignored rita/ directory; see README.md.
//
// Every workload here is one whole round of fixed size (the callers
// workloads run Cmds commands, the load workload Loads loads), so that
// `go test -bench Peer -benchtime 1x` runs five interleaved rounds:
// ours, raw, rita, ours, raw, rita, ...; cmd/peertable takes their medians.
package peer

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bruth/rita"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/bench"
	"github.com/productdb/stage/eventstore/natsstore"
)

// Sync is bench.Sync: the durability mode of the embedded server.
type Sync = bench.Sync

// Round is the size of one round of a workload.
type Round struct {
	// Cmds is the number of commands (events) of one callers workload.
	Cmds int
	// Loads is the number of loads of one load workload.
	Loads int
}

// server is an embedded nats-server (the library's own embedded default,
// as the bench package starts it) and a connection to it.
type server struct {
	srv *natsstore.Server
	nc  *nats.Conn
}

func startServer(b testing.TB, dir string, sync Sync) *server {
	b.Helper()
	var opts []natsstore.ServerOption
	if sync == bench.LazySync {
		opts = append(opts, natsstore.WithLazySync())
	}
	srv, err := natsstore.StartServer(dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		b.Fatal(err)
	}
	return &server{srv: srv, nc: nc}
}

func (s *server) close() {
	s.nc.Close()
	s.srv.Shutdown()
}

// meetingName is the name bench.Populate gives meeting i.
func meetingName(i int) string { return fmt.Sprintf("m%06d", i) }

// ownMeeting is the meeting of caller c's i-th operation, as in the bench
// package: each caller owns the meetings m with m%callers == c.
func ownMeeting(c, i, callers, meetings int) int {
	perCaller := max(meetings/callers, 1)
	return (c + (i%perCaller)*callers) % meetings
}

// timing is what one round measured: wall time, the process's CPU time
// (user + system, the embedded server included) and each operation's
// latency.
type timing struct {
	wall, cpu time.Duration
	lat       []time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runCallers runs n operations over callers goroutines (op gets the caller
// and the operation's index within that caller), timing them with b's
// timer running only meanwhile.
func runCallers(b *testing.B, callers, n int, op func(c, i int) error) timing {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	lats := make([][]time.Duration, callers)
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if next.Add(1) > int64(n) {
					return
				}
				t := time.Now()
				if err := op(c, i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				lats[c] = append(lats[c], time.Since(t))
			}
		}()
	}
	wg.Wait()
	t := timing{wall: time.Since(t0), cpu: cpuTime() - cpu0}
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	t.lat = slices.Concat(lats...)
	return t
}

// report adds the round's metrics to b: unit per second, p50 and p99
// latency in microseconds, the cores the process used (CPU time over wall
// time; the machine has 2) and the CPU time per operation in
// microseconds (the embedded server's included).
func (t timing) report(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)/t.wall.Seconds(), unit)
	if len(t.lat) > 0 {
		slices.Sort(t.lat)
		b.ReportMetric(float64(t.lat[len(t.lat)/2].Microseconds()), "p50-us")
		b.ReportMetric(float64(t.lat[len(t.lat)*99/100].Microseconds()), "p99-us")
	}
	b.ReportMetric(t.cpu.Seconds()/t.wall.Seconds(), "cores")
	b.ReportMetric(float64(t.cpu.Microseconds())/float64(n), "cpu-us/op")
}

// Ours: the Engine on the JetStream store, callers goroutines over
// meetings meetings, each caller on its own meetings, running bench.Cycle
// (request, grant, join, leave: every command accepted, one event each) on
// meetings bench.Populate filled with a host and a viewer: the workload of
// BenchmarkOurs/guarded in the bench package, with sync before ack on the
// store's group commit as there (what OpenEmbedded does).
func Ours(r Round, callers, meetings int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		n := r.Cmds * b.N
		s := startServer(b, b.TempDir(), sync)
		defer s.close()
		ctx := context.Background()
		var sopts []natsstore.Option
		if sync == bench.SyncAlways {
			sopts = append(sopts, natsstore.WithGroupCommit(natsstore.DefaultGroupMin))
		}
		store, err := natsstore.New(ctx, s.nc, sopts...)
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		eng, err := stage.New(store)
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		bench.Populate(b, eng, meetings)
		cmds := bench.Cycle("viewer")
		step := make([]int, meetings)
		t := runCallers(b, callers, n, func(c, i int) error {
			m := ownMeeting(c, i, callers, meetings)
			cmd := cmds[step[m]%len(cmds)]
			step[m]++
			_, err := eng.Execute(ctx, meetingName(m), cmd)
			return err
		})
		t.report(b, n, "cmds/s")
	}
}

// rawStream creates the stream of the raw workloads, configured as the
// bench package's.
func rawStream(b testing.TB, js jetstream.JetStream) {
	b.Helper()
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage,
		AllowAtomicPublish: true, AllowDirect: true, DenyDelete: true, DenyPurge: true,
	})
	if err != nil {
		b.Fatal(err)
	}
}

func payload() []byte {
	p := make([]byte, bench.PayloadSize)
	rand.Read(p)
	return p
}

// Raw: synchronous publishes, each guarded by the expected last sequence
// of its subject, callers goroutines over meetings subjects, each caller on
// its own subjects: BenchmarkRaw/guarded of the bench package.
func Raw(r Round, callers, meetings int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		n := r.Cmds * b.N
		s := startServer(b, b.TempDir(), sync)
		defer s.close()
		js, err := jetstream.New(s.nc)
		if err != nil {
			b.Fatal(err)
		}
		rawStream(b, js)
		data := payload()
		last := make([]uint64, meetings)
		ctx := context.Background()
		t := runCallers(b, callers, n, func(c, i int) error {
			m := ownMeeting(c, i, callers, meetings)
			ack, err := js.Publish(ctx, fmt.Sprintf("raw.%s", meetingName(m)), data,
				jetstream.WithExpectLastSequencePerSubject(last[m]))
			if err != nil {
				return err
			}
			last[m] = ack.Sequence
			return nil
		})
		t.report(b, n, "msgs/s")
	}
}

// ritaStore is rita's event store on s, on a stream of its own (file
// storage, subjects RITA.>).
func ritaStore(b testing.TB, s *server) *rita.EventStore {
	b.Helper()
	rt, err := rita.New(s.nc)
	if err != nil {
		b.Fatal(err)
	}
	es := rt.EventStore("RITA")
	if err := es.Create(&nats.StreamConfig{Storage: nats.FileStorage}); err != nil {
		b.Fatal(err)
	}
	return es
}

// ritaEvent is the event rita appends: our encoded envelope's bytes as
// its data (rita's binary codec, no type registry), so both sides store
// messages of the same size; rita adds its own headers (a message ID, the
// type, the time and the codec).
func ritaEvent(data []byte) []*rita.Event {
	return []*rita.Event{{Type: "stage.event", Data: data}}
}

// Rita: rita's EventStore.Append of one event with the expected sequence
// of its meeting's subject (rita.ExpectSequence), callers goroutines over
// meetings subjects, each caller on its own meetings, as Ours and Raw.
func Rita(r Round, callers, meetings int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		n := r.Cmds * b.N
		s := startServer(b, b.TempDir(), sync)
		defer s.close()
		es := ritaStore(b, s)
		data := envelopeBytes(b)
		last := make([]uint64, meetings)
		ctx := context.Background()
		t := runCallers(b, callers, n, func(c, i int) error {
			m := ownMeeting(c, i, callers, meetings)
			seq, err := es.Append(ctx, "RITA."+meetingName(m), ritaEvent(data), rita.ExpectSequence(last[m]))
			if err != nil {
				return err
			}
			last[m] = seq
			return nil
		})
		t.report(b, n, "cmds/s")
	}
}
