package natsstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerOption configures [StartServer]. Options validate their argument;
// errors wrap [ErrInvalidOption].
type ServerOption func(*serverConfig) error

type serverConfig struct {
	host     string
	port     int
	listen   bool
	lazySync bool
	name     string
	ready    time.Duration
}

// WithListen makes the embedded server accept clients on hostport (for
// example "127.0.0.1:4222", or port 0 for any free port), so that other
// processes (the nats CLI, the replay tool, another Engine) can connect. By
// default the server listens on no port and only in-process connections
// reach it.
func WithListen(hostport string) ServerOption {
	return func(c *serverConfig) error {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return badOption("listen address %q: %v", hostport, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return badOption("listen address %q: bad port", hostport)
		}
		if p == 0 {
			p = -1 // nats-server's "any free port"
		}
		c.host, c.port, c.listen = host, p, true
		return nil
	}
}

// WithLazySync makes the embedded server acknowledge a write before it is
// synced to disk, flushing on the server's default interval (two minutes)
// instead. It is several times faster and loses the acknowledged writes of
// the last interval if the machine (not just the process) stops: for
// benchmarks and throwaway data only. The default syncs before every
// acknowledgement.
func WithLazySync() ServerOption {
	return func(c *serverConfig) error {
		c.lazySync = true
		return nil
	}
}

// WithServerName sets the server's name (default "stage-embedded").
func WithServerName(name string) ServerOption {
	return func(c *serverConfig) error {
		if name == "" {
			return badOption("empty server name")
		}
		c.name = name
		return nil
	}
}

// Server is an in-process nats-server with JetStream: the embedded default
// behind the store when no external server is given.
type Server struct {
	ns   *server.Server
	dir  string
	cfg  serverConfig
	lock *dirLock
}

// StartServer starts a nats-server in this process, with JetStream and its
// file storage in dir (created if missing). By default it syncs every write
// to disk before acknowledging it (SyncAlways; see [WithLazySync]) and
// listens on no port (see [WithListen]): connect with [Server.Connect].
// Starting again on the same dir brings every stored event back.
//
// One server at a time holds dir: StartServer first takes an exclusive lock
// on dir's [LockFileName] (flock; the kernel lets it go when the holder
// shuts down or dies), and records there which process holds it. While
// another server holds dir, in this process or another, StartServer
// returns a [*DirLockedError] (wrapping [ErrDirLocked]) naming the holder,
// and touches nothing. To reach a live store from another process, start
// its server with [WithListen] and connect to [Server.ClientURL]. On
// platforms without flock (Windows, Solaris, AIX, Plan 9, WebAssembly) no
// lock is taken: keep to one server per directory by hand there.
func StartServer(dir string, opts ...ServerOption) (*Server, error) {
	if dir == "" {
		return nil, errors.New("natsstore: StartServer: empty store directory")
	}
	cfg := serverConfig{name: "stage-embedded", ready: 30 * time.Second}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("natsstore: StartServer: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	so := &server.Options{
		ServerName: cfg.name,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: !cfg.lazySync,
		NoSigs:     true,
		NoLog:      true,
		DontListen: !cfg.listen,
		Host:       "127.0.0.1",
		Port:       -1,
		HTTPPort:   0,
	}
	if cfg.listen {
		so.Host, so.Port = cfg.host, cfg.port
	}
	ns, err := server.NewServer(so)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("natsstore: start server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(cfg.ready) {
		ns.Shutdown()
		ns.WaitForShutdown()
		lock.release()
		return nil, fmt.Errorf("natsstore: server on %s not ready after %v", dir, cfg.ready)
	}
	return &Server{ns: ns, dir: dir, cfg: cfg, lock: lock}, nil
}

// Connect returns a connection to the server through memory (no socket),
// with opts applied after the in-process setting.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("stage-embedded")}, opts...)
	nc, err := nats.Connect(s.ns.ClientURL(), all...)
	if err != nil {
		return nil, fmt.Errorf("natsstore: connect in-process: %w", err)
	}
	return nc, nil
}

// ClientURL returns the URL other processes connect to, or "" if the server
// does not listen (see [WithListen]).
func (s *Server) ClientURL() string {
	if !s.cfg.listen {
		return ""
	}
	return s.ns.ClientURL()
}

// Dir returns the server's storage directory.
func (s *Server) Dir() string { return s.dir }

// NATSServer returns the underlying nats-server, for monitoring and tests.
func (s *Server) NATSServer() *server.Server { return s.ns }

// Shutdown stops the server and waits until it has stopped. Everything
// acknowledged is on disk (with the default sync); clients see their
// connection close or reconnect. Then it lets the data directory go, for
// the next [StartServer]. Later calls do nothing.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.lock.release()
}

// Embedded is the whole embedded default: an in-process [Server], a
// connection to it and a [Store] on it. Close it to shut all down.
type Embedded struct {
	// Server is the in-process nats-server.
	Server *Server
	// Conn is the in-process connection the Store uses.
	Conn *nats.Conn
	// Store is the event store.
	Store *Store
}

// OpenEmbedded starts a [Server] on dir with its defaults (sync before
// acknowledge, no listening port), connects to it and opens a [Store] with
// group commit on ([WithGroupCommit] of [DefaultGroupMin]) and opts.
// Opening the same dir again, once this one is closed, brings every stored
// event back; while it is open, another OpenEmbedded or [StartServer] on
// dir returns a [*DirLockedError].
//
//	emb, err := natsstore.OpenEmbedded(ctx, "/var/lib/stage")
//	...
//	defer emb.Close()
//	eng, err := stage.New(emb.Store)
func OpenEmbedded(ctx context.Context, dir string, opts ...Option) (*Embedded, error) {
	srv, err := StartServer(dir)
	if err != nil {
		return nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	st, err := New(ctx, nc, append([]Option{WithGroupCommit(DefaultGroupMin)}, opts...)...)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	return &Embedded{Server: srv, Conn: nc, Store: st}, nil
}

// Close closes the store, drains the connection and shuts the server down.
// Later calls do nothing.
func (e *Embedded) Close() error {
	err := closeStoreConn(e.Store, e.Conn)
	e.Server.Shutdown()
	return err
}

// closeStoreConn closes the store, then drains the connection and waits
// (up to 5 s) for it to close.
func closeStoreConn(st *Store, nc *nats.Conn) error {
	err := st.Close()
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		err = errors.Join(err, derr)
		nc.Close()
	}
	// Drain is asynchronous: wait for the connection to finish closing.
	for i := 0; i < 500 && !nc.IsClosed(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	nc.Close()
	return err
}
