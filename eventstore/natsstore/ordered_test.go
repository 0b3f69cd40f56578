package natsstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// appendN appends n events of c, in atomic batches the store accepts.
func appendN(t *testing.T, s *natsstore.Store, c *storetest.Chain, n int) []events.Envelope {
	t.Helper()
	var out []events.Envelope
	for n > 0 {
		k := min(n, natsstore.MaxBatch)
		v := c.Version
		evs := c.Next(k)
		if _, err := s.Append(ctx(t), c.MeetingID, v, evs); err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		n -= k
	}
	return out
}

func consumers(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	st, err := js.Stream(ctx(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

func TestReadOrdered(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	s := newStore(t, nc, uniqueStream()...)
	js, _ := jetstream.New(nc)
	a := appendN(t, s, storetest.NewChain("a"), 700)
	b := appendN(t, s, storetest.NewChain("b"), 300)
	ack, err := js.Publish(ctx(t), s.Subject("c"), []byte("not an event"))
	if err != nil {
		t.Fatal(err)
	}
	junk := ack.Sequence
	a = append(a, appendN(t, s, &storetest.Chain{MeetingID: "a", Version: 700, Last: a[699].Hash}, 300)...)
	total := uint64(len(a) + len(b) + 1)

	byID := map[string]events.Envelope{}
	for _, e := range append(append([]events.Envelope(nil), a...), b...) {
		byID[e.ID.String()] = e
	}
	read := func(r natsstore.OrderedRead) ([]natsstore.OrderedMsg, error) {
		t.Helper()
		r.Stream = s.Stream()
		var got []natsstore.OrderedMsg
		for m, err := range natsstore.ReadOrdered(ctx(t), js, r) {
			if err != nil {
				return got, err
			}
			got = append(got, m)
		}
		return got, nil
	}

	for _, workers := range []int{1, 3, 0} {
		got, err := read(natsstore.OrderedRead{To: total, Workers: workers})
		if err != nil {
			t.Fatalf("workers=%d: %v", workers, err)
		}
		if uint64(len(got)) != total {
			t.Fatalf("workers=%d: read %d messages, want %d", workers, len(got), total)
		}
		for i, m := range got {
			if m.Seq != uint64(i+1) {
				t.Fatalf("workers=%d: message %d has sequence %d: out of order", workers, i, m.Seq)
			}
			if m.Seq == junk {
				if m.Err == nil || !errors.Is(m.Err, events.ErrMalformed) || m.Subject != s.Subject("c") {
					t.Errorf("junk at %d: %+v, want a malformed-event error on %s", junk, m, s.Subject("c"))
				}
				continue
			}
			want, ok := byID[m.Event.ID.String()]
			if m.Err != nil || !ok || !storetest.Equal(m.Event, want) || m.Event.Seq != m.Seq {
				t.Fatalf("workers=%d: sequence %d: %+v (err %v), not the event appended", workers, m.Seq, m.Event, m.Err)
			}
			if m.Pending != total-m.Seq {
				t.Errorf("sequence %d: pending %d, want %d", m.Seq, m.Pending, total-m.Seq)
			}
		}
	}

	// One subject: only its messages, in order.
	got, err := read(natsstore.OrderedRead{Filter: s.Subject("b"), To: total})
	if err != nil || len(got) != len(b) {
		t.Fatalf("meeting b: %d messages, %v; want %d", len(got), err, len(b))
	}
	for i, m := range got {
		if !storetest.Equal(m.Event, b[i]) {
			t.Fatalf("meeting b: message %d is version %d of %s", i, m.Event.Version, m.Event.MeetingID)
		}
	}

	// A range: From to To exactly.
	got, err = read(natsstore.OrderedRead{From: 100, To: 612})
	if err != nil || len(got) != 513 || got[0].Seq != 100 || got[len(got)-1].Seq != 612 {
		t.Fatalf("range 100-612: %d messages, %v", len(got), err)
	}

	// A decoder of one's own, called for every message.
	calls := 0
	got, err = read(natsstore.OrderedRead{To: 10, Workers: 1, Decode: func(seq uint64, subject string, data []byte) (events.Envelope, error) {
		calls++
		return events.Envelope{Seq: seq * 2}, nil
	}})
	if err != nil || len(got) != 10 || calls != 10 || got[9].Event.Seq != 20 {
		t.Fatalf("own decoder: %d messages, %d calls, %v", len(got), calls, err)
	}

	// Stopping early ends the read and deletes its consumer.
	n := 0
	for _, err := range natsstore.ReadOrdered(ctx(t), js, natsstore.OrderedRead{Stream: s.Stream(), To: total}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 10 {
			break
		}
	}
	if c := consumers(t, js, s.Stream()); c != 0 {
		t.Errorf("%d consumers left on the stream after the reads", c)
	}

	// A canceled read ends with its context's error.
	cctx, cancel := context.WithCancel(ctx(t))
	n = 0
	var last error
	for _, err := range natsstore.ReadOrdered(cctx, js, natsstore.OrderedRead{Stream: s.Stream(), To: total}) {
		if err != nil {
			last = err
			break
		}
		if n++; n == 5 {
			cancel()
		}
	}
	cancel()
	if !errors.Is(last, context.Canceled) {
		t.Errorf("canceled read ended with %v, want context.Canceled", last)
	}

	for name, r := range map[string]natsstore.OrderedRead{
		"no stream":   {To: 5},
		"empty range": {Stream: s.Stream(), From: 6, To: 5},
		"no end":      {Stream: s.Stream()},
	} {
		_, err := storetest.Collect(func(yield func(events.Envelope, error) bool) {
			for _, err := range natsstore.ReadOrdered(ctx(t), js, r) {
				if !yield(events.Envelope{}, err) {
					return
				}
			}
		})
		if !errors.Is(err, natsstore.ErrInvalidRead) {
			t.Errorf("%s: %v, want ErrInvalidRead", name, err)
		}
	}
	for _, err := range natsstore.ReadOrdered(ctx(t), nil, natsstore.OrderedRead{Stream: "X", To: 1}) {
		if !errors.Is(err, natsstore.ErrInvalidRead) {
			t.Errorf("no JetStream: %v, want ErrInvalidRead", err)
		}
	}
}

// TestReadOrdered_Idle: the server goes away in the middle of a read; the
// read ends with ErrReadIdle instead of waiting for ever.
func TestReadOrdered_Idle(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "IDLE", Subjects: []string{"idle.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 6000
	for range n {
		if _, err := js.Publish(ctx(t), "idle.a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	var last error
	start := time.Now()
	raw := func(seq uint64, _ string, _ []byte) (events.Envelope, error) { return events.Envelope{Seq: seq}, nil }
	for _, err := range natsstore.ReadOrdered(ctx(t), js, natsstore.OrderedRead{Stream: "IDLE", To: n, Idle: 300 * time.Millisecond, Decode: raw}) {
		if err != nil {
			last = err
			break
		}
		if got++; got == 1 {
			srv.Shutdown()
		}
	}
	t.Logf("gave up after %v", time.Since(start))
	if !errors.Is(last, natsstore.ErrReadIdle) || got >= n {
		t.Fatalf("read %d of %d messages, then %v; want an error wrapping ErrReadIdle", got, n, last)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the idle read took %v to give up", d)
	}
	t.Logf("read %d messages, then %v", got, last)
}

// TestStore_LongReads: Load and ReadAll of more events than the store reads
// with direct gets go through the ordered reader, and check the same.
func TestStore_LongReads(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	s := newStore(t, nc, uniqueStream()...)
	js, _ := jetstream.New(nc)
	c := storetest.NewChain("long")
	long := appendN(t, s, c, 4500)
	other := appendN(t, s, storetest.NewChain("other"), 10)

	for _, from := range []uint64{0, 1, 2, 1000, 4400, 4500} {
		got, err := storetest.Collect(s.Load(ctx(t), "long", from))
		want := long[max(from, 1)-1:]
		if err != nil || len(got) != len(want) {
			t.Fatalf("Load from %d: %d events, %v; want %d", from, len(got), err, len(want))
		}
		for i := range got {
			if !storetest.Equal(got[i], want[i]) {
				t.Fatalf("Load from %d: event %d differs", from, i)
			}
		}
	}
	all, err := storetest.Collect(s.ReadAll(ctx(t), 0))
	if err != nil || len(all) != len(long)+len(other) {
		t.Fatalf("ReadAll: %d events, %v", len(all), err)
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("ReadAll: event %d at sequence %d", i, e.Seq)
		}
	}

	// A tampered event at the end of the long meeting: both reads name it.
	bad := storetest.Event("long", c.Version+1, c.Last)
	bad.Payload.(*events.ParticipantJoined).UserID = "mallory"
	data, _ := events.Marshal(&bad)
	ack, err := js.Publish(ctx(t), s.Subject("long"), data)
	if err != nil {
		t.Fatal(err)
	}
	// and a good one after it (the store would refuse to append it).
	after := storetest.Event("long", c.Version+2, bad.Hash)
	data, _ = events.Marshal(&after)
	if _, err := js.Publish(ctx(t), s.Subject("long"), data); err != nil {
		t.Fatal(err)
	}
	var ce *eventstore.CorruptError
	got, err := storetest.Collect(s.Load(ctx(t), "long", 1))
	if !errors.As(err, &ce) || ce.Seq != ack.Sequence || len(got) != len(long) {
		t.Errorf("Load over a tampered event: %d events, %v; want %d and a CorruptError at %d", len(got), err, len(long), ack.Sequence)
	}
	var bads []uint64
	n := 0
	for _, err := range s.ReadAll(ctx(t), 0) {
		if errors.As(err, &ce) {
			bads = append(bads, ce.Seq)
		} else if err != nil {
			t.Fatal(err)
		} else {
			n++
		}
	}
	// The event after it does not follow the last intact one either.
	if len(bads) != 2 || bads[0] != ack.Sequence || bads[1] != ack.Sequence+1 || n != len(long)+len(other) {
		t.Errorf("ReadAll over a tampered event: %d events, corrupt at %v; want %d, corrupt at %d and %d", n, bads, len(long)+len(other), ack.Sequence, ack.Sequence+1)
	}
	if c := consumers(t, js, s.Stream()); c != 0 {
		t.Errorf("%d consumers left on the stream after the reads", c)
	}
}
