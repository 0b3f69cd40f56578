// Package natstest starts in-process nats-server clusters for the module's
// tests: one place for the options every cluster test needs.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyWait bounds a node's start; it only guards against a hang.
const readyWait = 2 * time.Minute

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClusterOptions returns the options of an n-node JetStream cluster named
// name on 127.0.0.1 (nodes "n0", "n1", ...): each node with a temporary
// store directory, and fixed client and route ports, so that a node
// stopped can be started again with the same options and its data.
// Nodes sync every write before they acknowledge it.
func ClusterOptions(t testing.TB, name string, n int) []*server.Options {
	t.Helper()
	routes := make([]string, n)
	routePorts := make([]int, n)
	for i := range routes {
		routePorts[i] = FreePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
	}
	opts := make([]*server.Options, n)
	for i := range opts {
		opts[i] = &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       FreePort(t),
			JetStream:  true,
			StoreDir:   t.TempDir(),
			SyncAlways: true,
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
	}
	return opts
}

// Start starts a node with a copy of o and waits until it takes clients.
// The caller shuts it down.
func Start(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	c := *o
	s, err := server.NewServer(&c)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(readyWait) {
		t.Fatalf("node %s not ready", o.ServerName)
	}
	return s
}

// StartCluster starts a three-node cluster of ClusterOptions, shut down
// when the test ends.
func StartCluster(t testing.TB, name string) []*server.Server {
	t.Helper()
	opts := ClusterOptions(t, name, 3)
	servers := make([]*server.Server, len(opts))
	for i, o := range opts {
		s := Start(t, o)
		servers[i] = s
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	return servers
}
