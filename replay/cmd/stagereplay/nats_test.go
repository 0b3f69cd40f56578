package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// TestJetStream replays the fixed log from a JetStream stream on an
// in-process server that requires a password.
func TestJetStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: "auditor", Password: "s3cret", NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	defer ns.Shutdown()
	url := ns.ClientURL()

	ctx := context.Background()
	nc, err := nats.Connect(url, nats.UserInfo("auditor", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.stage.>"}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(webinar)
	if err != nil {
		t.Fatal(err)
	}
	for e, err := range replay.ReadJSONL(f, webinar) {
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = 0
		data, _ := events.Marshal(&e)
		if _, err := js.Publish(ctx, "audit.stage."+e.MeetingID, data); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	flags := []string{"--stream", "AUDIT", "--subject-prefix", "audit.stage", "--nats-user", "auditor", "--nats-password", "s3cret"}
	for _, c := range [][]string{{"roster", url, "--json"}, {"history", url}} {
		code, got, errs := stagereplay(t, append(c, flags...)...)
		if code != exitOK {
			t.Fatalf("%v: %s", c, errs)
		}
		fromFile := []string{c[0], webinar}
		_, want, _ := stagereplay(t, append(fromFile, c[2:]...)...)
		if got != want {
			t.Errorf("%s from JetStream differs from the file", c[0])
		}
	}
	if code, out, errs := stagereplay(t, append([]string{"verify", url}, flags...)...); code != exitOK {
		t.Errorf("verify: %s %s", out, errs)
	}
	code, _, errs := stagereplay(t, "verify", url, "--stream", "NOPE", "--nats-user", "auditor", "--nats-password", "s3cret")
	if code != exitError || !strings.Contains(errs, `no stream "NOPE"`) {
		t.Errorf("missing stream: exit %d: %s", code, errs)
	}
	code, _, errs = stagereplay(t, "verify", url, "--stream", "AUDIT", "--nats-user", "auditor", "--nats-password", "wrong")
	if code != exitError || !strings.Contains(errs, "connect to") {
		t.Errorf("bad password: exit %d: %s", code, errs)
	}
}
