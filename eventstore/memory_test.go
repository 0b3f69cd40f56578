package eventstore_test

import (
	"testing"

	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return eventstore.NewMemory() })
}
