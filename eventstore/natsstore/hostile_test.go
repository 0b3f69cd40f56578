package natsstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func TestNew_Options(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	bad := map[string]natsstore.Option{
		"empty stream":         natsstore.WithStream(""),
		"stream with dot":      natsstore.WithStream("A.B"),
		"stream with space":    natsstore.WithStream("A B"),
		"stream with wildcard": natsstore.WithStream("A*"),
		"empty prefix":         natsstore.WithSubjectPrefix(""),
		"prefix empty token":   natsstore.WithSubjectPrefix("a..b"),
		"prefix trailing dot":  natsstore.WithSubjectPrefix("a."),
		"prefix wildcard":      natsstore.WithSubjectPrefix("a.*"),
		"prefix full wildcard": natsstore.WithSubjectPrefix(">"),
		"prefix space":         natsstore.WithSubjectPrefix("a b"),
		"zero replicas":        natsstore.WithReplicas(0),
		"six replicas":         natsstore.WithReplicas(6),
		"unknown storage":      natsstore.WithStorage(jetstream.StorageType(9)),
		"negative max age":     natsstore.WithMaxAge(-time.Second),
		"sub-second max age":   natsstore.WithMaxAge(time.Millisecond),
		"nil logger":           natsstore.WithLogger(nil),
	}
	for name, o := range bad {
		if _, err := natsstore.New(ctx(t), nc, o); !errors.Is(err, natsstore.ErrInvalidOption) {
			t.Errorf("%s: New returned %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := natsstore.New(ctx(t), nil); err == nil {
		t.Error("New with a nil connection succeeded")
	}
	for _, o := range []natsstore.ServerOption{natsstore.WithListen("nohost"), natsstore.WithListen("127.0.0.1:x"), natsstore.WithListen("127.0.0.1:70000"), natsstore.WithServerName("")} {
		if _, err := natsstore.StartServer(t.TempDir(), o); !errors.Is(err, natsstore.ErrInvalidOption) {
			t.Errorf("StartServer with a bad option returned %v, want ErrInvalidOption", err)
		}
	}
	if _, err := natsstore.StartServer(""); err == nil {
		t.Error("StartServer with no directory succeeded")
	}
}

// TestNew_ExistingStream checks that New verifies a stream someone else
// created, refusing (and not changing) one that cannot keep the log's
// guarantees.
func TestNew_ExistingStream(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	good := func(name, prefix string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage,
			DenyDelete: true, DenyPurge: true, AllowDirect: true, AllowAtomicPublish: true,
		}
	}
	cases := []struct {
		name   string
		mutate func(c *jetstream.StreamConfig)
		opts   []natsstore.Option
	}{
		{"deletes allowed", func(c *jetstream.StreamConfig) { c.DenyDelete = false }, nil},
		{"purges allowed", func(c *jetstream.StreamConfig) { c.DenyPurge = false }, nil},
		{"no atomic publish", func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }, nil},
		{"no direct get", func(c *jetstream.StreamConfig) { c.AllowDirect = false }, nil},
		{"other subjects", func(c *jetstream.StreamConfig) { c.Subjects = append(c.Subjects, c.Name+".other") }, nil},
		{"narrower subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{c.Subjects[0][:len(c.Subjects[0])-1] + "only"} }, nil},
		{"work queue", func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy }, nil},
		{"interest", func(c *jetstream.StreamConfig) { c.Retention = jetstream.InterestPolicy }, nil},
		{"max msgs discard old", func(c *jetstream.StreamConfig) { c.MaxMsgs = 1000 }, nil},
		{"max bytes discard old", func(c *jetstream.StreamConfig) { c.MaxBytes = 1 << 20 }, nil},
		{"max msgs per subject", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 10 }, nil},
		{"max msgs per subject discard new", func(c *jetstream.StreamConfig) {
			c.MaxMsgsPerSubject, c.Discard = 10, jetstream.DiscardNew
		}, nil},
		{"max age", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, nil},
		{"other max age", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, []natsstore.Option{natsstore.WithMaxAge(2 * time.Hour)}},
		{"memory storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, nil},
		{"async persist", func(c *jetstream.StreamConfig) {
			c.PersistMode, c.AllowAtomicPublish = jetstream.AsyncPersistMode, false
		}, nil},
		{"message ttl", func(c *jetstream.StreamConfig) { c.AllowMsgTTL = true }, nil},
		{"no ack", func(c *jetstream.StreamConfig) { c.NoAck = true }, nil},
		{"fewer replicas than asked", func(*jetstream.StreamConfig) {}, []natsstore.Option{natsstore.WithReplicas(3)}},
	}
	for i, tc := range cases {
		name, prefix := "BAD"+string(rune('A'+i)), "bad"+string(rune('a'+i))
		cfg := good(name, prefix)
		tc.mutate(&cfg)
		created, err := js.CreateStream(ctx(t), cfg)
		if err != nil {
			t.Errorf("%s: the server refused the stream itself: %v", tc.name, err)
			continue
		}
		before := created.CachedInfo().Config
		opts := append([]natsstore.Option{natsstore.WithStream(name), natsstore.WithSubjectPrefix(prefix)}, tc.opts...)
		_, err = natsstore.New(ctx(t), nc, opts...)
		var sce *natsstore.StreamConfigError
		if !errors.Is(err, natsstore.ErrStreamConfig) || !errors.As(err, &sce) || sce.Stream != name || len(sce.Problems) == 0 {
			t.Errorf("%s: New returned %v, want a *StreamConfigError for %s", tc.name, err, name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		after, err := js.Stream(ctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		if a := after.CachedInfo().Config; a.DenyDelete != before.DenyDelete || a.AllowDirect != before.AllowDirect || a.MaxAge != before.MaxAge || len(a.Subjects) != len(before.Subjects) {
			t.Errorf("%s: New changed the stream", tc.name)
		}
	}

	// A stream made to our settings by someone else is used as it is, with
	// more replicas or a subject wildcard of one token, too.
	for i, mutate := range []func(c *jetstream.StreamConfig){
		func(*jetstream.StreamConfig) {},
		func(c *jetstream.StreamConfig) { c.Subjects = []string{"goodb.*"} },
		func(c *jetstream.StreamConfig) { c.Discard = jetstream.DiscardNew; c.MaxBytes = 1 << 30 },
	} {
		name, prefix := "GOOD"+string(rune('A'+i)), "good"+string(rune('a'+i))
		cfg := good(name, prefix)
		mutate(&cfg)
		if _, err := js.CreateStream(ctx(t), cfg); err != nil {
			t.Fatal(err)
		}
		s := newStore(t, nc, natsstore.WithStream(name), natsstore.WithSubjectPrefix(prefix))
		c := storetest.NewChain("m1")
		if _, err := s.Append(ctx(t), "m1", 0, c.Next(2)); err != nil {
			t.Fatalf("good stream %s: %v", name, err)
		}
	}

	// A second store on the stream the first one created is fine.
	opts := uniqueStream()
	newStore(t, nc, opts...)
	newStore(t, connect(t, srv), opts...)
}

func TestStore_Oversized(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	s := newStore(t, nc, uniqueStream()...)
	c := storetest.NewChain("big")
	if _, err := s.Append(ctx(t), "big", 0, c.Next(1)); err != nil {
		t.Fatal(err)
	}
	huge := events.Envelope{
		ID: c.Peek(1)[0].ID, MeetingID: "big", Version: 2, Type: events.TypeAccessDenied,
		Time: storetest.Base, Actor: "host", CommandID: "cmd-huge", Schema: events.SchemaVersion,
		Payload: &events.AccessDenied{Users: []string{"u1"}, Reason: strings.Repeat("x", int(nc.MaxPayload()))},
	}
	if err := huge.Seal(c.Last); err != nil {
		t.Fatal(err)
	}
	for _, evs := range [][]events.Envelope{{huge}, {c.Peek(1)[0], huge}} {
		if len(evs) == 2 {
			huge.Version = 3
			if err := huge.Seal(evs[0].Hash); err != nil {
				t.Fatal(err)
			}
			evs[1] = huge
		}
		_, err := s.Append(ctx(t), "big", 1, evs)
		if !errors.Is(err, natsstore.ErrTooLarge) || !errors.Is(err, eventstore.ErrInvalidEvents) {
			t.Fatalf("Append of a %d-byte event: %v, want ErrTooLarge", nc.MaxPayload(), err)
		}
	}
	tooMany := c.Peek(natsstore.MaxBatch + 1)
	if _, err := s.Append(ctx(t), "big", 1, tooMany); !errors.Is(err, natsstore.ErrTooLarge) {
		t.Fatalf("Append of %d events: %v, want ErrTooLarge", len(tooMany), err)
	}
	all, err := storetest.Collect(s.ReadAll(ctx(t), 0))
	if err != nil || len(all) != 1 {
		t.Fatalf("after oversized appends: %d events, %v; want the 1 stored before", len(all), err)
	}
	// The meeting goes on.
	if _, err := s.Append(ctx(t), "big", 1, c.Next(1)); err != nil {
		t.Fatal(err)
	}
}

func TestStore_SubjectInjection(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	s := newStore(t, nc, uniqueStream()...)
	for _, m := range []string{"a", "b"} {
		if _, err := s.Append(ctx(t), m, 0, storetest.NewChain(m).Next(2)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"", "a\x00", "a\tb", "a\nb", "a\xff", strings.Repeat("a", events.MaxIDLen+1)} {
		got, err := storetest.Collect(s.Load(ctx(t), id, 0))
		if !errors.Is(err, events.ErrInvalidID) || len(got) != 0 {
			t.Errorf("Load(%q): %d events, %v; want none and ErrInvalidID", id, len(got), err)
		}
		if _, err := s.Append(ctx(t), id, 0, storetest.NewChain(id).Next(1)); !errors.Is(err, eventstore.ErrInvalidEvents) {
			t.Errorf("Append(%q): %v, want ErrInvalidEvents", id, err)
		}
	}
	// Ids that would add a token or a wildcard to a subject as they are
	// are escaped: each is a meeting of its own, on one subject token,
	// and never reaches meeting "a" or "b".
	js, _ := jetstream.New(nc)
	for _, id := range []string{"*", ">", "a.b", "a.*", "a.>", "a b", "a.", ".a", "b.>"} {
		if _, err := s.Append(ctx(t), id, 0, storetest.NewChain(id).Next(1)); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
		subj := s.Subject(id)
		if tok, _ := strings.CutPrefix(subj, s.Subject("a")[:len(s.Subject("a"))-1]); strings.ContainsAny(tok, ". ") || tok == "*" || tok == ">" {
			t.Errorf("Subject(%q) = %q: more than one literal token", id, subj)
		}
		st, _ := js.Stream(ctx(t), s.Stream())
		if m, err := st.GetLastMsgForSubject(ctx(t), subj); err != nil || m.Subject != subj {
			t.Errorf("last message of %q on %s: %v", id, subj, err)
		}
		if got, err := storetest.Collect(s.Load(ctx(t), id, 0)); err != nil || len(got) != 1 || got[0].MeetingID != id {
			t.Errorf("Load(%q): %d events, %v", id, len(got), err)
		}
	}
	for _, m := range []string{"a", "b"} {
		if got, err := storetest.Collect(s.Load(ctx(t), m, 0)); err != nil || len(got) != 2 {
			t.Errorf("Load(%q): %d events, %v; want its own 2", m, len(got), err)
		}
	}
	// An event whose own meeting id differs from the one it is appended to.
	if _, err := s.Append(ctx(t), "a", 2, storetest.NewChain("a.b").Next(3)[2:]); !errors.Is(err, eventstore.ErrInvalidEvents) {
		t.Errorf("Append of a foreign meeting's event: %v, want ErrInvalidEvents", err)
	}
	if all, _ := storetest.Collect(s.ReadAll(ctx(t), 0)); len(all) != 4+9 {
		t.Fatalf("stream has %d events, want 13", len(all))
	}
}

// TestStore_ForeignMessages publishes messages that are not events (or not
// where they belong) into the stream, as another program could, and checks
// that every read names them by stream sequence instead of serving them.
func TestStore_ForeignMessages(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	opts := uniqueStream()
	s := newStore(t, nc, opts...)
	js, _ := jetstream.New(nc)
	pub := func(subject string, data []byte) uint64 {
		t.Helper()
		ack, err := js.Publish(ctx(t), subject, data)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	good := storetest.NewChain("good")
	mustAppend := func(c *storetest.Chain, n int) {
		t.Helper()
		v := c.Version
		if _, err := s.Append(ctx(t), c.MeetingID, v, c.Next(n)); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(good, 1)
	junk := pub(s.Subject("junk"), []byte("not an event"))
	multi := pub(s.Subject("x")+".y", []byte(`{"schema":1}`))
	// A real event of meeting "good" copied onto meeting "moved"'s subject.
	evs, _ := storetest.Collect(s.Load(ctx(t), "good", 0))
	data, _ := events.Marshal(&evs[0])
	moved := pub(s.Subject("moved"), data)
	// A tampered event: valid JSON, wrong hash.
	tampered := storetest.NewChain("tampered").Next(1)[0]
	tampered.Payload.(*events.ParticipantJoined).UserID = "mallory"
	data, _ = events.Marshal(&tampered)
	tamperedSeq := pub(s.Subject("tampered"), data)
	mustAppend(good, 1)

	wantCorrupt := func(what string, err error, seq uint64) {
		t.Helper()
		var ce *eventstore.CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrCorrupt) || ce.Seq != seq {
			t.Errorf("%s: got %v, want a CorruptError at sequence %d", what, err, seq)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	for meeting, seq := range map[string]uint64{"junk": junk, "moved": moved, "tampered": tamperedSeq} {
		_, err := storetest.Collect(s.Load(ctx(t), meeting, 0))
		wantCorrupt("Load "+meeting, err, seq)
		// Appending after a foreign message: the guard cannot be read.
		_, err = s.Append(ctx(t), meeting, 1, (&storetest.Chain{MeetingID: meeting, Version: 1}).Peek(1))
		wantCorrupt("Append after "+meeting, err, seq)
		_, err = s.Append(ctx(t), meeting, 0, storetest.NewChain(meeting).Peek(1))
		if !errors.Is(err, eventstore.ErrConflict) {
			t.Errorf("Append as first event of %s: %v, want ErrConflict", meeting, err)
		}
	}
	// Meeting "good" is not affected.
	if got, err := storetest.Collect(s.Load(ctx(t), "good", 0)); err != nil || len(got) != 2 {
		t.Errorf("Load good: %d events, %v", len(got), err)
	}
	// ReadAll reports each foreign message and goes on.
	var seqs, bad []uint64
	for e, err := range s.ReadAll(ctx(t), 0) {
		var ce *eventstore.CorruptError
		switch {
		case errors.As(err, &ce):
			bad = append(bad, ce.Seq)
		case err != nil:
			t.Fatal(err)
		default:
			seqs = append(seqs, e.Seq)
		}
	}
	if len(seqs) != 2 || len(bad) != 4 || bad[0] != junk || bad[1] != multi || bad[2] != moved || bad[3] != tamperedSeq {
		t.Errorf("ReadAll: events at %v, corrupt at %v; want 2 events, corrupt at %v", seqs, bad, []uint64{junk, multi, moved, tamperedSeq})
	}
	// So does Subscribe.
	sub, cancel := ctxCancel(t)
	defer cancel()
	n := 0
	bad = bad[:0]
	for _, err := range s.Subscribe(sub, 0) {
		var ce *eventstore.CorruptError
		if errors.As(err, &ce) {
			bad = append(bad, ce.Seq)
		} else if err != nil {
			t.Fatal(err)
		}
		if n++; n == 6 {
			break
		}
	}
	if len(bad) != 4 || bad[0] != junk {
		t.Errorf("Subscribe: corrupt at %v, want %v", bad, []uint64{junk, multi, moved, tamperedSeq})
	}
}
