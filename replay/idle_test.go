package replay_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/replay"
)

// stallingProxy forwards TCP connections to the server at serverURL, and
// stops passing the server's bytes on (holding the connection open) once
// stall is set: a server that hangs in the middle of a read.
func stallingProxy(t *testing.T, serverURL string) (string, *atomic.Bool) {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stall, done atomic.Bool
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		done.Store(true)
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go io.Copy(s, c)
			go func() {
				buf := make([]byte, 1<<15)
				for {
					n, err := s.Read(buf)
					for stall.Load() && !done.Load() {
						time.Sleep(10 * time.Millisecond)
					}
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String(), &stall
}

// A server that stops sending in the middle of a read: the read gives up
// after the idle timeout and reports the rest of the stream as gone.
func TestJetStream_idleTimeout(t *testing.T) {
	ctx := context.Background()
	srv := startNATS(t)
	nc, err := nats.Connect(srv, nats.UserInfo("auditor", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STAGE", Subjects: []string{"stage.events.>"}}); err != nil {
		t.Fatal(err)
	}
	const n = 3000 // more than the consumer's first batch
	for range n {
		if _, err := js.PublishAsync("stage.events.m", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish did not complete")
	}
	proxy, stall := stallingProxy(t, srv)
	idle := 300 * time.Millisecond
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	src, err := replay.Open(rctx, proxy, replay.WithNATSOptions(nats.UserInfo("auditor", "s3cret")), replay.WithIdleTimeout(idle),
		replay.WithProgress(func(done, total int64) { stall.Store(true) })) // from the first message on
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	start := time.Now()
	rep, err := replay.Verify(rctx, src.Events(rctx, ""))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v with an idle timeout of %v", d, idle)
	}
	last := rep.Findings[len(rep.Findings)-1]
	var le *replay.LostError
	if last.Kind != replay.Truncated || !errors.As(last.Err, &le) || le.Idle != idle || le.To != n || rep.Events >= n ||
		!strings.Contains(last.Reason, "stream STAGE reports last sequence 3000 but no message came within 300ms after sequence") {
		t.Fatalf("last finding %v (%d events read)", last, rep.Events)
	}
}
