package natsstore_test

import (
	"testing"

	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func TestStore_Conformance(t *testing.T) {
	srv := startServer(t)
	nc := connect(t, srv)
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return newStore(t, nc, uniqueStream()...)
	})
}

func TestStore_ConformanceSeparateConnections(t *testing.T) {
	// Each subtest on its own connection and the default stream name of a
	// fresh server: the configuration a single deployment uses.
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		srv := startServer(t)
		return newStore(t, connect(t, srv))
	})
}
