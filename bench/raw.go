// Package bench holds the performance workloads of issue 5: the engine and
// the JetStream store side by side with raw JetStream on the same embedded
// server in the same run. The workloads are functions of *testing.B, run by
// `go test -bench` (bench_test.go) and by the table program
// (bench/cmd/benchtable), which prints workload, ours, raw and ratio.
package bench

import (
	"context"
	"crypto/rand"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// PayloadSize is the size of a raw message, about that of an encoded event.
const PayloadSize = 300

func payload() []byte {
	p := make([]byte, PayloadSize)
	rand.Read(p)
	return p
}

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

// Latency collects per-operation latencies for percentiles.
type Latency struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *Latency) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// report adds p50 and p99 latency metrics (in microseconds) to b.
func (l *Latency) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), "p99-us")
}

// runCallers runs b.N operations split over callers goroutines; op gets the
// caller index and the operation's index within that caller.
func runCallers(b *testing.B, callers int, op func(caller, i int) error) *Latency {
	var lat Latency
	b.ResetTimer()
	err := runOps(callers, b.N, &lat, func(c, i, _ int) error { return op(c, i) })
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	return &lat
}

// runOps runs n operations over callers goroutines, recording each one's
// latency in lat; op gets the caller index, the operation's index within
// that caller and its index among all n. It returns the first error, once
// every goroutine has stopped.
func runOps(callers, n int, lat *Latency, op func(caller, i, all int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				all := next.Add(1) - 1
				if all >= int64(n) {
					return
				}
				t := time.Now()
				if err := op(c, i, int(all)); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				lat.add(time.Since(t))
			}
		}()
	}
	wg.Wait()
	err, _ := failed.Load().(error)
	return err
}

func perSecond(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), unit)
}

// RawGuardedPublish: synchronous publishes, each guarded by the expected
// last sequence of its subject (what an event store must do), callers
// goroutines over meetings subjects, each caller on its own subjects.
func RawGuardedPublish(callers, meetings int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		e := startEnv(b, sync)
		defer e.close()
		js, _ := jetstream.New(e.nc)
		rawStream(b, js)
		data := payload()
		last := make([]uint64, meetings) // caller c owns the subjects i with i%callers == c
		perCaller := max(meetings/callers, 1)
		ctx := context.Background()
		lat := runCallers(b, callers, func(c, i int) error {
			m := (c + (i%perCaller)*callers) % meetings
			ack, err := js.Publish(ctx, subject("raw", m), data, jetstream.WithExpectLastSequencePerSubject(last[m]))
			if err != nil {
				return err
			}
			last[m] = ack.Sequence
			return nil
		})
		perSecond(b, b.N, "msgs/s")
		lat.report(b)
	}
}

// RawAsyncPublish: asynchronous publishes (no guard), as fast as the
// client's window allows, on meetings subjects.
func RawAsyncPublish(meetings int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		e := startEnv(b, sync)
		defer e.close()
		js, _ := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
		rawStream(b, js)
		data := payload()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := js.PublishAsync(subject("raw", i%meetings), data, jetstream.WithStallWait(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("async publishes not acknowledged within a minute")
		}
		b.StopTimer()
		perSecond(b, b.N, "msgs/s")
	}
}

// RawAtomicBatch: atomic batches of size messages, each on its own subject
// with its own expected-last-subject-sequence guard (a group commit).
func RawAtomicBatch(size int, sync Sync) func(*testing.B) {
	return func(b *testing.B) {
		e := startEnv(b, sync)
		defer e.close()
		js, _ := jetstream.New(e.nc)
		rawStream(b, js)
		data := payload()
		last := make([]uint64, size)
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			msgs := make([]*nats.Msg, size)
			for j := range msgs {
				msgs[j] = nats.NewMsg(subject("raw", j))
				msgs[j].Data = data
				msgs[j].Header.Set(jetstream.ExpectedLastSubjSeqHeader, uitoa(last[j]))
			}
			ack, err := jetstreamext.PublishMsgBatch(ctx, js, msgs)
			if err != nil {
				b.Fatal(err)
			}
			for j := range last {
				last[j] = ack.Sequence - uint64(size-1-j)
			}
		}
		b.StopTimer()
		perSecond(b, b.N, "batches/s")
		perSecond(b, b.N*size, "msgs/s")
	}
}

func uitoa(v uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(buf[i:])
		}
	}
}
