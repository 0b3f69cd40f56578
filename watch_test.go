package stage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
)

func TestEngine_Watch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	const m = "webinar-1"
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: host})
	added, _ := eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: viewer})
	eng.AddParticipant(ctx, "other", aggregate.Participant{UserID: "zed", Permissions: viewer})

	// From the next version on: nothing of the past.
	wctx, stop := context.WithCancel(ctx)
	got := make(chan projections.Notification, 100)
	ended := make(chan error, 1)
	go func() {
		for n, err := range eng.Watch(wctx, m, added.Version+1) {
			if err != nil {
				ended <- err
				return
			}
			if n.Type != projections.Live {
				got <- n
			}
		}
		ended <- nil
	}()
	// Watch catches up concurrently with these commands: whether it loads
	// them or receives them live, it notifies from the version asked.
	res, _ := eng.RequestAccess(ctx, m, "bob")
	eng.RequestAccess(ctx, "other", "zed")
	eng.GrantAccess(ctx, m, "alice", []string{"bob"})
	want := []string{
		"stageStatusUpdate bob", "newStageRequest alice", "stageAccessRequestUpdate alice",
		"stageStatusUpdate bob", "stageRequestApproved bob", "stageAccessRequestUpdate alice",
	}
	for i, w := range want {
		select {
		case n := <-got:
			if s := fmt.Sprint(n.Type, " ", n.Recipient); s != w {
				t.Errorf("notification %d: %s, want %s", i, s, w)
			}
			if n.MeetingID != m {
				t.Errorf("notification of meeting %s", n.MeetingID)
			}
			if i == 0 && n.Version != res.Version {
				t.Errorf("first notification from version %d, want %d", n.Version, res.Version)
			}
		case <-ctx.Done():
			t.Fatalf("waited for %s", w)
		}
	}
	stop()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch ended with %v", err)
	}

	// From version 1: the whole story again, then stop early.
	n := 0
	for note, err := range eng.Watch(ctx, m, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && (note.Version != 1 || note.Type != projections.StageStatusUpdate || note.Recipient != "alice") {
			t.Errorf("first replayed notification %+v", note)
		}
		n++
		if note.Version == res.Version+1 {
			break
		}
	}
	if n != 6 { // v1, v2: joined; v3: three; v4: the first
		t.Errorf("replayed %d notifications", n)
	}

	for _, err := range eng.Watch(ctx, "bad\x00id", 0) {
		if !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("bad meeting id: %v", err)
		}
	}
}

func ExampleEngine_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eng, _ := stage.New(eventstore.NewMemory())
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob", Permissions: viewer})
	eng.RequestAccess(ctx, "w", "bob")
	eng.GrantAccess(ctx, "w", "alice", []string{"bob"})

	// Replay from version 3 (bob's request); a backend would forward each
	// notification to its recipient's socket (with its ID, the resume
	// point), and range until ctx ends. Live says it has caught up.
	for n, err := range eng.Watch(ctx, "w", 3) {
		if err != nil {
			break
		}
		if n.Type == projections.Live {
			fmt.Println("live after version", n.Version)
			break
		}
		fmt.Println(n.ID, n.Type, "->", n.Recipient)
	}
	// Output:
	// 3.0 stageStatusUpdate -> bob
	// 3.1 newStageRequest -> alice
	// 3.2 stageAccessRequestUpdate -> alice
	// 4.0 stageStatusUpdate -> bob
	// 4.1 stageRequestApproved -> bob
	// 4.2 stageAccessRequestUpdate -> alice
	// live after version 4
}

// TestEngine_Watch_jetstream follows a meeting on the embedded JetStream store.
func TestEngine_Watch_jetstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, "other", aggregate.Participant{UserID: "zed", Permissions: viewer})
	res, _ := eng.AddParticipant(ctx, "w", aggregate.Participant{UserID: "bob", Permissions: viewer})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	got := make(chan projections.Notification, 10)
	go func() {
		for n, err := range eng.Watch(wctx, "w", res.Version+1) {
			if err != nil {
				return
			}
			if n.Type != projections.Live {
				got <- n
			}
		}
	}()
	eng.RequestAccess(ctx, "other", "zed")
	eng.RequestAccess(ctx, "w", "bob")
	for _, want := range []string{"stageStatusUpdate bob", "newStageRequest alice", "stageAccessRequestUpdate alice"} {
		select {
		case n := <-got:
			if s := fmt.Sprint(n.Type, " ", n.Recipient); s != want {
				t.Errorf("got %s, want %s", s, want)
			}
		case <-ctx.Done():
			t.Fatalf("waited for %s", want)
		}
	}
}
