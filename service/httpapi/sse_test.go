package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/projections"
)

// TestEvents_ownAndBroadcast: bob sees his own notifications and the
// roster broadcasts; carol sees the broadcasts, never bob's.
func TestEvents_ownAndBroadcast(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	bob, _ := f.openStream(m, "user:bob", "")
	carol, _ := f.openStream(m, "user:carol", "")
	bob.until(t, "live")
	carol.until(t, "live")
	if n := f.h.hub.subscribers(m); n != 2 {
		t.Fatalf("one router for both streams: %d subscribers", n)
	}

	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
	f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
	f.ok("POST", mpath(m, "/stage/join"), "user:bob", nil)
	f.ok("POST", mpath(m, "/stage/leave"), "user:bob", nil)
	// A marker for carol: her own request, after everything of bob's.
	f.ok("POST", mpath(m, "/stage/requests"), "user:carol", nil)

	var got []string
	for len(got) < 7 {
		n := decodeNote(t, bob.next(t))
		if n.Recipient != "bob" && n.Recipient != "" {
			t.Fatalf("bob got %+v", n)
		}
		got = append(got, n.Type+"/"+n.Status)
	}
	want := []string{"stageStatusUpdate/RequestedToJoinStage", "stageStatusUpdate/AcceptedToJoinStage", "stageRequestApproved/",
		"stageStatusUpdate/OnStage", "stageRosterUpdate/", "stageStatusUpdate/OffStage", "stageRosterUpdate/"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("bob got\n%v\nwant\n%v", got, want)
	}

	var carolGot []string
	for {
		n := decodeNote(t, carol.next(t))
		if n.Recipient != "carol" && n.Recipient != "" {
			t.Fatalf("carol got %+v", n)
		}
		carolGot = append(carolGot, n.Type+"/"+n.Status)
		if n.Type == "stageStatusUpdate" && n.Recipient == "carol" {
			break
		}
	}
	if want := "stageRosterUpdate/ stageRosterUpdate/ stageStatusUpdate/RequestedToJoinStage"; strings.Join(carolGot, " ") != want {
		t.Fatalf("carol got %v, want %s", carolGot, want)
	}
	// Hosts get the queue.
	alice, _ := f.openStream(m, "user:alice", "0")
	var sawQueue bool
	for !sawQueue {
		e := alice.next(t)
		sawQueue = e.Event == "newStageRequest"
		if e.Event == "live" {
			t.Fatal("alice's replay had no newStageRequest")
		}
	}
	// Only participants get a stream.
	_, r := f.openStream(m, "user:zed", "")
	if p := r.problem(t); r.status != 404 || p.Code != "NotParticipant" {
		t.Fatalf("zed: %d %s", r.status, r.body)
	}
	_, r = f.openStream(m, "user:bob", "not-an-id")
	if p := r.problem(t); r.status != 400 || p.Code != "InvalidCommand" {
		t.Fatalf("bad Last-Event-ID: %d %s", r.status, r.body)
	}
}

