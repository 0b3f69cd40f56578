package stage_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
	"github.com/productdb/stage/projections"
)

// readCounter is a Memory store that counts, per meeting, the events its
// reads hand out.
type readCounter struct {
	*eventstore.Memory
	mu   sync.Mutex
	read map[string]int
}

func newReadCounter() *readCounter {
	return &readCounter{Memory: eventstore.NewMemory(), read: map[string]int{}}
}

func (r *readCounter) count(seq iter.Seq2[events.Envelope, error]) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		for e, err := range seq {
			if err == nil {
				r.mu.Lock()
				r.read[e.MeetingID]++
				r.mu.Unlock()
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func (r *readCounter) reads(meeting string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read[meeting]
}

func (r *readCounter) Load(ctx context.Context, m string, from uint64) iter.Seq2[events.Envelope, error] {
	return r.count(r.Memory.Load(ctx, m, from))
}

func (r *readCounter) ReadAll(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error] {
	return r.count(r.Memory.ReadAll(ctx, from))
}

func (r *readCounter) Subscribe(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error] {
	return r.count(r.Memory.Subscribe(ctx, from))
}

func (r *readCounter) SubscribeMeeting(ctx context.Context, m string, from uint64) iter.Seq2[events.Envelope, error] {
	return r.count(r.Memory.SubscribeMeeting(ctx, m, from))
}

// globalOnly hides a store's optional interfaces: Watch takes its fallback
// path, following the whole log.
type globalOnly struct{ eventstore.Store }

var (
	hostPerms   = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewerPerms = aggregate.Permissions{StageAccess: aggregate.CanRequest}
)

// watchInto runs Watch in a goroutine: notifications (but Live) on the
// first channel, the error that ended it (nil when the sequence just ended)
// on the second. It returns once the watch is live (or has ended): a
// command issued then is notified.
func watchInto(ctx context.Context, eng *stage.Engine, meeting string, from uint64) (<-chan projections.Notification, <-chan error) {
	got := make(chan projections.Notification, 1000)
	ended := make(chan error, 1)
	live := make(chan struct{})
	go func() {
		defer func() {
			select {
			case <-live:
			default:
				close(live)
			}
		}()
		for n, err := range eng.Watch(ctx, meeting, from) {
			if err != nil {
				ended <- err
				return
			}
			if n.Type == projections.Live {
				close(live)
			} else {
				got <- n
			}
		}
		ended <- nil
	}()
	<-live
	return got, ended
}

// awaitVersion reads notifications until one of version v, failing on
// one of another meeting or past v.
func awaitVersion(t *testing.T, got <-chan projections.Notification, ended <-chan error, meeting string, v uint64) {
	t.Helper()
	for {
		select {
		case n := <-got:
			if n.MeetingID != meeting || n.Version > v {
				t.Fatalf("notification of %s version %d while waiting for %s version %d", n.MeetingID, n.Version, meeting, v)
			}
			if n.Version == v {
				return
			}
		case err := <-ended:
			t.Fatalf("Watch ended with %v, waiting for version %d", err, v)
		case <-time.After(time.Minute):
			t.Fatalf("waited for %s version %d", meeting, v)
		}
	}
}

// TestEngine_WatchReadsOnlyItsMeeting: a watcher of meeting A, from before
// A exists and from a later version, never reads meeting B's events, while
// the fallback path (a store without per-meeting subscriptions) reads them
// all and still notifies the same.
func TestEngine_WatchReadsOnlyItsMeeting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := newReadCounter()
	eng, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	fallback, err := stage.New(globalOnly{store})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		eng.AddParticipant(ctx, "b", aggregate.Participant{UserID: fmt.Sprint("v", i), Permissions: viewerPerms})
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	got, ended := watchInto(wctx, eng, "a", 0) // a has no events yet
	oldGot, oldEnded := watchInto(wctx, fallback, "a", 0)
	eng.AddParticipant(ctx, "a", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
	eng.AddParticipant(ctx, "a", aggregate.Participant{UserID: "bob", Permissions: viewerPerms})
	for i := range 20 {
		eng.RequestAccess(ctx, "b", fmt.Sprint("v", i))
	}
	res, err := eng.RequestAccess(ctx, "a", "bob")
	if err != nil {
		t.Fatal(err)
	}
	awaitVersion(t, got, ended, "a", res.Version)
	awaitVersion(t, oldGot, oldEnded, "a", res.Version)
	if n := store.reads("b"); n == 0 {
		t.Fatal("the fallback watcher read none of b's events: the counter counts nothing")
	}
	stop()
	<-ended
	<-oldEnded

	// Without the fallback watcher, from a later version, with b busy.
	before := store.reads("b")
	wctx, stop = context.WithCancel(ctx)
	defer stop()
	got, ended = watchInto(wctx, eng, "a", res.Version+1)
	for i := range 20 {
		eng.CancelRequestAccess(ctx, "b", fmt.Sprint("v", i))
	}
	res, err = eng.CancelRequestAccess(ctx, "a", "bob")
	if err != nil {
		t.Fatal(err)
	}
	awaitVersion(t, got, ended, "a", res.Version)
	if n := store.reads("b") - before; n != 0 {
		t.Errorf("a watcher of meeting a read %d events of meeting b", n)
	}
}

// TestEngine_WatchResume_jetstream: notifications up to version v, then a
// new Watch from v+1, on the embedded JetStream store, live and resumed,
// with the other meeting busy meanwhile.
func TestEngine_WatchResume_jetstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob", Permissions: viewerPerms})
	eng.AddParticipant(ctx, "other", aggregate.Participant{UserID: "zed", Permissions: viewerPerms})

	wctx, stop := context.WithCancel(ctx)
	got, ended := watchInto(wctx, eng, "w", 1)
	r1, _ := eng.RequestAccess(ctx, "w", "bob")
	eng.RequestAccess(ctx, "other", "zed")
	awaitVersion(t, got, ended, "w", r1.Version)
	stop()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch ended with %v", err)
	}

	r2, _ := eng.CancelRequestAccess(ctx, "w", "bob") // while nobody watches
	wctx, stop = context.WithCancel(ctx)
	defer stop()
	got, ended = watchInto(wctx, eng, "w", r1.Version+1)
	eng.CancelRequestAccess(ctx, "other", "zed")
	r3, _ := eng.RequestAccess(ctx, "w", "bob") // live
	var versions []uint64
	for len(versions) == 0 || versions[len(versions)-1] != r3.Version {
		select {
		case n := <-got:
			if n.MeetingID != "w" {
				t.Fatalf("notification of meeting %s", n.MeetingID)
			}
			if len(versions) == 0 || versions[len(versions)-1] != n.Version {
				versions = append(versions, n.Version)
			}
		case err := <-ended:
			t.Fatalf("Watch ended with %v", err)
		case <-ctx.Done():
			t.Fatalf("waited for version %d, got %v", r3.Version, versions)
		}
	}
	if want := []uint64{r2.Version, r3.Version}; fmt.Sprint(versions) != fmt.Sprint(want) {
		t.Errorf("resumed from %d: notifications of versions %v, want %v", r1.Version+1, versions, want)
	}
}

// TestEngine_WatchCorrupt_jetstream: an event published around the store,
// at the watched meeting's next version but not linked to its last event,
// ends Watch with an error wrapping eventstore.ErrCorrupt.
func TestEngine_WatchCorrupt_jetstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: hostPerms})
	got, ended := watchInto(ctx, eng, "w", 0)
	bad := storetest.Event("w", res.Version+1, events.Hash{7}) // sealed, but linked to nothing
	data, _ := events.Marshal(&bad)
	js, _ := jetstream.New(emb.Conn)
	ack, err := js.Publish(ctx, emb.Store.Subject("w"), data)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		t.Fatalf("notified %+v of a corrupt event", n)
	case err := <-ended:
		var ce *eventstore.CorruptError
		if !errors.As(err, &ce) || ce.Seq != ack.Sequence {
			t.Fatalf("Watch ended with %v, want a CorruptError at sequence %d", err, ack.Sequence)
		}
	case <-ctx.Done():
		t.Fatal("Watch went on after a corrupt event")
	}
}
