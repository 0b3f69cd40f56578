package natsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage/eventstore/natsstore"
)

// startServer starts an embedded server in a temp dir, shut down at cleanup.
func startServer(t testing.TB, opts ...natsstore.ServerOption) *natsstore.Server {
	t.Helper()
	srv, err := natsstore.StartServer(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// connect opens an in-process connection, closed at cleanup.
func connect(t testing.TB, srv *natsstore.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var streamN atomic.Int64

// uniqueStream returns options for a fresh stream and subject prefix.
func uniqueStream() []natsstore.Option {
	n := streamN.Add(1)
	return []natsstore.Option{natsstore.WithStream(fmt.Sprintf("T%d", n)), natsstore.WithSubjectPrefix(fmt.Sprintf("t%d.ev", n))}
}

func newStore(t testing.TB, nc *nats.Conn, opts ...natsstore.Option) *natsstore.Store {
	t.Helper()
	s, err := natsstore.New(ctx(t), nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ctx is a test context with a hang guard.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func ctxCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx(t))
}