// TestEvents_resume: a stream cut in the middle and resumed with
// Last-Event-ID misses nothing and repeats nothing: the two sessions
// together are what one uninterrupted stream from the same point gets.
func TestEvents_resume(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	s1, _ := f.openStream(m, "user:bob", "")
	live, _ := s1.until(t, "live")
	cycle := func() {
		f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
		f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
		f.ok("POST", mpath(m, "/stage/join"), "user:bob", nil)
		f.ok("POST", mpath(m, "/stage/requests"), "user:carol", nil)
		f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"carol"}})
		f.ok("POST", mpath(m, "/stage/join"), "user:carol", nil)
		f.ok("POST", mpath(m, "/stage/leave"), "user:carol", nil)
		f.ok("POST", mpath(m, "/stage/leave"), "user:bob", nil)
	}
	cycle()
	var ids []string
	for range 5 { // part of what the first cycle sent
		ids = append(ids, s1.next(t).ID)
	}
	s1.close()
	cycle() // while bob is away
	cycle()
	s2, _ := f.openStream(m, "user:bob", ids[len(ids)-1])
	for {
		e := s2.next(t)
		if e.Event == "live" {
			break
		}
		ids = append(ids, e.ID)
	}
	cycle() // live again
	head, _ := f.eng.Roster(context.Background(), m)
	for {
		e := s2.next(t)
		ids = append(ids, e.ID)
		id, err := projections.ParseNotificationID(e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if id.Version == head.Version && e.Event == "stageRosterUpdate" {
			break
		}
	}
	// The reference: one stream resumed at the first session's live point.
	ref, _ := f.openStream(m, "user:bob", live.ID)
	var want []string
	for len(want) < len(ids) {
		e := ref.next(t)
		if e.Event != "live" {
			want = append(want, e.ID)
		}
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("resumed\n%v\nwant\n%v", ids, want)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

func TestEvents_heartbeat(t *testing.T) {
	f := newFixture(t, WithHeartbeat(20*time.Millisecond))
	m := "m1"
	f.addMeeting(m)
	s, _ := f.openStream(m, "user:bob", "")
	beats := 0
	timeout := time.After(10 * time.Second)
	for beats < 3 {
		select {
		case e, ok := <-s.ev:
			if !ok {
				t.Fatal("stream ended")
			}
			if e.Comment == "heartbeat" && e.Event == "" {
				beats++
			}
		case <-timeout:
			t.Fatalf("%d heartbeats in 10s", beats)
		}
	}
}

// TestEvents_shutdown: Shutdown ends every stream with a Closed error
// event and a clean end of the response, closes the routers, and later
// streams are refused.
func TestEvents_shutdown(t *testing.T) {
	f := newFixture(t)
	f.addMeeting("m1")
	f.addMeeting("m2")
	var ss []*stream
	for _, c := range []struct{ m, tok string }{{"m1", "user:bob"}, {"m1", "user:carol"}, {"m2", "user:bob"}} {
		s, _ := f.openStream(c.m, c.tok, "")
		s.until(t, "live")
		ss = append(ss, s)
	}
	if f.h.Streams() != 3 {
		t.Fatalf("%d streams", f.h.Streams())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range ss {
		e := s.next(t)
		var p Problem
		if e.Event != "error" || json.Unmarshal([]byte(e.Data), &p) != nil || p.Code != "Closed" || p.Status != 503 {
			t.Fatalf("stream %d: %+v", i, e)
		}
		select {
		case err := <-s.done:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream %d ended with %v, want a clean EOF", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %d did not end", i)
		}
	}
	if f.h.Streams() != 0 || f.h.hub.subscribers("m1") != -1 || f.h.hub.subscribers("m2") != -1 {
		t.Fatalf("after shutdown: %d streams, routers %d %d", f.h.Streams(), f.h.hub.subscribers("m1"), f.h.hub.subscribers("m2"))
	}
	_, r := f.openStream("m1", "user:bob", "")
	if p := r.problem(t); r.status != 503 || p.Code != "Closed" {
		t.Fatalf("after shutdown: %d %s", r.status, r.body)
	}
}

// TestEvents_vanishedClient: a client that goes away is unsubscribed, and
// the meeting's router closes with its last stream.
func TestEvents_vanishedClient(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	a, _ := f.openStream(m, "user:bob", "")
	b, _ := f.openStream(m, "user:carol", "")
	a.until(t, "live")
	b.until(t, "live")
	if n := f.h.hub.subscribers(m); n != 2 {
		t.Fatalf("%d subscribers", n)
	}
	a.close() // the connection goes away without a word
	waitFor(t, "bob's subscription to drop", func() bool { return f.h.hub.subscribers(m) == 1 && f.h.Streams() == 1 })
	// carol's stream still works.
	f.ok("POST", mpath(m, "/stage/requests"), "user:carol", nil)
	if n := decodeNote(t, b.next(t)); n.Recipient != "carol" {
		t.Fatalf("carol got %+v", n)
	}
	b.close()
	waitFor(t, "the router to close", func() bool { return f.h.hub.subscribers(m) == -1 && f.h.Streams() == 0 })
	// A new stream starts a new router.
	c, _ := f.openStream(m, "user:bob", "")
	c.until(t, "live")
	if n := f.h.hub.subscribers(m); n != 1 {
		t.Fatalf("%d subscribers", n)
	}
}

// TestEvents_slowConsumer: a stream whose subscription overflows ends with
// a SlowConsumer error event after what it had taken; the client resumes
// with Last-Event-ID, and what it got over both sessions is exactly the
// meeting's notifications for it (read from the engine): no gap, no
// duplicate.
func TestEvents_slowConsumer(t *testing.T) {
	f := newFixture(t, WithSubscriberBuffer(1))
	var armed atomic.Bool
	gate := make(chan struct{})
	f.h.beforeWrite = func() {
		if armed.Load() {
			<-gate
		}
	}
	m := "m1"
	f.addMeeting(m)
	s, _ := f.openStream(m, "user:bob", "")
	live, _ := s.until(t, "live")
	armed.Store(true) // the stream now stalls on its next notification
	const cycles = 3
	for range cycles {
		f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
		f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob"}})
		f.ok("POST", mpath(m, "/stage/leave"), "user:bob", nil)
	}
	waitFor(t, "the router to drop the stalled stream", func() bool { return f.h.hub.subscribers(m) == 0 })
	armed.Store(false)
	close(gate)

	var want []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for n, err := range f.eng.WatchAfter(ctx, m, live.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if n.Type == projections.Live {
			break
		}
		if n.Recipient == "bob" || n.Recipient == projections.Everyone {
			want = append(want, n.ID)
		}
	}
	var got []string
	last, sessions := live.ID, 1
	for len(got) < len(want) {
		e := s.next(t)
		switch e.Event {
		case "error":
			var p Problem
			if json.Unmarshal([]byte(e.Data), &p) != nil || p.Code != "SlowConsumer" || p.Status != 503 {
				t.Fatalf("error event %+v", e)
			}
			if err := <-s.done; !errors.Is(err, io.EOF) {
				t.Fatalf("slow stream ended with %v", err)
			}
			if sessions == 1 && len(got) == 0 {
				t.Fatal("the slow stream wrote nothing before its end, not even the notification it had taken")
			}
			s.close()
			s, _ = f.openStream(m, "user:bob", last)
			sessions++
		case "live":
		default:
			got = append(got, e.ID)
			last = e.ID
		}
	}
	if sessions != 2 {
		t.Fatalf("%d sessions, want 2", sessions)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("over %d sessions got\n%v\nwant\n%v", sessions, got, want)
	}
}

// TestEvents_stalledClient: a client that stops reading (its connection
// stays open) is dropped after the stream write timeout, and Shutdown does
// not wait for it.
func TestEvents_stalledClient(t *testing.T) {
	f := newFixture(t, WithStreamWriteTimeout(200*time.Millisecond), WithSubscriberBuffer(1<<16))
	m := "m1"
	f.addMeeting(m)
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer user:bob\r\n\r\n", mpath(m, "/events"))
	waitFor(t, "the stream", func() bool { return f.h.hub.subscribers(m) == 1 })
	ctx := context.Background()
	reason := strings.Repeat("r", aggregate.MaxReasonLen)
	deadline := time.Now().Add(30 * time.Second)
	cycles := 0
	for f.h.Streams() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled stream is still open after %d cycles", cycles)
		}
		for range 50 {
			if _, err := f.eng.RequestAccess(ctx, m, "bob"); err != nil {
				t.Fatal(err)
			}
			if _, err := f.eng.DenyAccess(ctx, m, "alice", []string{"bob"}, stage.WithReason(reason)); err != nil {
				t.Fatal(err)
			}
			cycles++
		}
	}
	waitFor(t, "the router to close", func() bool { return f.h.hub.subscribers(m) == -1 })
	t.Logf("dropped after %d request-deny cycles", cycles)
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := f.h.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}
