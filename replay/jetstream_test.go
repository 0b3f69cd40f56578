package replay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// startNATS runs an in-process nats-server with JetStream on a random
// local port, with a user and password, and returns its URL (without
// credentials).
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: "auditor", Password: "s3cret", NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// publish stores evs in a STAGE stream the way the JetStream store does:
// one message per event on stage.events.<meeting>, the wire format without seq.
func publish(t *testing.T, url string, evs []events.Envelope, raw map[int][]byte) {
	t.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(url, nats.UserInfo("auditor", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STAGE", Subjects: []string{"stage.events.>"}}); err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		e.Seq = 0
		data, err := events.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := raw[i]; ok {
			data = r
		}
		if _, err := js.Publish(ctx, "stage.events."+e.MeetingID, data); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJetStreamSource(t *testing.T) {
	ctx := context.Background()
	url := startNATS(t)
	evs := webinar(t)
	publish(t, url, evs, map[int][]byte{5: []byte(`{"not":"an event"}`)})
	auth := replay.WithNATSOptions(nats.UserInfo("auditor", "s3cret"))

	t.Run("auth required", func(t *testing.T) {
		_, err := replay.Open(ctx, url)
		if !errors.Is(err, replay.ErrSource) {
			t.Fatalf("no credentials: %v", err)
		}
	})
	t.Run("missing stream", func(t *testing.T) {
		_, err := replay.Open(ctx, url, auth, replay.WithStream("NOPE"))
		if !errors.Is(err, replay.ErrSource) {
			t.Fatalf("missing stream: %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		_, err := replay.Open(ctx, "nats://127.0.0.1:1", replay.WithNATSOptions(nats.Timeout(time.Second)))
		if !errors.Is(err, replay.ErrSource) {
			t.Fatalf("unreachable: %v", err)
		}
	})

	var done, total int64
	src, err := replay.Open(ctx, url, auth, replay.WithProgress(func(d, tot int64) { done, total = d, tot }))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := replay.Verify(ctx, src.Events(ctx, ""))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != len(evs) || rep.Findings[0].Kind != replay.Malformed || rep.Findings[0].Seq != 6 {
		t.Fatalf("report %+v", rep)
	}
	if done != int64(len(evs)) || total != int64(len(evs)) {
		t.Errorf("progress %d/%d", done, total)
	}
	// One meeting, read through its subject; the damaged version 6 is missing.
	r, err := replay.Roster(ctx, src, replay.Filter{MeetingID: "w1", UpToVersion: 4})
	if err != nil || r.Version != 4 || len(r.Requests) != 1 {
		t.Fatalf("roster %+v %v", r, err)
	}
	if _, err := replay.Roster(ctx, src, replay.Filter{MeetingID: "w2"}); !errors.Is(err, replay.ErrUnknownMeeting) {
		t.Errorf("unknown meeting: %v", err)
	}
	n := 0
	for e, err := range src.Events(ctx, "w1") {
		if err == nil && e.Seq != uint64(n+1) {
			t.Errorf("event %d has seq %d", n, e.Seq)
		}
		n++
	}
	if n != len(evs) {
		t.Errorf("read %d", n)
	}
}
