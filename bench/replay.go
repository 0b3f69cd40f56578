package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
)

// A filled stream is shared by the workloads that read it (ours and raw),
// built once per process for each size: the comparison is over the same
// stream on the same server in the same run.
var (
	filledMu sync.Mutex
	filled   = map[[2]int]*filledStream{}
)

type filledStream struct {
	*env
	store *natsstore.Store
	n     int
}

// closeFilled shuts down the shared servers (TestMain calls it).
func closeFilled() {
	filledMu.Lock()
	defer filledMu.Unlock()
	for k, f := range filled {
		f.store.Close()
		f.close()
		os.RemoveAll(f.srv.Dir())
		delete(filled, k)
	}
}

// fillStream returns the embedded server holding n legal events over
// meetings meetings (a host and a viewer, then the request-grant-join-leave
// cycle), published asynchronously in the engine's wire format, with a
// bounded number in flight and every acknowledgement checked.
func fillStream(b *testing.B, n, meetings int) *filledStream {
	filledMu.Lock()
	defer filledMu.Unlock()
	if f, ok := filled[[2]int{n, meetings}]; ok {
		return f
	}
	dir, err := os.MkdirTemp("", "stage-bench-replay-")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		b.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		b.Fatal(err)
	}
	store, err := natsstore.New(context.Background(), nc)
	if err != nil {
		b.Fatal(err)
	}
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	pub := newFiller(js, 2048) // below the client's limit: no stall
	ctx := context.Background()
	states := make([]*aggregate.State, meetings)
	for i := range states {
		states[i] = aggregate.NewState(meetingName(i))
	}
	cmds := Cycle("viewer")
	t0 := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	for i := range n {
		m := i % meetings
		s := states[m]
		var c aggregate.Command
		switch v := s.Version(); v {
		case 0:
			c = aggregate.Command{Action: aggregate.AddParticipant{Participant: hostP}}
		case 1:
			c = aggregate.Command{Action: aggregate.AddParticipant{Participant: viewerP("viewer")}}
		default:
			c = cmds[(v-2)%uint64(len(cmds))]
		}
		c.ID = fmt.Sprintf("c%d", i)
		d, err := aggregate.Decide(s, c, t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		e := &d.Events[0]
		e.ID = newID(i)
		if err := e.Seal(s.LastHash()); err != nil {
			b.Fatal(err)
		}
		data, err := events.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.publish(ctx, store.Subject(s.MeetingID()), data); err != nil {
			b.Fatal(err)
		}
		aggregate.Evolve(s, e)
	}
	if err := pub.flush(ctx); err != nil {
		b.Fatal(err)
	}
	f := &filledStream{env: &env{srv: srv, nc: nc}, store: store, n: n}
	filled[[2]int{n, meetings}] = f
	return f
}

// replaySize is the stream the replay workloads read: 1M events over 10k
// meetings (20k over 200 with -short).
func replaySize() (n, meetings int) {
	if testing.Short() {
		return 20_000, 200
	}
	return 1_000_000, 10_000
}

// OursReplay folds the whole stream into every meeting's state and roster,
// through the store's ReadAll (decoding, hash and chain checks included);
// one b.N iteration is one whole replay.
func OursReplay(b *testing.B) {
	n, meetings := replaySize()
	f := fillStream(b, n, meetings)
	b.ResetTimer()
	for range b.N {
		foldPass(b, f, n)
	}
	b.StopTimer()
	perSecond(b, b.N*n, "events/s")
}

// RawReplay reads the same stream with an ordered consumer, decoding nothing.
func RawReplay(b *testing.B) {
	n, meetings := replaySize()
	f := fillStream(b, n, meetings)
	b.ResetTimer()
	for range b.N {
		rawPass(b, f, n)
	}
	b.StopTimer()
	perSecond(b, b.N*n, "events/s")
}

// foldPass folds the whole stream into every meeting's state and roster
// through the store's ReadAll, and checks it read n events.
func foldPass(b *testing.B, f *filledStream, n int) {
	ctx := context.Background()
	states := map[string]*aggregate.State{}
	got := 0
	for e, err := range f.store.ReadAll(ctx, 1) {
		if err != nil {
			b.Fatal(err)
		}
		s := states[e.MeetingID]
		if s == nil {
			s = aggregate.NewState(e.MeetingID)
			states[e.MeetingID] = s
		}
		aggregate.Evolve(s, &e)
		got++
	}
	for _, s := range states {
		_ = projections.RosterOf(s)
	}
	if got != n {
		b.Fatalf("replayed %d events, want %d", got, n)
	}
}

// rawPass reads the n messages of the stream with an ordered consumer,
// decoding nothing.
func rawPass(b *testing.B, f *filledStream, n int) {
	ctx := context.Background()
	js, _ := jetstream.New(f.nc)
	cons, err := js.OrderedConsumer(ctx, f.store.Stream(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		if _, err := msgs.Next(); err != nil {
			b.Fatal(err)
		}
	}
	msgs.Stop()
}

// newID returns a deterministic, distinct event id for filler event i.
func newID(i int) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	id[6] = 0x70 // version 7
	id[8] |= 0x80
	return id
}
