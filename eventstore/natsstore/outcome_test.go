package natsstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func TestTimeoutOptions(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	for i, c := range []struct {
		opt natsstore.Option
		ok  bool
	}{
		{natsstore.WithRequestTimeout(time.Second), true},
		{natsstore.WithRequestTimeout(50 * time.Millisecond), false},
		{natsstore.WithRequestTimeout(time.Hour), false},
		{natsstore.WithLeaderTimeout(0), true},
		{natsstore.WithLeaderTimeout(100 * time.Millisecond), true},
		{natsstore.WithLeaderTimeout(-time.Second), false},
		{natsstore.WithLeaderTimeout(time.Millisecond), false},
		{natsstore.WithLeaderTimeout(2 * time.Minute), false},
	} {
		st, err := natsstore.New(ctx(t), nc, append(uniqueStream(), c.opt)...)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, natsstore.ErrInvalidOption)) {
			t.Errorf("option %d: %v", i, err)
		}
		if st != nil {
			st.Close()
		}
	}
}

// With the server stopped, Append refuses at once instead of handing the
// message to a reconnecting connection (which would send it later); once
// the server is back nothing of it is stored, and the same append works.
func TestAppend_ServerStoppedNotStored(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsstore.StartServer(dir, natsstore.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	defer func() { srv.Shutdown() }()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := newStore(t, nc, natsstore.WithLeaderTimeout(time.Second))
	c := storetest.NewChain("m")
	if _, err := s.Append(ctx(t), "m", 0, c.Next(1)); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	for nc.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	lctx, cancel := context.WithTimeout(ctx(t), time.Minute)
	defer cancel()
	began := time.Now()
	_, err = s.Append(lctx, "m", 1, c.Peek(2))
	if !errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, eventstore.ErrNotStored) || errors.Is(err, eventstore.ErrOutcomeUnknown) {
		t.Fatalf("Append with the server stopped: %v, want unavailable and not stored", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Append with the server stopped failed after %v, want about the leader timeout", took)
	}
	for _, err := range s.Load(lctx, "m", 1) {
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("Load with the server stopped: %v, want unavailable", err)
		}
	}
	srv, err = natsstore.StartServer(dir, natsstore.WithListen(url[len("nats://"):]))
	if err != nil {
		t.Fatal(err)
	}
	for !nc.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	if err := nc.FlushTimeout(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := storetest.Collect(s.Load(ctx(t), "m", 1))
	if err != nil || len(got) != 1 {
		t.Fatalf("after the restart: %d events, %v; want the one stored before", len(got), err)
	}
	if _, err := s.Append(ctx(t), "m", 1, c.Next(2)); err != nil {
		t.Fatalf("the same append after the restart: %v", err)
	}

	// An append while the connection is still reconnecting to a server
	// that is back waits for it (within the leader timeout) and stores.
	srv.Shutdown()
	for nc.IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	srv, err = natsstore.StartServer(dir, natsstore.WithListen(url[len("nats://"):]))
	if err != nil {
		t.Fatal(err)
	}
	reconnecting := !nc.IsConnected()
	seq, err := s.Append(ctx(t), "m", 3, c.Next(1))
	if err != nil || seq == 0 {
		t.Fatalf("append while reconnecting: seq %d, %v", seq, err)
	}
	if got, err := storetest.Collect(s.Load(ctx(t), "m", 1)); err != nil || len(got) != 4 {
		t.Fatalf("after the append while reconnecting: %d events, %v; want 4", len(got), err)
	}
	t.Logf("appended while reconnecting: %v", reconnecting)
}
