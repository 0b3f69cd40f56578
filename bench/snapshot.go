package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
)

// BigMeeting is the meeting of the cold-load workloads.
const BigMeeting = "big"

// MeetingLog returns the first n events of a busy meeting, decided and
// sealed as the engine would: a host and members-1 viewers join, then the
// viewers in turn request, are granted, join the stage and leave it.
func MeetingLog(meeting string, n, members int) []events.Envelope {
	out := make([]events.Envelope, 0, n)
	do := decider(meeting, &out)
	viewer := func(i int) string { return fmt.Sprintf("viewer-%05d", i) }
	do(aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "host",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}}})
	for i := 1; i < members && len(out) < n; i++ {
		do(aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: viewer(i),
			Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}}})
	}
	for i := 0; len(out) < n; i++ {
		v := viewer(1 + i%max(members-1, 1))
		for _, c := range Cycle(v) {
			if len(out) < n {
				do(c)
			}
		}
	}
	return out
}

// decider returns a function that decides a command on meeting's state
// (one millisecond after the previous one), seals its events as the engine
// would, applies them and appends them to *out; it panics on a rejection.
func decider(meeting string, out *[]events.Envelope) func(aggregate.Command) {
	s := aggregate.NewState(meeting)
	t := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	return func(c aggregate.Command) {
		c.ID = uuid.NewString()
		t = t.Add(time.Millisecond)
		d, err := aggregate.Decide(s, c, t)
		if err != nil {
			panic(fmt.Sprintf("bench: %s by %s: %v", c.Action.Name(), c.Actor, err))
		}
		for i := range d.Events {
			e := &d.Events[i]
			e.ID = uuid.Must(uuid.NewV7())
			if err := e.Seal(s.LastHash()); err != nil {
				panic(err)
			}
			aggregate.Evolve(s, e)
			*out = append(*out, *e)
		}
	}
}

// publishEvents stores sealed events, in order, with asynchronous publishes
// on the store's subjects: a fast fill, the same messages Append writes.
func publishEvents(b testing.TB, js jetstream.JetStream, store *natsstore.Store, evs []events.Envelope) {
	b.Helper()
	for i := range evs {
		data, err := events.Marshal(&evs[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: store.Subject(evs[i].MeetingID), Data: data}); err != nil {
			b.Fatal(err)
		}
		if i%10_000 == 9_999 || i == len(evs)-1 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("fill not acknowledged")
			}
		}
	}
}

// LiveLog returns the log of a large live meeting, decided and sealed as
// the engine would: a host and participants-1 viewers enter, then the first
// queue viewers raise their hands (a request queue of queue).
func LiveLog(meeting string, participants, queue int) []events.Envelope {
	out := make([]events.Envelope, 0, participants+queue)
	do := decider(meeting, &out)
	viewer := func(i int) string { return fmt.Sprintf("viewer-%06d", i) }
	do(aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "host",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}}})
	for i := 1; i < participants; i++ {
		do(aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: viewer(i),
			Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}}})
	}
	for i := 1; i <= queue && i < participants; i++ {
		do(aggregate.Command{Actor: viewer(i), Action: aggregate.RequestAccess{}})
	}
	return out
}

// ColdLoad: the first read (Status) of a fresh Engine on a fresh store, as
// after a restart, of a live meeting (LiveLog) of participants participants
// and a request queue of queue, on embedded JetStream (lazy sync). With
// snapshots, the meeting's latest snapshot is 500 events behind its head
// (the average lag of snapshots every 1,000 events; one written on
// eviction, Close or idle is at the head); without, the whole log is
// folded. Reports ms/load; with snapshots also, from the same run, the
// fold of the whole log (fold-ms/load), their ratio (x-fold), the bytes
// the store keeps for the snapshot (snapshot-B, 0 when it could not store
// one) and the heap the cached meeting holds per participant, loaded from
// the snapshot (B/participant) and folded (fold-B/participant).
func ColdLoad(participants, queue int, snapshots bool) func(*testing.B) {
	return func(b *testing.B) {
		e := startEnv(b, LazySync)
		defer e.close()
		js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		fill, err := natsstore.New(ctx, e.nc)
		if err != nil {
			b.Fatal(err)
		}
		defer fill.Close()
		evs := LiveLog(BigMeeting, participants, queue)
		n := len(evs)
		lag := 0
		if snapshots {
			lag = min(500, n-1)
		}
		publishEvents(b, js, fill, evs[:n-lag])
		if !snapshots {
			coldLoads(b, e.nc, BigMeeting, "host", 0)
			return
		}
		// A cold fold writes the snapshot (every 1,000 events), if the store
		// can keep it.
		eng, err := stage.New(fill, stage.WithAutoTick(false), stage.WithSnapshotEvery(1000))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.Status(ctx, BigMeeting, "host"); err != nil {
			b.Fatal(err)
		}
		eng.Close()
		size := snapshotBytes(b, js, fill)
		publishEvents(b, js, fill, evs[n-lag:])
		const folds = 3
		var fold []time.Duration
		for range folds {
			fold = append(fold, coldLoad(b, e.nc, BigMeeting, "host", 0, nil))
		}
		slices.Sort(fold)
		load := coldLoads(b, e.nc, BigMeeting, "host", 1000)
		foldMs := float64(fold[folds/2].Microseconds()) / 1000
		b.ReportMetric(foldMs, "fold-ms/load")
		b.ReportMetric(load/foldMs, "x-fold")
		b.ReportMetric(float64(size), "snapshot-B")
		var held uint64
		coldLoad(b, e.nc, BigMeeting, "host", 1000, &held)
		b.ReportMetric(float64(held)/float64(participants), "B/participant")
		coldLoad(b, e.nc, BigMeeting, "host", 0, &held)
		b.ReportMetric(float64(held)/float64(participants), "fold-B/participant")
	}
}

