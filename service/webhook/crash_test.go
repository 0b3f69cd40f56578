package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/service/webhook"
)

// TestCrashChild is the Sender process TestSender_SIGKILL kills: it
// delivers until it dies.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv("STAGE_WEBHOOK_CHILD")
	if spec == "" {
		t.Skip("run by TestSender_SIGKILL")
	}
	var natsURL, stream, prefix, hook string
	if _, err := fmt.Sscan(spec, &natsURL, &stream, &prefix, &hook); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = webhook.New(js, webhook.Source{Stream: stream, Prefix: prefix}, []webhook.Endpoint{{Name: "media", URL: hook, Secret: secret}},
		webhook.WithTimeout(500*time.Millisecond), webhook.WithLanes(2), webhook.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	select {} // until SIGKILL
}

// A Sender process SIGKILLed mid-delivery (a request in flight, events
// pending) loses nothing: the next Sender of the durable name delivers
// every event, each meeting in order.
func TestSender_SIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process and waits for an ack wait")
	}
	f := setupB(t, natsstore.WithListen("127.0.0.1:0")) // the child connects over TCP
	srv, src, eng, js := f.srv, f.src, f.eng, f.js

	rc := newReceiver(t, nil)
	var hang atomic.Bool // while set, the receiver holds requests (the child dies mid-request)
	var held atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			held.Add(1)
			time.Sleep(2 * time.Second)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("STAGE_WEBHOOK_CHILD=%s %s %s %s", srv.ClientURL(), src.Stream, src.Prefix, hs.URL))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Wait for the child's consumers, then append.
	waitFor(t, 20*time.Second, "the child's consumers", func() bool {
		_, err := js.Consumer(context.Background(), src.Stream, webhook.DefaultDurable+"-1")
		return err == nil
	})
	v1 := script(t, eng, "m1")
	waitFor(t, 20*time.Second, "some deliveries by the child", func() bool { return len(rc.versions()["m1"]) >= 3 })
	hang.Store(true)
	v2 := script(t, eng, "m2")
	waitFor(t, 20*time.Second, "a request in flight", func() bool { return held.Load() > 0 })
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	hang.Store(false)
	v3 := script(t, eng, "m3")

	s, err := webhook.New(js, src, []webhook.Endpoint{{Name: "media", URL: hs.URL, Secret: secret}},
		webhook.WithTimeout(500*time.Millisecond), webhook.WithLanes(2), webhook.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, 30*time.Second, "every event after the kill", func() bool {
		g := rc.versions()
		return uint64(len(g["m1"])) == v1 && uint64(len(g["m2"])) == v2 && uint64(len(g["m3"])) == v3
	})
	rc.check()
}
