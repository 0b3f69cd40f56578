package httpapi

// TestFailover: two service instances (each a natsstore.Store, a
// stage.Engine and a Handler behind its own httptest server, on its own
// NATS connection) over a three-node in-process JetStream cluster with an
// R3 stream. Clients issue commands over real HTTP with Idempotency-Key
// and retry a failed request with the same key on the other instance; SSE
// clients resume with Last-Event-ID on the other instance when their
// stream drops (some of them drop their connection now and then, as a
// mobile client would). Under that load the stream's leader node is shut down,
// then one instance is closed abruptly (its client connections cut, its
// Engine closed). The checks are on correctness only, never on timings:
//
//   - the log (read with a fresh Store) has an unbroken hash chain and
//     versions, and no command's events twice (by command id, the
//     Idempotency-Key);
//   - every command answered 2xx is in the log exactly as answered (its
//     events, at their versions): nothing acknowledged is lost;
//   - no command answered with a rule's rejection is in the log;
//   - every SSE client's notification ids, across all its reconnects, are
//     exactly what a fresh Engine's WatchAfter from the client's first live
//     point yields for that user (its own and everyone's): no gap, no
//     duplicate, nothing of another user;
//   - no instance's store claims a history loss (the log lost nothing, so
//     a claim would refuse a meeting's appends for no reason).
//
// The default run takes a few seconds of load; -failover.soak=2m runs
// each phase (before the leader stops, between, after the instance
// closes) for a third of that.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/internal/natstest"
	"github.com/productdb/stage/projections"
)

var failoverSoak = flag.Duration("failover.soak", 0, "run TestFailover's load for this long in all (default: a short CI run)")

// foGuard bounds every wait that only guards against a hang.
const foGuard = 2 * time.Minute

// foCmdGuard bounds the retries of one command: a client gives up on a
// command without a definitive answer after that long (the test then
// fails).
const foCmdGuard = 45 * time.Second

func foWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(foGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", foGuard, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func foDial(t testing.TB, urls ...string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var foOpts = []natsstore.Option{natsstore.WithReplicas(3)}

// foInstance is one service instance: its connection, store, engine,
// handler and HTTP server.
type foInstance struct {
	name string
	nc   *nats.Conn
	st   *natsstore.Store
	eng  *stage.Engine
	h    *Handler
	srv  *httptest.Server
}

func foStart(t testing.TB, name string, urls []string) *foInstance {
	t.Helper()
	nc := foDial(t, urls...)
	ctx, cancel := context.WithTimeout(context.Background(), foGuard)
	defer cancel()
	st, err := natsstore.New(ctx, nc, foOpts...)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(st, stage.WithRetry(200, time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(eng, testAuth, WithHeartbeat(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	in := &foInstance{name: name, nc: nc, st: st, eng: eng, h: h, srv: httptest.NewServer(h)}
	t.Cleanup(func() {
		in.srv.CloseClientConnections()
		_ = h.Close()
		in.srv.Close()
		_ = eng.Close()
		_ = st.Close()
	})
	return in
}

// kill closes the instance abruptly: every client connection is cut, the
// Engine closed under the requests in flight, then the server stops.
func (in *foInstance) kill(t testing.TB) {
	t.Helper()
	in.srv.CloseClientConnections()
	_ = in.eng.Close()
	in.srv.CloseClientConnections()
	closed := make(chan struct{})
	go func() { in.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(foGuard):
		t.Fatalf("instance %s: server did not close within %v", in.name, foGuard)
	}
}

// The meetings' people: hosts, viewers who may request, a speaker.
var (
	foHosts    = []string{"alice", "hank"}
	foViewers  = []string{"bob", "carol", "dave"}
	foSpeakers = []string{"erin"}
	foWatchers = []string{"alice", "bob", "carol", "erin"} // who holds an SSE stream
)

// foCmd is one command as a client sends it.
type foCmd struct {
	method, path, token string
	body                []byte
}

func foUsers(r *rand.Rand, from []string) []byte {
	n := 1 + r.IntN(2)
	var us []string
	for range n {
		us = append(us, from[r.IntN(len(from))])
	}
	b, _ := json.Marshal(UsersBody{Users: us})
	return b
}

func foDraw(r *rand.Rand, m string) foCmd {
	all := append(append(slices.Clone(foViewers), foSpeakers...), foHosts...)
	requester := all[r.IntN(len(all))]
	host := foHosts[r.IntN(len(foHosts))]
	others := append(slices.Clone(foViewers), foSpeakers...)
	switch r.IntN(10) {
	case 0, 1, 2:
		return foCmd{"POST", mpath(m, "/stage/requests"), "user:" + requester, nil}
	case 3:
		return foCmd{"DELETE", mpath(m, "/stage/requests"), "user:" + requester, nil}
	case 4, 5:
		return foCmd{"POST", mpath(m, "/stage/grant"), "user:" + host, foUsers(r, others)}
	case 6:
		return foCmd{"POST", mpath(m, "/stage/deny"), "user:" + host, foUsers(r, others)}
	case 7:
		return foCmd{"POST", mpath(m, "/stage/join"), "user:" + requester, nil}
	case 8:
		return foCmd{"POST", mpath(m, "/stage/leave"), "user:" + requester, nil}
	default:
		return foCmd{"POST", mpath(m, "/stage/kick"), "user:" + host, foUsers(r, others)}
	}
}

// foAck is an acknowledged command: its meeting and its result.
type foAck struct {
	meeting string
	what    string
	res     stage.Result
}

// foClient sends commands to the instances, retrying a failed request
// with the same Idempotency-Key on the other instance.
type foClient struct {
	c    *http.Client
	urls []string

	mu       sync.Mutex
	acks     map[string]foAck  // key -> acknowledged
	rejected map[string]string // key -> meeting, rejected by a rule
	unknown  map[string]string // key -> meeting, no definitive answer
	ackAt    []time.Time       // when each acknowledged attempt began
	odd      []string          // unexpected answers
	retries  atomic.Int64      // failed attempts retried
	dupes    atomic.Int64      // acknowledgements with Duplicate set
	statuses map[string]int64  // failed attempts by status or error kind
}

func newFoClient(urls []string) *foClient {
	return &foClient{
		c:    &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}},
		urls: urls, acks: map[string]foAck{}, rejected: map[string]string{}, unknown: map[string]string{},
		statuses: map[string]int64{},
	}
}

// attempt sends cmd once to url and classifies the answer: acknowledged
// (res), rejected by a rule, or failed (retry elsewhere).
func (fc *foClient) attempt(url, key string, cmd foCmd) (res stage.Result, rejected, ok bool, failure string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if cmd.body != nil {
		body = bytes.NewReader(cmd.body)
	}
	req, err := http.NewRequestWithContext(ctx, cmd.method, url+cmd.path, body)
	if err != nil {
		return res, false, false, "request: " + err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+cmd.token)
	req.Header.Set("Idempotency-Key", key)
	if cmd.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := fc.c.Do(req)
	if err != nil {
		return res, false, false, "transport"
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, false, false, "transport"
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, &res); err != nil {
			fc.oddf("%s %s: 2xx with a bad result %s: %v", cmd.method, cmd.path, data, err)
			return res, false, false, "bad result"
		}
		return res, false, true, ""
	}
	var p Problem
	if err := json.Unmarshal(data, &p); err != nil {
		return res, false, false, fmt.Sprintf("%d (no problem body)", resp.StatusCode)
	}
	switch {
	case p.Rejection != nil || p.Rejected != nil:
		return res, true, false, ""
	case resp.StatusCode >= 500 || resp.StatusCode == stage.StatusClientClosedRequest || p.Code == stage.CodeConflict:
		return res, false, false, fmt.Sprintf("%d %s", resp.StatusCode, p.Code)
	default:
		fc.oddf("%s %s as %s: unexpected answer %d %s", cmd.method, cmd.path, cmd.token, resp.StatusCode, data)
		return res, false, false, "odd"
	}
}

func (fc *foClient) oddf(format string, args ...any) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.odd) < 20 {
		fc.odd = append(fc.odd, fmt.Sprintf(format, args...))
	}
}

