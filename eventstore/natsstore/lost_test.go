package natsstore_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fill appends 10 events to each of meetings a and b, interleaved (a at
// odd sequences, b at even ones: b's version 10 is the stream's last
// event), and closes the store, which writes the marks.
func fill(t *testing.T, dir string) (a, b *storetest.Chain) {
	t.Helper()
	emb := openEmbedded(t, dir)
	a, b = storetest.NewChain("a"), storetest.NewChain("b")
	for i := range 20 {
		c := a
		if i%2 == 1 {
			c = b
		}
		v := c.Version
		if _, err := emb.Store.Append(ctx(t), c.MeetingID, v, c.Next(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// blocks returns the stream's message block files in dir.
func blocks(t *testing.T, dir string) []string {
	t.Helper()
	blks, err := filepath.Glob(filepath.Join(dir, "jetstream", "$G", "streams", natsstore.DefaultStream, "msgs", "*.blk"))
	if err != nil || len(blks) == 0 {
		t.Fatalf("no block files in %s: %v", dir, err)
	}
	return blks
}

// damage damages the stopped server's stream files as disks and operators
// do.
func damage(t *testing.T, dir, how string) {
	t.Helper()
	blks := blocks(t, dir)
	last := blks[len(blks)-1]
	var err error
	switch how {
	case "delete the last block":
		err = os.Remove(last)
	case "truncate the tail":
		var fi os.FileInfo
		if fi, err = os.Stat(last); err == nil {
			err = os.Truncate(last, fi.Size()-10)
		}
	case "zero the first byte":
		var f *os.File
		if f, err = os.OpenFile(blks[0], os.O_RDWR, 0); err == nil {
			_, err = f.WriteAt([]byte{0}, 0)
			f.Close()
		}
	default:
		t.Fatalf("unknown damage %q", how)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func openLogged(t *testing.T, dir string, opts ...natsstore.Option) (*natsstore.Embedded, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	emb, err := natsstore.OpenEmbedded(ctx(t), dir, append([]natsstore.Option{natsstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	return emb, &logs
}

func wantLost(t *testing.T, err error, meeting string, seen, have uint64) *eventstore.HistoryLostError {
	t.Helper()
	var hl *eventstore.HistoryLostError
	if !errors.Is(err, eventstore.ErrHistoryLost) || !errors.As(err, &hl) {
		t.Fatalf("got %v, want a HistoryLostError of meeting %s", err, meeting)
	}
	if hl.MeetingID != meeting || hl.SeenVersion != seen || hl.HaveVersion != have {
		t.Fatalf("got %+v, want meeting %s seen version %d, have %d", hl, meeting, seen, have)
	}
	if errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("%v must not be a conflict (the engine would retry it)", err)
	}
	return hl
}

func TestLostHistory_Damage(t *testing.T) {
	cases := []struct {
		how string
		// the versions of a and b left, and which meetings lost events
		a, b uint64
	}{
		{"delete the last block", 0, 0},
		{"truncate the tail", 10, 9},
		{"zero the first byte", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.how, func(t *testing.T) {
			dir := t.TempDir()
			a, b := fill(t, dir)
			damage(t, dir, tc.how)

			emb, logs := openLogged(t, dir)
			s := emb.Store
			rep := s.History()
			if rep.StreamLoss == nil {
				t.Fatalf("New noticed no loss: %+v", rep)
			}
			t.Logf("stream: %v", rep.StreamLoss)
			left := map[string]uint64{"a": tc.a, "b": tc.b}
			var lostIDs []string
			for _, id := range []string{"a", "b"} {
				if left[id] < 10 {
					lostIDs = append(lostIDs, id)
				}
			}
			if len(rep.Meetings) != len(lostIDs) {
				t.Fatalf("History lists %d meetings, want %v: %+v", len(rep.Meetings), lostIDs, rep.Meetings)
			}
			for _, id := range lostIDs {
				if l := rep.Meeting(id); l == nil || l.SeenVersion != 10 || l.HaveVersion != left[id] {
					t.Fatalf("History of meeting %s: %+v", id, l)
				}
			}
			if n := strings.Count(logs.String(), "level=ERROR msg=\"natsstore: history lost"); n != len(lostIDs) {
				t.Errorf("%d error logs for lost meetings, want %d:\n%s", n, len(lostIDs), logs)
			}
			chains := map[string]*storetest.Chain{"a": a, "b": b}
			for id, c := range chains {
				// Load serves what remains.
				got, err := storetest.Collect(s.Load(ctx(t), id, 0))
				if err != nil || uint64(len(got)) != left[id] {
					t.Fatalf("Load %s: %d events, %v; want %d", id, len(got), err, left[id])
				}
				next := storetest.NewChain(id)
				next.Next(int(left[id]))
				if left[id] < 10 {
					// Append refuses, on what remains and on the mark.
					_, err := s.Append(ctx(t), id, left[id], next.Peek(1))
					wantLost(t, err, id, 10, left[id])
					if _, err := s.Append(ctx(t), id, 10, c.Peek(1)); !errors.Is(err, eventstore.ErrHistoryLost) && !errors.Is(err, eventstore.ErrConflict) {
						t.Fatalf("Append %s at the mark's version: %v", id, err)
					}
				} else if _, err := s.Append(ctx(t), id, 10, c.Next(1)); err != nil {
					t.Fatalf("Append to unaffected meeting %s: %v", id, err)
				}
			}
			// A new meeting works.
			fresh := storetest.NewChain("fresh")
			if _, err := s.Append(ctx(t), "fresh", 0, fresh.Next(1)); err != nil {
				t.Fatalf("Append to a new meeting: %v", err)
			}

			// The operator's way out.
			if _, err := s.AcceptLoss(ctx(t), "a", "", "x"); !errors.Is(err, natsstore.ErrInvalidRecovery) {
				t.Errorf("AcceptLoss without an operator: %v", err)
			}
			if len(lostIDs) == 1 {
				if _, err := s.AcceptLoss(ctx(t), "a", "ops", "not lost"); !errors.Is(err, natsstore.ErrNothingLost) {
					t.Errorf("AcceptLoss of an unaffected meeting: %v", err)
				}
			}
			for _, id := range lostIDs {
				rec, err := s.AcceptLoss(ctx(t), id, "alice", "disk replaced after "+tc.how)
				if err != nil {
					t.Fatal(err)
				}
				if rec.MeetingID != id || rec.SeenVersion != 10 || rec.HaveVersion != left[id] || rec.SeenHash != chains[id].Last || rec.Operator != "alice" {
					t.Errorf("recovery %+v", rec)
				}
				next := storetest.NewChain(id)
				next.Next(int(left[id]))
				if left[id] > 0 {
					// The chain goes on from what remains.
					evs, _ := storetest.Collect(s.Load(ctx(t), id, left[id]))
					next.Last = evs[0].Hash
				}
				if _, err := s.Append(ctx(t), id, left[id], next.Next(1)); err != nil {
					t.Fatalf("Append to %s after AcceptLoss: %v", id, err)
				}
			}
			recs, err := s.Recoveries(ctx(t))
			if err != nil || len(recs) != len(lostIDs) {
				t.Fatalf("Recoveries: %v, %v", recs, err)
			}
			if !recs[len(recs)-1].StreamRebased {
				t.Errorf("the last recovery did not set the stream's mark: %+v", recs[len(recs)-1])
			}
			if r := s.History(); r.Lost() {
				t.Errorf("History after recovery: %+v", r)
			}
			if err := emb.Close(); err != nil {
				t.Fatal(err)
			}

			// Reopened: nothing lost, the records stay.
			emb, _ = openLogged(t, dir)
			if r := emb.Store.History(); r.Lost() {
				t.Errorf("History after reopening: %+v %v", r, r.StreamLoss)
			}
			recs, err = emb.Store.Recoveries(ctx(t))
			if err != nil || len(recs) != len(lostIDs) {
				t.Fatalf("Recoveries after reopening: %v, %v", recs, err)
			}
		})
	}
}

// TestLostHistory_CheckHistory checks the stream of a damaged data
// directory without a Store, as the replay tool does.
func TestLostHistory_CheckHistory(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir)
	srv := startServer(t, natsstore.WithLazySync())
	nc := connect(t, srv)
	js, _ := jetstream.New(nc)
	if _, err := natsstore.CheckHistory(ctx(t), js, "NOPE", "x"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("CheckHistory of a missing stream: %v", err)
	}
	if _, err := natsstore.CheckHistory(ctx(t), js, "a.b", "x"); !errors.Is(err, natsstore.ErrInvalidOption) {
		t.Errorf("CheckHistory of a bad stream name: %v", err)
	}
	srv.Shutdown()

	check := func() *natsstore.HistoryReport {
		t.Helper()
		srv, err := natsstore.StartServer(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		nc := connect(t, srv)
		js, _ := jetstream.New(nc)
		r, err := natsstore.CheckHistory(ctx(t), js, natsstore.DefaultStream, natsstore.DefaultSubjectPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := check(); r.Lost() || !r.Marked || r.MarkLast != 20 || r.Scanned {
		t.Fatalf("intact: %+v", r)
	}
	damage(t, dir, "truncate the tail")
	r := check()
	if r.StreamLoss == nil || len(r.Meetings) != 1 || r.Meetings[0].MeetingID != "b" || !r.Scanned {
		t.Fatalf("damaged: %+v", r)
	}
	t.Logf("%v", r.Meetings[0])
	// Reading only: checking again finds the same.
	if r2 := check(); len(r2.Meetings) != 1 || r2.Meetings[0].Reason != r.Meetings[0].Reason {
		t.Fatalf("second check: %+v", r2)
	}
}

// TestLostHistory_ColdRead: a meeting whose mark is past its last event is
// noticed on its first read, though the stream's state looks whole.
func TestLostHistory_ColdRead(t *testing.T) {
	srv := startServer(t, natsstore.WithLazySync())
	nc := connect(t, srv)
	opts := uniqueStream()
	s := newStore(t, nc, opts...)
	c := storetest.NewChain("m")
	for range 3 {
		v := c.Version
		if _, err := s.Append(ctx(t), "m", v, c.Next(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A mark at version 5: events 4 and 5 were acknowledged, then lost
	// (say, with a whole server's disk while a replica took over).
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx(t), natsstore.MarksBucket(s.Stream()))
	if err != nil {
		t.Fatal(err)
	}
	var h events.Hash
	h[0] = 1
	mark := `{"meeting":"m","version":5,"seq":5,"hash":"` + h.String() + `"}`
	if _, err := kv.Put(ctx(t), "m.m", []byte(mark)); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, nc, opts...)
	if r := s2.History(); r.Lost() {
		t.Fatalf("the stream's state looks whole, yet: %+v", r)
	}
	got, err := storetest.Collect(s2.Load(ctx(t), "m", 0))
	if err != nil || len(got) != 3 {
		t.Fatalf("Load: %d events, %v", len(got), err)
	}
	_, err = s2.Append(ctx(t), "m", 3, c.Peek(1))
	if hl := wantLost(t, err, "m", 5, 3); hl.SeenHash != h {
		t.Errorf("seen hash %s, want %s", hl.SeenHash, h)
	}
	// A Store that never read the meeting: its first append reads the mark.
	s3 := newStore(t, nc, opts...)
	_, err = s3.Append(ctx(t), "m", 3, c.Peek(1))
	wantLost(t, err, "m", 5, 3)
	// A meeting that lost every event: a first append at version 0 reads
	// its mark.
	gone := `{"meeting":"gone","version":2,"seq":1,"hash":"` + h.String() + `"}`
	if _, err := kv.Put(ctx(t), "m.gone", []byte(gone)); err != nil {
		t.Fatal(err)
	}
	_, err = s3.Append(ctx(t), "gone", 0, storetest.NewChain("gone").Next(1))
	wantLost(t, err, "gone", 2, 0)
	// Accepted through s3, s2 sees it on its next append.
	if _, err := s3.AcceptLoss(ctx(t), "m", "bob", "replica rebuilt"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Append(ctx(t), "m", 3, c.Next(1)); err != nil {
		t.Fatalf("Append after another store accepted the loss: %v", err)
	}
}

// TestLostHistory_ServerRestart: a Store that stays up while its server
// restarts with a shorter stream notices the loss from the head it holds.
func TestLostHistory_ServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsstore.StartServer(dir, natsstore.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20e6))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := newStore(t, nc)
	c := storetest.NewChain("m")
	for range 4 {
		v := c.Version
		if _, err := s.Append(ctx(t), "m", v, c.Next(1)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Shutdown()
	damage(t, dir, "truncate the tail")
	if srv, err = natsstore.StartServer(dir, natsstore.WithListen(strings.TrimPrefix(url, "nats://"))); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	// The guard of version 4's sequence fails (the server lost it); a
	// catch-up finds version 3 and the head held says that is a loss.
	if _, err := s.Append(ctx(t), "m", 4, c.Peek(1)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append on the lost head: %v", err)
	}
	got, err := storetest.Collect(s.Load(ctx(t), "m", 0))
	if err != nil || len(got) != 3 {
		t.Fatalf("Load: %d events, %v", len(got), err)
	}
	redo := storetest.NewChain("m")
	redo.Next(3)
	redo.Last = got[2].Hash
	_, err = s.Append(ctx(t), "m", 3, redo.Peek(1))
	wantLost(t, err, "m", 4, 3)
}

func TestWithMarkInterval(t *testing.T) {
	srv := startServer(t, natsstore.WithLazySync())
	nc := connect(t, srv)
	for _, d := range []int64{-1, 1, 61e9} {
		if _, err := natsstore.New(ctx(t), nc, natsstore.WithMarkInterval(timeDuration(d))); !errors.Is(err, natsstore.ErrInvalidOption) {
			t.Errorf("WithMarkInterval(%d): %v", d, err)
		}
	}
	// Strict: the mark is written before Append returns.
	opts := append(uniqueStream(), natsstore.WithMarkInterval(0))
	s := newStore(t, nc, opts...)
	c := storetest.NewChain("m")
	if _, err := s.Append(ctx(t), "m", 0, c.Next(2)); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	kv, _ := js.KeyValue(ctx(t), natsstore.MarksBucket(s.Stream()))
	e, err := kv.Get(ctx(t), "m.m")
	if err != nil || !strings.Contains(string(e.Value()), `"version":2`) {
		t.Fatalf("mark after a strict append: %v", err)
	}
	e, err = kv.Get(ctx(t), "stream")
	if err != nil || !strings.Contains(string(e.Value()), `"last":2`) {
		t.Fatalf("stream mark after a strict append: %s %v", e.Value(), err)
	}
}

func timeDuration(ns int64) time.Duration { return time.Duration(ns) }
