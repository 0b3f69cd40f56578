package natsstore_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
)

func TestCheckpoints_writeRead(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	st := newStore(t, nc)
	pub, priv, _ := ed25519.GenerateKey(nil)
	js, _ := jetstream.New(nc)

	// No checkpoint stream yet: nothing, no error.
	for c, err := range natsstore.ReadCheckpoints(ctx(t), js, st.Stream()) {
		t.Fatalf("read %v, %v from a store that never wrote checkpoints", c, err)
	}
	var want []checkpoint.Signed
	for i, m := range []string{"a", "b", "meeting=with/odd+chars", "a"} {
		s, err := checkpoint.Sign(priv, checkpoint.Checkpoint{MeetingID: m, Version: uint64(i + 1), Hash: events.Hash{byte(i + 1)}, Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	if err := st.WriteCheckpoints(ctx(t), want[:3]); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteCheckpoints(ctx(t), want[3:]); err != nil {
		t.Fatal(err)
	}
	var got []checkpoint.Signed
	for c, err := range st.Checkpoints(ctx(t)) {
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(pub); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d checkpoints, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].MeetingID != want[i].MeetingID || got[i].Version != want[i].Version {
			t.Errorf("checkpoint %d: %s v%d, want %s v%d", i, got[i].MeetingID, got[i].Version, want[i].MeetingID, want[i].Version)
		}
	}
	// The checkpoint stream is append-only like the log.
	cs, err := js.Stream(ctx(t), natsstore.CheckpointStream(st.Stream()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := cs.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge {
		t.Errorf("checkpoint stream allows deletes or purges: %+v", cfg)
	}
	// A message that is not a checkpoint is reported, and reading goes on.
	if _, err := js.Publish(ctx(t), natsstore.CheckpointStream(st.Stream())+".a", []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteCheckpoints(ctx(t), want[:1]); err != nil {
		t.Fatal(err)
	}
	n, bad := 0, 0
	for _, err := range st.Checkpoints(ctx(t)) {
		if errors.Is(err, checkpoint.ErrMalformed) {
			bad++
		} else if err != nil {
			t.Fatal(err)
		} else {
			n++
		}
	}
	if n != 5 || bad != 1 {
		t.Errorf("read %d checkpoints and %d bad messages, want 5 and 1", n, bad)
	}
	st.Close()
	if err := st.WriteCheckpoints(ctx(t), want); err == nil {
		t.Error("a closed store wrote checkpoints")
	}
}