// send runs cmd with a fresh key until it gets a definitive answer,
// starting on instance first and moving to the other after each failure,
// for at most foCmdGuard.
func (fc *foClient) send(m string, first int, cmd foCmd) {
	key := uuid.NewString()
	began := time.Now()
	for i := first; ; i++ {
		attempt := time.Now()
		res, rejected, ok, failure := fc.attempt(fc.urls[i%len(fc.urls)], key, cmd)
		fc.mu.Lock()
		switch {
		case ok:
			fc.acks[key] = foAck{meeting: m, what: cmd.method + " " + cmd.path + " " + cmd.token, res: res}
			fc.ackAt = append(fc.ackAt, attempt)
			delete(fc.unknown, key)
			if res.Duplicate {
				fc.dupes.Add(1)
			}
		case rejected:
			fc.rejected[key] = m
			delete(fc.unknown, key)
		case failure == "odd" || time.Since(began) > foCmdGuard:
			fc.unknown[key] = m
		default:
			fc.statuses[failure]++
			fc.unknown[key] = m // until a definitive answer
		}
		fc.mu.Unlock()
		if ok || rejected || failure == "odd" || time.Since(began) > foCmdGuard {
			if !ok && !rejected && failure != "odd" {
				fc.oddf("%s %s (key %s): no definitive answer within %v, last %s", cmd.method, cmd.path, key, foCmdGuard, failure)
			}
			return
		}
		fc.retries.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

// acksSince counts the acknowledged attempts begun at or after t0.
func (fc *foClient) acksSince(t0 time.Time) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	n := 0
	for _, a := range fc.ackAt {
		if !a.Before(t0) {
			n++
		}
	}
	return n
}

// foStream is an SSE client of one user: it reads the user's events and,
// when its stream drops, reconnects to the other instance with
// Last-Event-ID, as an EventSource does (the last id it saw, a live
// event's included).
type foStream struct {
	meeting, user string
	c             *http.Client
	urls          []string
	// drops, when set, ends each session after a random time under it, as
	// a flaky mobile network would (the client resumes elsewhere).
	drops time.Duration
	rnd   *rand.Rand // used by the run goroutine only

	mu         sync.Mutex
	start      string   // the id of the first live event: where it began
	got        []string // every notification id but live ones, in order
	lastID     string
	reconnects int
	odd        []string
	lives      int
}

func (s *foStream) oddf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.odd) < 10 {
		s.odd = append(s.odd, fmt.Sprintf(format, args...))
	}
}

func (s *foStream) snapshot() (start string, got []string, reconnects int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start, slices.Clone(s.got), s.reconnects
}