// snapshotBytes returns the bytes the store keeps for BigMeeting's
// snapshot: the value of its key, and the objects of the large-snapshot
// bucket (there is one at most); 0 when it has none.
func snapshotBytes(b *testing.B, js jetstream.JetStream, st *natsstore.Store) int {
	ctx := context.Background()
	bucket := natsstore.SnapshotBucket(natsstore.DefaultStream)
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		b.Fatal(err)
	}
	entry, err := kv.Get(ctx, BigMeeting)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0
	}
	if err != nil {
		b.Fatal(err)
	}
	size := len(entry.Value())
	if obs, err := js.ObjectStore(ctx, bucket+"_OBJ"); err == nil {
		if list, err := obs.List(ctx); err == nil {
			for _, o := range list {
				size += int(o.Size)
			}
		}
	}
	return size
}

// ColdLoadInStream: the cold load of one meeting in the stream of n events
// over meetings meetings that the replay workloads read (fillStream: each
// meeting's events interleaved with the others', as live meetings write
// them). Compare a large stream with a small one of as many events per
// meeting: a meeting's load should not grow with the stream. With
// snapshots, the meeting has one at its last event; without, its events
// are read from the first.
func ColdLoadInStream(n, meetings int, snapshots bool) func(*testing.B) {
	return func(b *testing.B) {
		f := fillStream(b, n, meetings)
		ctx := context.Background()
		every := 0
		if snapshots {
			every = n / meetings // the meeting's length: one snapshot at its head
			eng, err := stage.New(f.store, stage.WithAutoTick(false), stage.WithSnapshotEvery(every))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := eng.Status(ctx, coldMeeting(meetings), "host"); err != nil {
				b.Fatal(err)
			}
			eng.Close()
		}
		coldLoads(b, f.nc, coldMeeting(meetings), "host", every)
	}
}

// ColdLoadDefault: ColdLoadInStream with no configuration. With crash
// false, an Engine with the default options reads the meeting once and
// closes (writing its snapshot, as it does on Close for a meeting
// SnapshotPastMin events past its latest one). With crash true, it reads
// the meeting, writes one command to it (which snapshots a meeting it had
// to fold) and is never closed nor idle long enough to snapshot on its
// own: what the next Engine finds after this one was killed. Then fresh
// Engines with the default options load the meeting.
func ColdLoadDefault(n, meetings int, crash bool) func(*testing.B) {
	return func(b *testing.B) {
		f := fillStream(b, n, meetings)
		ctx := context.Background()
		eng, err := stage.New(f.store, stage.WithAutoTick(false))
		if err != nil {
			b.Fatal(err)
		}
		m := coldMeeting(meetings)
		if crash {
			// The stream is shared: coldMeeting may have a snapshot by now.
			m = meetingName((meetings/2 + 1) % meetings)
		}
		if _, err := eng.Status(ctx, m, "host"); err != nil {
			b.Fatal(err)
		}
		if !crash {
			eng.Close()
			coldLoads(b, f.nc, m, "host", stage.DefaultSnapshotEvery)
			return
		}
		defer eng.Close() // after the loads: a Close now would write the snapshot
		r, err := eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "late", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}})
		if err != nil {
			b.Fatal(err)
		}
		// The snapshot is written in the background: wait for it, as a
		// crash a moment later would have found it.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			snap, found, err := f.store.LoadSnapshot(ctx, m)
			if err != nil {
				b.Fatal(err)
			}
			if found && snap.Version == r.Version {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("no snapshot of %s at version %d after its first write", m, r.Version)
			}
		}
		coldLoads(b, f.nc, m, "host", stage.DefaultSnapshotEvery)
	}
}

// coldMeeting is the meeting of a filled stream that ColdLoadInStream loads.
func coldMeeting(meetings int) string { return meetingName(meetings / 2) }

// coldLoads times b.N first reads (user's status in meeting) by a fresh
// Engine, snapshotting every so many events, on a fresh store, and
// reports and returns their mean in ms.
func coldLoads(b *testing.B, nc *nats.Conn, meeting, user string, every int) float64 {
	var total time.Duration
	loads := 0
	for b.Loop() {
		total += coldLoad(b, nc, meeting, user, every, nil)
		loads++
	}
	ms := float64(total.Microseconds()) / 1000 / float64(loads)
	b.ReportMetric(ms, "ms/load")
	return ms
}

// coldLoad times one first read by a fresh Engine on a fresh store. With
// held, it sets *held to the heap the Engine holds after the read, once
// collected (runtime.MemStats before and after).
func coldLoad(b *testing.B, nc *nats.Conn, meeting, user string, every int, held *uint64) time.Duration {
	ctx := context.Background()
	b.StopTimer()
	store, err := natsstore.New(ctx, nc)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := stage.New(store, stage.WithAutoTick(false), stage.WithSnapshotEvery(every), stage.WithCacheSize(1))
	if err != nil {
		b.Fatal(err)
	}
	var before runtime.MemStats
	if held != nil {
		runtime.GC()
		runtime.ReadMemStats(&before)
	}
	b.StartTimer()
	start := time.Now()
	if _, err := eng.Status(ctx, meeting, user); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.StopTimer()
	if held != nil {
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		*held = after.HeapAlloc - min(before.HeapAlloc, after.HeapAlloc)
		runtime.KeepAlive(eng)
	}
	eng.Close()
	store.Close()
	b.StartTimer()
	return took
}
