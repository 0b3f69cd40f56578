package stage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// ExampleCloseWith opens the embedded default and closes the whole of it
// (Engine, store, connection, server) with one call.
func ExampleCloseWith() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "stage-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		panic(err)
	}
	eng, err := stage.New(emb.Store, stage.CloseWith(emb))
	if err != nil {
		emb.Close() // New failed: emb is still ours to close
		panic(err)
	}
	r, err := eng.AddParticipant(ctx, "webinar-1", aggregate.Participant{UserID: "alice",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}})
	fmt.Println(r.Version, err)
	fmt.Println(eng.Close())

	// The directory is free again: the next process opens it.
	emb, err = natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		panic(err)
	}
	eng, _ = stage.New(emb.Store, stage.CloseWith(emb))
	defer eng.Close()
	st, err := eng.Status(ctx, "webinar-1", "alice")
	fmt.Println(st, err)
	// Output:
	// 1 <nil>
	// <nil>
	// OffStage <nil>
}

type closer struct {
	name  string
	order *[]string
	err   error
}

func (c *closer) Close() error {
	*c.order = append(*c.order, c.name)
	return c.err
}

// TestCloseWith: Close closes what it was given, last and in reverse
// order, once, and returns their errors; a nil closer is refused.
func TestCloseWith(t *testing.T) {
	var order []string
	boom := errors.New("boom")
	eng, err := stage.New(eventstore.NewMemory(), stage.CloseWith(&closer{"store", &order, nil}), stage.CloseWith(&closer{"conn", &order, boom}))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v, want the closer's error", err)
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if fmt.Sprint(order) != "[conn store]" {
		t.Fatalf("closed %v, want [conn store] once", order)
	}
	if _, err := stage.New(eventstore.NewMemory(), stage.CloseWith(nil)); err == nil {
		t.Fatal("CloseWith(nil) accepted")
	}
}

// TestConnect: natsstore.Connect opens a store on an external server by
// URL, and Close through the Engine closes the store and the connection.
func TestConnect(t *testing.T) {
	srv := jsEmbedded(t, natsstore.WithListen("127.0.0.1:0"), natsstore.WithLazySync())
	ctx := jsCtx(t)
	c, err := natsstore.Connect(ctx, srv.ClientURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(c.Store, stage.CloseWith(c))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "u", Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if !c.Conn.IsClosed() {
		t.Fatal("the connection is still open after Engine.Close")
	}
	if _, err := c.Store.Append(ctx, "m", 1, nil); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Append on the closed store: %v, want ErrClosed", err)
	}
	if _, err := natsstore.Connect(ctx, "", nil); err == nil {
		t.Fatal("Connect with no URL succeeded")
	}
}
