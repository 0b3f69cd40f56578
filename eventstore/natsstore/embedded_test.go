package natsstore_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func openEmbedded(t *testing.T, dir string) *natsstore.Embedded {
	t.Helper()
	emb, err := natsstore.OpenEmbedded(ctx(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	return emb
}

func TestOpenEmbedded_Restart(t *testing.T) {
	dir := t.TempDir()
	emb := openEmbedded(t, dir)
	if emb.Server.ClientURL() != "" {
		t.Errorf("embedded server listens on %s, want no port", emb.Server.ClientURL())
	}
	var want []events.Envelope
	chains := []*storetest.Chain{storetest.NewChain("r1"), storetest.NewChain("r2")}
	for i := range 10 {
		c := chains[i%2]
		v := c.Version
		evs := c.Next(1 + i%3)
		if _, err := emb.Store.Append(ctx(t), c.MeetingID, v, evs); err != nil {
			t.Fatal(err)
		}
		want = append(want, evs...)
	}
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := emb.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := emb.Store.Append(ctx(t), "r1", chains[0].Version, chains[0].Peek(1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := storetest.Collect(emb.Store.Load(ctx(t), "r1", 0)); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Load after Close: %v, want ErrClosed", err)
	}

	emb = openEmbedded(t, dir)
	defer emb.Close()
	got, err := storetest.Collect(emb.Store.ReadAll(ctx(t), 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after restart: %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if !storetest.Equal(got[i], want[i]) {
			t.Fatalf("after restart: event %d differs", i)
		}
	}
	// Appends go on where they stopped.
	c := chains[0]
	v := c.Version
	if _, err := emb.Store.Append(ctx(t), c.MeetingID, v, c.Next(1)); err != nil {
		t.Fatal(err)
	}
}

// TestCorruption_AtRest flips a byte of a stored event in the server's data
// files, restarts, and checks that reads report the damage by stream
// sequence instead of serving altered history.
func TestCorruption_AtRest(t *testing.T) {
	dir := t.TempDir()
	emb := openEmbedded(t, dir)
	c := storetest.NewChain("victim")
	for range 5 {
		v := c.Version
		if _, err := emb.Store.Append(ctx(t), "victim", v, c.Next(1)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := storetest.Collect(emb.Store.Load(ctx(t), "victim", 0))
	if err != nil {
		t.Fatal(err)
	}
	target := all[2] // version 3, user "u3"
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}

	marker := []byte(`"user":"u3"`)
	flipped := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".blk" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.Index(b, marker); i >= 0 {
			b[i+len(marker)-2] = '9' // u3 -> u9: still valid JSON
			flipped++
			t.Logf("flipped a byte in %s at %d", path, i+len(marker)-2)
			return os.WriteFile(path, b, 0o600)
		}
		return nil
	})
	if err != nil || flipped != 1 {
		t.Fatalf("flipping a byte: %v (%d files)", err, flipped)
	}

	emb = openEmbedded(t, dir)
	defer emb.Close()
	// nats-server checks each message's checksum when it recovers a block:
	// it drops the damaged message (so the stream has a hole at its
	// sequence, though deletes are denied). Either way the store must not
	// serve the altered history: Load stops at the damage, naming the
	// damaged event's sequence or the first one after the hole.
	got, err := storetest.Collect(emb.Store.Load(ctx(t), "victim", 0))
	var ce *eventstore.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Load after corruption: %d events, %v; want a CorruptError", len(got), err)
	}
	t.Logf("Load: %v", err)
	if ce.Seq != target.Seq && ce.Seq != all[3].Seq {
		t.Errorf("CorruptError at sequence %d, want %d (the damaged event) or %d (the one after)", ce.Seq, target.Seq, all[3].Seq)
	}
	if len(got) != 2 {
		t.Errorf("Load served %d events before the damage, want 2", len(got))
	}
	// ReadAll names the damaged sequence itself.
	var bad []uint64
	for _, err := range emb.Store.ReadAll(ctx(t), 0) {
		if errors.As(err, &ce) {
			t.Logf("ReadAll: %v", err)
			bad = append(bad, ce.Seq)
		}
	}
	if len(bad) == 0 || bad[0] != target.Seq {
		t.Errorf("ReadAll reported corruption at %v, want first at %d", bad, target.Seq)
	}
}

func TestStartServer_Listen(t *testing.T) {
	srv := startServer(t, natsstore.WithListen("127.0.0.1:0"), natsstore.WithLazySync(), natsstore.WithServerName("listener"))
	url := srv.ClientURL()
	if url == "" || strings.HasSuffix(url, ":-1") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL %q, want the port it listens on", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := newStore(t, nc)
	c := storetest.NewChain("tcp")
	if _, err := s.Append(ctx(t), "tcp", 0, c.Next(1)); err != nil {
		t.Fatal(err)
	}
	// An in-process connection sees the same stream.
	got, err := storetest.Collect(newStore(t, connect(t, srv)).Load(ctx(t), "tcp", 0))
	if err != nil || len(got) != 1 {
		t.Fatalf("Load over the in-process connection: %d events, %v", len(got), err)
	}
}
