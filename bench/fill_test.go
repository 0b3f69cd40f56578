package bench

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestFillerSurvivesStalls publishes through a client whose async limit is
// far below the filler's window and whose stall wait is a nanosecond: a
// plain PublishAsync loop fails there with "stalled with too many
// outstanding async published messages" (checked first), the filler retries
// and every message is stored.
func TestFillerSurvivesStalls(t *testing.T) {
	e := startEnv(t, LazySync)
	defer e.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(2))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	data := make([]byte, 300)
	stall := jetstream.WithStallWait(time.Nanosecond)

	// The way fillStream published before: it stalls.
	var plainErr error
	for i := range n {
		if _, plainErr = js.PublishAsync(subject("fill.plain", i%50), data, stall); plainErr != nil {
			break
		}
	}
	if plainErr == nil {
		t.Fatalf("a plain PublishAsync loop did not stall: the test does not reproduce the failure")
	}
	t.Logf("plain PublishAsync loop: %v", plainErr)
	<-js.PublishAsyncComplete()
	if err := st.Purge(ctx); err != nil {
		t.Fatal(err)
	}

	f := newFiller(js, 64)
	f.opts = []jetstream.PublishOpt{stall}
	for i := range n {
		if err := f.publish(ctx, subject("fill.m", i%50), data); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if f.n > f.window {
			t.Fatalf("%d publishes in flight, window %d", f.n, f.window)
		}
	}
	if err := f.flush(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, n)
	}
	if f.stalls == 0 {
		t.Fatal("no publish stalled: the retry path was not exercised")
	}
	t.Logf("%d publishes stalled and were retried", f.stalls)
}
