package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/service/auth"
)

// testAuth accepts "user:<id>" and "backend"; anything else is unauthenticated.
var testAuth = auth.Func(func(_ context.Context, token string) (auth.Identity, error) {
	switch {
	case token == "backend":
		return auth.Identity{Backend: true}, nil
	case strings.HasPrefix(token, "user:"):
		return auth.Identity{UserID: strings.TrimPrefix(token, "user:")}, nil
	}
	return auth.Identity{}, auth.ErrUnauthenticated
})

type fixture struct {
	t   testing.TB
	eng *stage.Engine
	h   *Handler
	srv *httptest.Server
	c   *http.Client
}

func newFixture(t testing.TB, opts ...Option) *fixture {
	t.Helper()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureOn(t, eng, opts...)
}

func newFixtureOn(t testing.TB, eng *stage.Engine, opts ...Option) *fixture {
	t.Helper()
	h, err := New(eng, testAuth, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	f := &fixture{t: t, eng: eng, h: h, srv: srv, c: srv.Client()}
	t.Cleanup(func() {
		_ = h.Close()
		srv.Close()
		_ = eng.Close()
	})
	return f
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) problem(t testing.TB) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != ProblemContentType {
		t.Fatalf("content type %q, want %q (status %d, body %s)", ct, ProblemContentType, r.status, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type != ProblemTypePrefix+p.Code || p.Title == "" {
		t.Fatalf("problem %+v for status %d", p, r.status)
	}
	return p
}

func (r reply) result(t testing.TB) stage.Result {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var res stage.Result
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("result %s: %v", r.body, err)
	}
	return res
}

// do sends a request with token ("" for none), body (nil, a string, or a
// value to marshal) and extra headers (name, value pairs).
func (f *fixture) do(method, path, token string, body any, hdr ...string) reply {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// ok sends a request and fails unless it answers 200 with a Result.
func (f *fixture) ok(method, path, token string, body any, hdr ...string) stage.Result {
	f.t.Helper()
	return f.do(method, path, token, body, hdr...).result(f.t)
}

// fail sends a request and fails unless it answers status with code.
func (f *fixture) fail(status int, code, method, path, token string, body any, hdr ...string) Problem {
	f.t.Helper()
	r := f.do(method, path, token, body, hdr...)
	if r.status != status {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	p := r.problem(f.t)
	if p.Code != code {
		f.t.Fatalf("%s %s: code %q, want %q: %s", method, path, p.Code, code, r.body)
	}
	return p
}

func mpath(meeting, rest string) string { return "/v1/meetings/" + meeting + rest }

// addMeeting adds alice (host), hank (host), bob, carol and dave (CanRequest) to meeting.
func (f *fixture) addMeeting(meeting string) {
	f.t.Helper()
	for _, p := range []ParticipantBody{
		{User: "alice", Permissions: host}, {User: "hank", Permissions: host},
		{User: "bob", Permissions: requester}, {User: "carol", Permissions: requester}, {User: "dave", Permissions: requester},
	} {
		f.ok("POST", mpath(meeting, "/participants"), "backend", p)
	}
}

// sseEvent is one event, or one comment, read from a stream.
type sseEvent struct {
	ID, Event, Data string
	Comment         string
}

// stream is a real SSE client reading the response line by line.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
	ev     chan sseEvent
	done   chan error // the read loop's end (io.EOF for a clean end)
}

func (f *fixture) openStream(meeting, token, lastID string) (*stream, reply) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", f.srv.URL+mpath(meeting, "/events"), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := f.c.Do(req)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, reply{status: resp.StatusCode, header: resp.Header, body: data}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		f.t.Fatalf("content type %q", ct)
	}
	s := &stream{resp: resp, cancel: cancel, ev: make(chan sseEvent, 1024), done: make(chan error, 1)}
	go s.read()
	f.t.Cleanup(s.close)
	return s, reply{status: resp.StatusCode}
}

func (s *stream) read() {
	br := bufio.NewReader(s.resp.Body)
	var cur sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.done <- err
			close(s.ev)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur != (sseEvent{}) {
				s.ev <- cur
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
			cur.Comment = strings.TrimSpace(line[1:])
		default:
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "id":
				cur.ID = value
			case "event":
				cur.Event = value
			case "data":
				cur.Data += value
			}
		}
	}
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event (comments skipped), failing after a timeout.
func (s *stream) next(t testing.TB) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-s.ev:
			if !ok {
				t.Fatalf("stream ended: %v", <-s.done)
			}
			if e.Event == "" && e.Comment != "" {
				continue
			}
			return e
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

// nextType reads events until one of type typ, returning it and the ones before.
func (s *stream) until(t testing.TB, typ string) (sseEvent, []sseEvent) {
	t.Helper()
	var before []sseEvent
	for {
		e := s.next(t)
		if e.Event == typ {
			return e, before
		}
		before = append(before, e)
	}
}

// notification decodes an event's data.
type note struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Recipient string `json:"recipient"`
	User      string `json:"user"`
	Status    string `json:"status"`
	Event     string `json:"event"`
}

func decodeNote(t testing.TB, e sseEvent) note {
	t.Helper()
	var n note
	if err := json.Unmarshal([]byte(e.Data), &n); err != nil {
		t.Fatalf("event %+v: %v", e, err)
	}
	if n.ID != e.ID || n.Type != e.Event {
		t.Fatalf("event %+v: data says id %q type %q", e, n.ID, n.Type)
	}
	return n
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
