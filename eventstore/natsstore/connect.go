package natsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Connection is a [Store] on a connection of its own to an external
// nats-server or cluster, as [Connect] opens it. Close it to close both.
type Connection struct {
	// Conn is the connection the Store uses.
	Conn *nats.Conn
	// Store is the event store.
	Store *Store
}

// Connect connects to the nats-server(s) at url (comma-separated URLs of a
// cluster) with nats.go's options natsOpts (credentials, TLS, name, ...),
// and opens a [Store] on the connection with opts. The returned
// Connection owns the connection: its Close closes the store and then
// drains and closes the connection.
//
//	c, err := natsstore.Connect(ctx, "nats://nats-1:4222,nats://nats-2:4222",
//		[]nats.Option{nats.UserCredentials("stage.creds")})
//	...
//	eng, err := stage.New(c.Store, stage.CloseWith(c)) // eng.Close closes all
func Connect(ctx context.Context, url string, natsOpts []nats.Option, opts ...Option) (*Connection, error) {
	if url == "" {
		return nil, errors.New("natsstore: Connect: empty URL")
	}
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("natsstore: Connect %s: %w", url, err)
	}
	st, err := New(ctx, nc, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Connection{Conn: nc, Store: st}, nil
}

// Close closes the store, then drains and closes the connection. Later
// calls do nothing.
func (c *Connection) Close() error { return closeStoreConn(c.Store, c.Conn) }
