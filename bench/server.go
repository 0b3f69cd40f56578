package bench

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
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

// env is one embedded server and a connection to it, for one benchmark.
type env struct {
	srv *server.Server
	nc  *nats.Conn
	dir string
}

func startEnv(b testing.TB, sync Sync) *env {
	b.Helper()
	dir, err := os.MkdirTemp("", "stage-bench-")
	if err != nil {
		b.Fatal(err)
	}
	opts := &server.Options{
		JetStream: true, StoreDir: dir, DontListen: true, NoLog: true, NoSigs: true,
		SyncAlways: bool(sync), ServerName: "bench",
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	return &env{srv: srv, nc: nc, dir: dir}
}

func (e *env) close() {
	e.nc.Close()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	os.RemoveAll(e.dir)
}

func subject(prefix string, i int) string { return fmt.Sprintf("%s.m%06d", prefix, i) }
