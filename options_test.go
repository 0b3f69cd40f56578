package stage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

func TestNew_invalidOptions(t *testing.T) {
	for name, opt := range map[string]stage.Option{
		"nil clock":          stage.WithClock(nil),
		"nil logger":         stage.WithLogger(nil),
		"no attempts":        stage.WithRetry(0, time.Millisecond, time.Second),
		"negative backoff":   stage.WithRetry(3, -time.Millisecond, time.Second),
		"max below base":     stage.WithRetry(3, time.Second, time.Millisecond),
		"empty cache":        stage.WithCacheSize(0),
		"negative snapshots": stage.WithSnapshotEvery(-1),
	} {
		if eng, err := stage.New(eventstore.NewMemory(), opt); err == nil {
			eng.Close()
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := stage.New(nil); err == nil {
		t.Error("New(nil store) accepted it")
	}
}

func TestEngine_ExecuteOptions(t *testing.T) {
	ctx := context.Background()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	add := aggregate.Command{ID: "ignored", Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "u",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed}}}}
	res, err := eng.Execute(ctx, "m", add, stage.WithIdempotencyKey("key-1"), stage.WithCorrelationID("trace-7"))
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Events[0]; e.CommandID != "key-1" || e.CorrelationID != "trace-7" {
		t.Fatalf("event command %q correlation %q, want key-1 and trace-7", e.CommandID, e.CorrelationID)
	}
	again, err := eng.Execute(ctx, "m", add, stage.WithIdempotencyKey("key-1"))
	if err != nil || !again.Duplicate || again.Version != res.Version {
		t.Fatalf("retry: %+v, %v; want the original version %d, Duplicate", again, err, res.Version)
	}
	if _, err := eng.Execute(ctx, "bad\nmeeting", add); !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Fatalf("meeting id with a newline: %v, want ErrInvalidCommand", err)
	}
	eng.Close()
	if _, err := eng.Execute(ctx, "m", add); !errors.Is(err, stage.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}
