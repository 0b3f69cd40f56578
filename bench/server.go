package bench

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage/eventstore/natsstore"
)

// Sync is a durability mode of the embedded server.
type Sync bool

// The two durability modes every JetStream workload runs in.
const (
	// SyncAlways: the server fsyncs before it acknowledges (the embedded default).
	SyncAlways Sync = true
	// LazySync: the server's default, flushing to disk in the background.
	LazySync Sync = false
)

func (s Sync) String() string {
	if s {
		return "sync=always"
	}
	return "sync=lazy"
}

// env is one embedded server (the library's own embedded default) and a
// connection to it, for one benchmark.
type env struct {
	srv *natsstore.Server
	nc  *nats.Conn
}

func startEnv(b testing.TB, sync Sync) *env {
	b.Helper()
	var opts []natsstore.ServerOption
	if sync == LazySync {
		opts = append(opts, natsstore.WithLazySync())
	}
	srv, err := natsstore.StartServer(b.TempDir(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		b.Fatal(err)
	}
	return &env{srv: srv, nc: nc}
}

func (e *env) close() {
	e.nc.Close()
	e.srv.Shutdown()
}

func subject(prefix string, i int) string { return fmt.Sprintf("%s.m%06d", prefix, i) }
