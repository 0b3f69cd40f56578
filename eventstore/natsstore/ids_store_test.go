package natsstore_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// TestStore_OldSubjects writes events as earlier versions did, on
// "<prefix>.<id>" with the id as is, for ids that were valid then, and
// reads and appends to them with the store: an old stream keeps reading.
func TestStore_OldSubjects(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	opts := uniqueStream()
	s := newStore(t, nc, opts...)
	js, _ := jetstream.New(nc)
	prefix := s.Subject("m")[:len(s.Subject("m"))-len("m")]
	for _, id := range []string{"webinar-42", "Zoë@team:blue/1#%", "日本", "$sys", "a%2Eb"} {
		c := storetest.NewChain(id)
		for _, e := range c.Next(2) {
			data, err := events.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx(t), prefix+id, data); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Subject(id); got != prefix+id {
			t.Errorf("Subject(%q) = %q, want the old %q", id, got, prefix+id)
		}
		if got, err := storetest.Collect(s.Load(ctx(t), id, 0)); err != nil || len(got) != 2 {
			t.Errorf("Load(%q) of an old subject: %d events, %v", id, len(got), err)
		}
		if _, err := s.Append(ctx(t), id, 2, c.Next(1)); err != nil {
			t.Errorf("Append(%q) after old events: %v", id, err)
		}
		if tok := natsstore.SubjectToken(id); tok != id {
			t.Errorf("SubjectToken(%q) = %q", id, tok)
		}
	}
	// A fresh store on the same stream finds them all.
	s2 := newStore(t, nc, opts...)
	rep, err := natsstore.CheckHistory(ctx(t), js, s2.Stream(), prefix[:len(prefix)-1])
	if err != nil || len(rep.Meetings) != 0 {
		t.Fatalf("CheckHistory: %+v, %v", rep, err)
	}
}
