package peer

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bruth/rita"

	"github.com/productdb/stage"
	"github.com/productdb/stage/bench"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
)

// LoadMembers is the number of participants of the loaded meeting.
const LoadMembers = 100

// loadSubject is the subject of the loaded meeting in rita's stream.
const loadSubject = "RITA." + bench.BigMeeting

// envelopeBytes is one encoded event of a busy meeting (about 400 bytes):
// the data of rita's appends.
func envelopeBytes(b testing.TB) []byte {
	b.Helper()
	evs := bench.MeetingLog(bench.BigMeeting, LoadMembers+4, LoadMembers)
	data, err := events.Marshal(&evs[len(evs)-1])
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// filled is one embedded server (lazy sync) holding the same meeting of
// n events twice: in our store's stream, written by the store's Append,
// and in rita's, written by rita's Append, each event with our encoded
// envelope as its data. It is filled once per process and shared by the
// rounds of the load workloads.
type filled struct {
	*server
	dir string
	n   int
	es  *rita.EventStore
}

var (
	fillMu sync.Mutex
	fills  = map[int]*filled{}
)

// Close shuts the servers of the load workloads down and removes their
// directories (TestMain calls it).
func Close() {
	fillMu.Lock()
	defer fillMu.Unlock()
	for n, f := range fills {
		f.close()
		os.RemoveAll(f.dir)
		delete(fills, n)
	}
}

func fill(b *testing.B, n int) *filled {
	b.Helper()
	fillMu.Lock()
	defer fillMu.Unlock()
	if f, ok := fills[n]; ok {
		return f
	}
	dir, err := os.MkdirTemp("", "stage-bench-peer-")
	if err != nil {
		b.Fatal(err)
	}
	f := &filled{server: startServer(b, dir, bench.LazySync), dir: dir, n: n}
	ctx := context.Background()
	store, err := natsstore.New(ctx, f.nc)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	f.es = ritaStore(b, f.server)
	evs := bench.MeetingLog(bench.BigMeeting, n, LoadMembers)
	const chunk = 100
	var seq uint64
	for i := 0; i < len(evs); i += chunk {
		part := evs[i:min(i+chunk, len(evs))]
		if _, err := store.Append(ctx, bench.BigMeeting, uint64(i), part); err != nil {
			b.Fatal(err)
		}
		batch := make([]*rita.Event, len(part))
		for j := range part {
			data, err := events.Marshal(&part[j])
			if err != nil {
				b.Fatal(err)
			}
			batch[j] = &rita.Event{Type: "stage.event", Data: data}
		}
		if seq, err = f.es.Append(ctx, loadSubject, batch, rita.ExpectSequence(seq)); err != nil {
			b.Fatal(err)
		}
	}
	fills[n] = f
	return f
}

// loads times loads calls of load with b's timer running only meanwhile,
// and reports their mean in ms/load.
func loads(b *testing.B, count int, load func() (time.Duration, error)) {
	b.Helper()
	b.ResetTimer()
	b.StopTimer()
	var total time.Duration
	for range count {
		took, err := load()
		if err != nil {
			b.Fatal(err)
		}
		total += took
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(count), "ms/load")
}

// OursLoad: the cold load of a meeting of n events (bench.MeetingLog) by
// a fresh Engine on a fresh store, snapshots off (stage.WithSnapshotEvery
// 0: neither read nor written): its first read (the host's Status) reads
// every event, checks its hash and folds it. Reports ms/load.
func OursLoad(r Round, n int) func(*testing.B) {
	return func(b *testing.B) {
		f := fill(b, n)
		ctx := context.Background()
		loads(b, r.Loads*b.N, func() (time.Duration, error) {
			store, err := natsstore.New(ctx, f.nc)
			if err != nil {
				return 0, err
			}
			defer store.Close()
			eng, err := stage.New(store, stage.WithAutoTick(false), stage.WithSnapshotEvery(0), stage.WithCacheSize(1))
			if err != nil {
				return 0, err
			}
			defer eng.Close()
			b.StartTimer()
			t := time.Now()
			_, err = eng.Status(ctx, bench.BigMeeting, "host")
			took := time.Since(t)
			b.StopTimer()
			return took, err
		})
	}
}

// OursStoreLoad: the store's Load of the same meeting, every event read
// and decoded (and its hash checked by the store), nothing folded: where
// the cold load's time goes between reading and folding. Reports ms/load.
func OursStoreLoad(r Round, n int) func(*testing.B) {
	return func(b *testing.B) {
		f := fill(b, n)
		ctx := context.Background()
		loads(b, r.Loads*b.N, func() (time.Duration, error) {
			store, err := natsstore.New(ctx, f.nc)
			if err != nil {
				return 0, err
			}
			defer store.Close()
			b.StartTimer()
			t := time.Now()
			got := 0
			for _, err := range store.Load(ctx, bench.BigMeeting, 0) {
				if err != nil {
					b.StopTimer()
					return 0, err
				}
				got++
			}
			took := time.Since(t)
			b.StopTimer()
			if got != f.n {
				return 0, fmt.Errorf("store loaded %d events, want %d", got, f.n)
			}
			return took, nil
		})
	}
}

// RitaLoad: rita's EventStore.Load of the same meeting's n events (its
// last sequence by a direct get, then a pushed ordered consumer on the
// subject, each message unpacked into a rita.Event). Reports ms/load.
func RitaLoad(r Round, n int) func(*testing.B) {
	return func(b *testing.B) {
		f := fill(b, n)
		ctx := context.Background()
		loads(b, r.Loads*b.N, func() (time.Duration, error) {
			b.StartTimer()
			t := time.Now()
			evs, _, err := f.es.Load(ctx, loadSubject)
			took := time.Since(t)
			b.StopTimer()
			if err == nil && len(evs) != f.n {
				err = fmt.Errorf("rita loaded %d events, want %d", len(evs), f.n)
			}
			return took, err
		})
	}
}