// run reads until ctx ends, starting on instance first.
func (s *foStream) run(ctx context.Context, first int) {
	for i := first; ctx.Err() == nil; i++ {
		s.session(ctx, s.urls[i%len(s.urls)])
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.reconnects++
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// session is one connection: it returns when the stream ends.
func (s *foStream) session(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+mpath(s.meeting, "/events"), nil)
	if err != nil {
		s.oddf("request: %v", err)
		return
	}
	req.Header.Set("Authorization", "Bearer user:"+s.user)
	req.Header.Set("Accept", "text/event-stream")
	s.mu.Lock()
	last := s.lastID
	s.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return // the instance is down or the connection dropped: the other one
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 500 {
			s.oddf("stream refused with Last-Event-ID %q: %d %s", last, resp.StatusCode, data)
		}
		return
	}
	// A stream that shows nothing, not even a heartbeat, for this long is
	// dead to its client: it drops it and resumes elsewhere.
	idle := time.AfterFunc(10*time.Second, func() { resp.Body.Close() })
	defer idle.Stop()
	if s.drops > 0 {
		drop := time.AfterFunc(time.Duration(s.rnd.Int64N(int64(s.drops))), func() { resp.Body.Close() })
		defer drop.Stop()
	}
	br := bufio.NewReader(resp.Body)
	var cur sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		idle.Reset(10 * time.Second)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if cur.Event != "" && !s.take(cur) {
				return
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
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

// take records one event; false ends the session (an error event).
func (s *foStream) take(e sseEvent) bool {
	if e.Event == "error" {
		return false
	}
	var n struct {
		ID, Type, Recipient string
	}
	if err := json.Unmarshal([]byte(e.Data), &n); err != nil || n.ID != e.ID || n.Type != e.Event {
		s.oddf("event %+v does not match its data (%v)", e, err)
		return false
	}
	if n.Recipient != s.user && n.Recipient != projections.Everyone {
		s.oddf("%s got %s's notification %s", s.user, n.Recipient, n.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.ID != "" {
		s.lastID = e.ID
	}
	if e.Event == string(projections.Live) {
		s.lives++
		if s.start == "" {
			s.start = e.ID
		}
		return true
	}
	if s.start == "" {
		s.odd = append(s.odd, "a notification before the first live event: "+e.ID)
		return true
	}
	s.got = append(s.got, e.ID)
	return true
}

func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	phase := 1500 * time.Millisecond
	if *failoverSoak > 0 {
		phase = *failoverSoak / 3
	}
	servers := natstest.StartCluster(t, "stage")
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	foWait(t, "a JetStream meta leader", func() bool {
		return slices.ContainsFunc(servers, (*server.Server).JetStreamIsLeader)
	})
	admin := foDial(t, urls...)
	foWait(t, "the cluster to create the R3 stream", func() bool {
		// A request sent while the cluster settles may get no answer: bound each.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := natsstore.New(ctx, admin, foOpts...)
		if err == nil {
			st.Close()
		}
		return err == nil
	})

	// Two instances, each knowing every server but starting from its own.
	var inst []*foInstance
	var httpURLs []string
	for i := range 2 {
		in := foStart(t, fmt.Sprintf("i%d", i), append(slices.Clone(urls[i:]), urls[:i]...))
		inst = append(inst, in)
		httpURLs = append(httpURLs, in.srv.URL)
	}
	cl := newFoClient(httpURLs)
	meetings := []string{"fo0", "fo1"}
	for _, m := range meetings {
		for _, u := range slices.Concat(foHosts, foViewers, foSpeakers) {
			perm := aggregate.Permissions{StageAccess: aggregate.CanRequest}
			switch {
			case slices.Contains(foHosts, u):
				perm = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
			case slices.Contains(foSpeakers, u):
				perm = aggregate.Permissions{StageAccess: aggregate.Allowed}
			}
			b, _ := json.Marshal(ParticipantBody{User: u, Permissions: perm})
			cl.send(m, 0, foCmd{"POST", mpath(m, "/participants"), "backend", b})
		}
	}
	if cl.acksSince(time.Time{}) != len(meetings)*len(slices.Concat(foHosts, foViewers, foSpeakers)) {
		t.Fatalf("seeding: %d acknowledged; %v", cl.acksSince(time.Time{}), cl.odd)
	}

	// The SSE clients, on both instances.
	sseCtx, stopSSE := context.WithCancel(context.Background())
	defer stopSSE()
	sseClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var streams []*foStream
	var sseWG sync.WaitGroup
	for _, m := range meetings {
		for _, u := range foWatchers {
			s := &foStream{meeting: m, user: u, c: sseClient, urls: httpURLs}
			if u == "bob" || u == "erin" { // these clients' networks drop now and then
				s.drops, s.rnd = 400*time.Millisecond, rand.New(rand.NewPCG(uint64(len(streams)), uint64(time.Now().UnixNano())))
			}
			first := len(streams) % 2
			streams = append(streams, s)
			sseWG.Go(func() { s.run(sseCtx, first) })
		}
	}
	defer func() { stopSSE(); sseWG.Wait() }()
	foWait(t, "every SSE client's first live event", func() bool {
		for _, s := range streams {
			if start, _, _ := s.snapshot(); start == "" {
				return false
			}
		}
		return true
	})

	// The load: each worker starts on its own instance.
	stopLoad := make(chan struct{})
	var loadWG sync.WaitGroup
	for w := range 4 {
		r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		loadWG.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				m := meetings[r.IntN(len(meetings))]
				cl.send(m, w, foDraw(r, m))
			}
		})
	}
	loadStopped := false
	stop := func() {
		if !loadStopped {
			loadStopped = true
			close(stopLoad)
			loadWG.Wait()
		}
	}
	defer stop()

	t0 := time.Now()
	foWait(t, "commands before the failover", func() bool { return cl.acksSince(t0) >= 20 })
	time.Sleep(phase)

	// Stop the stream's leader node, named by the stream's info.
	leader := -1
	foWait(t, "the stream's leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		js, err := jetstream.New(admin)
		if err != nil {
			return false
		}
		str, err := js.Stream(ctx, natsstore.DefaultStream)
		if err != nil {
			return false
		}
		info, err := str.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		for i, s := range servers {
			if s.Name() == info.Cluster.Leader {
				leader = i
			}
		}
		return leader >= 0
	})
	leaderStopped := time.Now()
	servers[leader].Shutdown()
	foWait(t, "a command begun after the leader stopped to be acknowledged", func() bool { return cl.acksSince(leaderStopped) > 0 })
	afterLeader := time.Since(leaderStopped)
	time.Sleep(phase)

	// Close instance 0 abruptly.
	killed := time.Now()
	inst[0].kill(t)
	killTook := time.Since(killed)
	foWait(t, "a command begun after the instance closed to be acknowledged", func() bool { return cl.acksSince(killed) > 0 })
	afterKill := time.Since(killed)
	time.Sleep(phase)
	stop()
	loadTime := time.Since(t0)

	// A fresh Store and Engine on a surviving node read what was stored.
	survivor := servers[(leader+1)%3]
	nc := foDial(t, survivor.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*foGuard)
	defer cancel()
	var st *natsstore.Store
	foWait(t, "a fresh store on a surviving node", func() bool {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		st, err = natsstore.New(c, nc, foOpts...)
		return err == nil
	})
	defer st.Close()
	fresh, err := stage.New(st)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()

	// The log: chain, no command twice, every acknowledgement as answered.
	type run struct {
		meeting     string
		first, last uint64
		ids         []uuid.UUID
	}
	logged := map[string]*run{}
	nEvents := 0
	for _, m := range meetings {
		s := aggregate.NewState(m)
		for e, err := range st.Load(ctx, m, 0) {
			if err != nil {
				t.Fatalf("reading %s: %v", m, err)
			}
			if err := eventstore.CheckNext(&e, s.Version(), s.LastHash()); err != nil {
				t.Fatalf("meeting %s: %v", m, err)
			}
			aggregate.Evolve(s, &e)
			nEvents++
			r := logged[e.CommandID]
			switch {
			case r == nil:
				logged[e.CommandID] = &run{meeting: m, first: e.Version, last: e.Version, ids: []uuid.UUID{e.ID}}
			case r.meeting == m && r.last == e.Version-1:
				r.last = e.Version
				r.ids = append(r.ids, e.ID)
			default:
				t.Errorf("meeting %s version %d: command %s applied again (first at %s version %d)", m, e.Version, e.CommandID, r.meeting, r.first)
			}
		}
	}
	cl.mu.Lock()
	lost, acked := 0, len(cl.acks)
	for key, a := range cl.acks {
		r := logged[key]
		var ids []uuid.UUID
		for _, e := range a.res.Events {
			ids = append(ids, e.ID)
		}
		if r == nil || r.meeting != a.meeting || len(a.res.Events) == 0 ||
			r.first != a.res.Events[0].Version || r.last != a.res.Events[len(a.res.Events)-1].Version || !slices.Equal(r.ids, ids) {
			lost++
			t.Errorf("acknowledged %s (key %s, versions %v) is not in the log as answered (log: %+v)", a.what, key, ids, r)
		}
	}
	for key, m := range cl.rejected {
		if r := logged[key]; r != nil {
			t.Errorf("command %s on %s was answered with a rejection, yet it is in the log at versions %d-%d", key, m, r.first, r.last)
		}
	}
	for _, o := range cl.odd {
		t.Errorf("client: %s", o)
	}
	nRejected, nUnknown := len(cl.rejected), len(cl.unknown)
	statuses := fmt.Sprint(cl.statuses)
	cl.mu.Unlock()

	// Each SSE client: what it got across its reconnects is what a fresh
	// watch from its first live point yields for its user.
	totalReconnects, totalNotes := 0, 0
	for _, s := range streams {
		start, _, _ := s.snapshot()
		var want []string
		for n, err := range fresh.WatchAfter(ctx, s.meeting, start) {
			if err != nil {
				t.Fatalf("reference watch of %s: %v", s.meeting, err)
			}
			if n.Type == projections.Live {
				break
			}
			if n.Recipient == s.user || n.Recipient == projections.Everyone {
				want = append(want, n.ID)
			}
		}
		deadline := time.Now().Add(foGuard)
		var got []string
		var reconnects int
		for {
			_, got, reconnects = s.snapshot()
			if len(got) >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		totalReconnects += reconnects
		totalNotes += len(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s in %s (from %s, %d reconnects): got %d notifications, the log has %d for it%s",
				s.user, s.meeting, start, reconnects, len(got), len(want), foDiff(got, want))
		}
		s.mu.Lock()
		for _, o := range s.odd {
			t.Errorf("%s in %s: %s", s.user, s.meeting, o)
		}
		s.mu.Unlock()
	}
	// The cluster lost nothing (checked above): no store may claim a loss,
	// which would refuse the meeting's appends until an operator accepts it.
	for _, in := range inst {
		for _, l := range in.st.Lost() {
			t.Errorf("instance %s's store claims a loss the log does not show: %v", in.name, l)
		}
	}
	for _, l := range st.Lost() {
		t.Errorf("the fresh store claims a loss the log does not show: %v", l)
	}
	if totalReconnects == 0 {
		t.Errorf("no SSE client reconnected: the failover was not exercised")
	}
	t.Logf("stream leader n%d stopped: first command begun after it acknowledged %v later; instance i0 closed (in %v): %v later; load %v: "+
		"%d commands acknowledged (%d as duplicates of an earlier attempt), %d rejected by the rules, %d without a definitive answer, %d failed attempts retried %s; "+
		"log %d events, lost %d; %d SSE clients, %d notifications, %d reconnects",
		leader, afterLeader.Round(time.Millisecond), killTook.Round(time.Millisecond), afterKill.Round(time.Millisecond), loadTime.Round(time.Millisecond),
		acked, cl.dupes.Load(), nRejected, nUnknown, cl.retries.Load(), statuses, nEvents, lost, len(streams), totalNotes, totalReconnects)
	if acked < 40 {
		t.Errorf("only %d commands acknowledged: the load did not run", acked)
	}
}

// foDiff describes where got and want first differ.
func foDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf(": first difference at %d: got %s, want %s (got around it %v, want %v)", i, got[i], want[i],
				got[max(0, i-3):min(len(got), i+4)], want[max(0, i-3):min(len(want), i+4)])
		}
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			return ": duplicate " + id
		}
		seen[id] = true
	}
	if len(got) > len(want) {
		return fmt.Sprintf(": extra %v", got[len(want):min(len(got), len(want)+5)])
	}
	if len(got) < len(want) {
		return fmt.Sprintf(": missing from %s", want[len(got)])
	}
	return ""
}
