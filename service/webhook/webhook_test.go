package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/service/webhook"
)

var secret = []byte("0123456789abcdef-secret")

var streamN atomic.Int64

type fixture struct {
	srv *natsstore.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	eng *stage.Engine
	src webhook.Source
}

func setup(t *testing.T) *fixture { return setupB(t) }

// setupB starts an embedded server (with opts), an Engine on a stream of
// its own and a JetStream context.
func setupB(t testing.TB, opts ...natsstore.ServerOption) *fixture {
	t.Helper()
	srv, err := natsstore.StartServer(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	n := streamN.Add(1)
	src := webhook.Source{Stream: fmt.Sprintf("W%d", n), Prefix: fmt.Sprintf("w%d.ev", n)}
	st, err := natsstore.New(context.Background(), nc, natsstore.WithStream(src.Stream), natsstore.WithSubjectPrefix(src.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(st, stage.CloseWith(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, nc: nc, js: js, eng: eng, src: src}
}

// receiver is a real HTTP receiver that records what it accepted, checks
// every signature and the per-meeting order, and fails when fail says so.
type receiver struct {
	t    *testing.T
	mu   sync.Mutex
	fail func(n int) bool // called with the request's number (1, 2, ...)
	n    int
	// accepted payloads per meeting, in order; lastOK version per meeting.
	got      map[string][]webhook.Payload
	failures int
	bad      []string
}

func newReceiver(t *testing.T, fail func(int) bool) *receiver {
	return &receiver{t: t, fail: fail, got: map[string][]webhook.Payload{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.n++
	if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Minute); err != nil {
		rc.bad = append(rc.bad, "signature: "+err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.bad = append(rc.bad, "payload: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.Header.Get(webhook.HeaderID) != p.ID || r.Header.Get(webhook.HeaderEvent) != string(p.Type) || r.Header.Get(webhook.HeaderMeeting) != p.Meeting {
		rc.bad = append(rc.bad, "headers do not match the payload")
	}
	prev := uint64(0)
	if g := rc.got[p.Meeting]; len(g) > 0 {
		prev = g[len(g)-1].Version
	}
	if p.Version < prev {
		rc.bad = append(rc.bad, fmt.Sprintf("meeting %s: version %d sent after %d succeeded", p.Meeting, p.Version, prev))
	}
	if rc.fail != nil && rc.fail(rc.n) {
		rc.failures++
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if p.Version > prev {
		rc.got[p.Meeting] = append(rc.got[p.Meeting], p)
	}
	w.WriteHeader(http.StatusNoContent)
}

// versions returns the accepted versions per meeting.
func (rc *receiver) versions() map[string][]uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]uint64{}
	for m, ps := range rc.got {
		for _, p := range ps {
			out[m] = append(out[m], p.Version)
		}
	}
	return out
}

func (rc *receiver) check() {
	rc.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.bad {
		rc.t.Error(b)
	}
}

// waitFor waits until cond holds or fails after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// script runs a stage session in meeting m and returns its version after.
func script(t *testing.T, eng *stage.Engine, m string) uint64 {
	t.Helper()
	ctx := context.Background()
	must := func(r stage.Result, err error) stage.Result {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		return r
	}
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: aggregate.Permissions{StageAccess: events.CanRequest, AcceptStageRequests: true}}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: aggregate.Permissions{StageAccess: events.CanRequest}}))
	must(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "erin", Permissions: aggregate.Permissions{StageAccess: events.Allowed}}))
	must(eng.RequestAccess(ctx, m, "bob"))
	must(eng.GrantAccess(ctx, m, "alice", []string{"bob"}))
	must(eng.Join(ctx, m, "bob"))
	must(eng.Join(ctx, m, "erin"))
	must(eng.Leave(ctx, m, "erin"))
	return must(eng.Kick(ctx, m, "alice", []string{"bob"}, stage.WithReason("off topic"))).Version
}

func TestSender_failingReceiver(t *testing.T) {
	f := setup(t)
	// 500 for the first 6 requests, then every third.
	rc := newReceiver(t, func(n int) bool { return n <= 6 || n%3 == 0 })
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	s, err := webhook.New(f.js, f.src, []webhook.Endpoint{{Name: "media", URL: hs.URL, Secret: secret}},
		webhook.WithLanes(2), webhook.WithBackoff(5*time.Millisecond, 40*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	meetings := []string{"m1", "m2", "m3", "m4"}
	want := map[string][]uint64{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range meetings {
		wg.Go(func() {
			v := script(t, f.eng, m)
			mu.Lock()
			for i := uint64(1); i <= v; i++ {
				want[m] = append(want[m], i)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("got %v want %v", rc.versions(), want)
			for i := range 2 {
				c, err := f.js.Consumer(context.Background(), f.src.Stream, fmt.Sprintf("stage-webhooks-%d", i))
				if err == nil {
					info, _ := c.Info(context.Background())
					t.Logf("lane %d: %+v delivered %+v ackfloor %+v pending %d ackpending %d redelivered %d waiting %d", i, info.Name, info.Delivered, info.AckFloor, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting)
				}
			}
		}
	})
	waitFor(t, 20*time.Second, "every event delivered", func() bool {
		got := rc.versions()
		for m, w := range want {
			if !slices.Equal(got[m], w) {
				return false
			}
		}
		return true
	})
	rc.check()
	waitFor(t, 5*time.Second, "lag 0", func() bool {
		lag, err := s.Lag(context.Background())
		return err == nil && lag == 0
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.failures < 6 {
		t.Fatalf("only %d failed attempts", rc.failures)
	}
	last := rc.got["m1"][len(rc.got["m1"])-1]
	if last.Type != events.TypeKicked || !slices.Equal(last.MediaStop, []string{"bob"}) {
		t.Fatalf("kick payload: %+v", last)
	}
	var left webhook.Payload
	for _, p := range rc.got["m1"] {
		if p.Type == events.TypeStageLeft {
			left = p
		}
	}
	if !slices.Equal(left.MediaStop, []string{"erin"}) {
		t.Fatalf("stage left payload: %+v", left)
	}
	if e, err := events.Unmarshal(last.Event); err != nil || e.Verify() != nil || e.Seq != last.Seq || e.Version != last.Version {
		t.Fatalf("event in the payload: %+v %v", e, err)
	}
}

// A receiver whose server is gone (connections refused) for a while gets
// everything once it is back on the same address.
func TestSender_receiverDown(t *testing.T) {
	f := setup(t)
	rc := newReceiver(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down from the start
	var refused atomic.Int32
	hc := &http.Client{Transport: &countingTransport{base: http.DefaultTransport, refused: &refused}}
	s, err := webhook.New(f.js, f.src, []webhook.Endpoint{{Name: "media", URL: "http://" + addr + "/hook", Secret: secret, Events: []events.Type{events.TypeKicked, events.TypeStageLeft, events.TypeStageJoined}}},
		webhook.WithBackoff(10*time.Millisecond, 50*time.Millisecond), webhook.WithHTTPClient(hc), webhook.WithLanes(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	script(t, f.eng, "m1")
	script(t, f.eng, "m2")
	// The "minute" down, shortened.
	waitFor(t, 10*time.Second, "refused attempts", func() bool { return refused.Load() >= 5 })
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken again: %v", addr, err)
	}
	hs := &http.Server{Handler: rc}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	// Per meeting: StageJoined bob (6), StageJoined erin (7), StageLeft (8), Kicked (9).
	waitFor(t, 20*time.Second, "every filtered event", func() bool {
		g := rc.versions()
		return slices.Equal(g["m1"], []uint64{6, 7, 8, 9}) && slices.Equal(g["m2"], []uint64{6, 7, 8, 9})
	})
	rc.check()
}

type countingTransport struct {
	base    http.RoundTripper
	refused *atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		c.refused.Add(1)
	}
	return resp, err
}

// Two endpoints, one failing for a while: each gets every event once it
// answers 2xx; the healthy one is not sent again what it accepted.
func TestSender_twoEndpointsRestart(t *testing.T) {
	f := setup(t)
	okRc := newReceiver(t, nil)
	var okCalls atomic.Int32
	okHS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { okCalls.Add(1); okRc.ServeHTTP(w, r) }))
	t.Cleanup(okHS.Close)
	flaky := newReceiver(t, func(n int) bool { return n <= 10 })
	flakyHS := httptest.NewServer(flaky)
	t.Cleanup(flakyHS.Close)
	eps := []webhook.Endpoint{{Name: "ok", URL: okHS.URL, Secret: secret}, {Name: "flaky", URL: flakyHS.URL, Secret: secret}}
	opts := []webhook.Option{webhook.WithBackoff(5*time.Millisecond, 20*time.Millisecond), webhook.WithDurable("hooks"), webhook.WithLanes(3)}
	s, err := webhook.New(f.js, f.src, eps, opts...)
	if err != nil {
		t.Fatal(err)
	}
	v := script(t, f.eng, "m1")
	waitFor(t, 10*time.Second, "some deliveries", func() bool { return len(flaky.versions()["m1"]) >= 2 })
	s.Close()
	// Events appended while no sender runs.
	v2 := script(t, f.eng, "m2")
	s, err = webhook.New(f.js, f.src, eps, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	all := func(n uint64) []uint64 {
		var out []uint64
		for i := uint64(1); i <= n; i++ {
			out = append(out, i)
		}
		return out
	}
	for _, rc := range []*receiver{okRc, flaky} {
		waitFor(t, 20*time.Second, "everything after the restart", func() bool {
			g := rc.versions()
			return slices.Equal(g["m1"], all(v)) && slices.Equal(g["m2"], all(v2))
		})
		rc.check()
	}
	// At least once: a redelivery after the restart may repeat one event
	// to the healthy endpoint, never more.
	if n := okCalls.Load(); n > int32(v+v2)+3 {
		t.Fatalf("healthy endpoint called %d times for %d events", n, v+v2)
	}
	if _, err := webhook.New(f.js, f.src, eps, webhook.WithDurable("hooks"), webhook.WithLanes(2)); !errors.Is(err, webhook.ErrLanesChanged) {
		t.Fatalf("lanes changed: %v", err)
	}
}

func TestNew_invalid(t *testing.T) {
	f := setup(t)
	good := webhook.Endpoint{Name: "a", URL: "http://127.0.0.1:1/x", Secret: secret}
	for _, tc := range []struct {
		name string
		eps  []webhook.Endpoint
		opts []webhook.Option
		want error
	}{
		{"none", nil, nil, webhook.ErrInvalidEndpoint},
		{"no name", []webhook.Endpoint{{URL: good.URL, Secret: secret}}, nil, webhook.ErrInvalidEndpoint},
		{"twice", []webhook.Endpoint{good, good}, nil, webhook.ErrInvalidEndpoint},
		{"url", []webhook.Endpoint{{Name: "a", URL: "ftp://x", Secret: secret}}, nil, webhook.ErrInvalidEndpoint},
		{"relative", []webhook.Endpoint{{Name: "a", URL: "/hook", Secret: secret}}, nil, webhook.ErrInvalidEndpoint},
		{"secret", []webhook.Endpoint{{Name: "a", URL: good.URL, Secret: []byte("short")}}, nil, webhook.ErrInvalidEndpoint},
		{"type", []webhook.Endpoint{{Name: "a", URL: good.URL, Secret: secret, Events: []events.Type{"Kick"}}}, nil, webhook.ErrInvalidEndpoint},
		{"lanes", []webhook.Endpoint{good}, []webhook.Option{webhook.WithLanes(0)}, webhook.ErrInvalidOption},
		{"backoff", []webhook.Endpoint{good}, []webhook.Option{webhook.WithBackoff(time.Second, time.Millisecond)}, webhook.ErrInvalidOption},
		{"durable", []webhook.Endpoint{good}, []webhook.Option{webhook.WithDurable("a.b")}, webhook.ErrInvalidOption},
		{"timeout", []webhook.Endpoint{good}, []webhook.Option{webhook.WithTimeout(0)}, webhook.ErrInvalidOption},
		{"client", []webhook.Endpoint{good}, []webhook.Option{webhook.WithHTTPClient(nil)}, webhook.ErrInvalidOption},
		{"nil", []webhook.Endpoint{good}, []webhook.Option{nil}, webhook.ErrInvalidOption},
	} {
		if _, err := webhook.New(f.js, f.src, tc.eps, tc.opts...); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := webhook.New(nil, f.src, []webhook.Endpoint{good}); !errors.Is(err, webhook.ErrInvalidOption) {
		t.Errorf("nil js: %v", err)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_700_000_000, 0)
	h := webhook.Sign(secret, now, body)
	if err := webhook.VerifyAt(secret, h, body, 5*time.Minute, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Rotation: an old and a new signature, either secret verifies.
	other := []byte("another-secret-of-16+")
	rot := h + ",v1=" + webhook.Sign(other, now, body)[len("t=1700000000,v1="):]
	if err := webhook.VerifyAt(other, rot, body, 0, now); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
	}{
		"tampered body": {secret, h, []byte(`{"id":"y"}`), now},
		"other secret":  {other, h, body, now},
		"too old":       {secret, h, body, now.Add(6 * time.Minute)},
		"from future":   {secret, h, body, now.Add(-6 * time.Minute)},
		"empty":         {secret, "", body, now},
		"no v1":         {secret, "t=1700000000", body, now},
		"no t":          {secret, h[len("t=1700000000,"):], body, now},
		"bad hex":       {secret, "t=1700000000,v1=zz", body, now},
		"no secret":     {nil, h, body, now},
	} {
		if err := webhook.VerifyAt(c.secret, c.header, c.body, 5*time.Minute, c.now); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestMediaStop(t *testing.T) {
	for _, c := range []struct {
		e    events.Envelope
		want []string
	}{
		{events.Envelope{Actor: "erin", Payload: &events.StageLeft{}}, []string{"erin"}},
		{events.Envelope{Actor: "carol", Payload: &events.StageLeft{Declined: true}}, nil},
		{events.Envelope{Actor: "alice", Payload: &events.Kicked{Users: []string{"bob", "dave"}}}, []string{"bob", "dave"}},
		{events.Envelope{Payload: &events.ParticipantLeft{UserID: "bob", Status: "OnStage"}}, []string{"bob"}},
		{events.Envelope{Payload: &events.ParticipantLeft{UserID: "bob", Status: "OffStage"}}, nil},
		{events.Envelope{Payload: &events.StageBanned{UserID: "bob", Status: "OnStage"}}, []string{"bob"}},
		{events.Envelope{Payload: &events.PermissionsChanged{UserID: "bob", Permissions: events.Permissions{StageAccess: events.NotAllowed}, Status: "OffStage"}}, []string{"bob"}},
		{events.Envelope{Payload: &events.PermissionsChanged{UserID: "bob", Permissions: events.Permissions{StageAccess: events.Allowed}, Status: "OnStage"}}, nil},
		{events.Envelope{Payload: &events.Lapsed{Lapses: []events.Lapse{{UserID: "sam", Kind: events.SlotEnded, Status: "OnStage"}, {UserID: "carol", Kind: events.InvitationExpired, Status: "AcceptedToJoinStage"}}}}, []string{"sam"}},
		{events.Envelope{Actor: "bob", Payload: &events.StageJoined{}}, nil},
		{events.Envelope{Actor: "alice", Payload: &events.StageEnded{From: "Live", OnStage: []string{"bob", "erin"}, Accepted: []string{"carol"}, Requests: []string{"dave"}}}, []string{"bob", "erin"}},
		{events.Envelope{Actor: "alice", Payload: &events.StageEnded{From: "Backstage"}}, nil},
		{events.Envelope{Actor: "alice", Payload: &events.BroughtOnStage{UserID: "bob", Status: "OffStage"}}, nil},
		{events.Envelope{Actor: "carol", Payload: &events.InvitationDeclined{Invited: true}}, nil},
	} {
		if got := webhook.MediaStop(&c.e); !slices.Equal(got, c.want) {
			t.Errorf("%T: %v, want %v", c.e.Payload, got, c.want)
		}
	}
}

// Ending the stage is delivered like any event, and its media_stop lists
// the users who were on stage (not the invitation or the request it
// withdrew): the real rules, store and sender.
func TestSender_stageEndedMediaStop(t *testing.T) {
	f := setup(t)
	rc := newReceiver(t, nil)
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	s, err := webhook.New(f.js, f.src, []webhook.Endpoint{{Name: "media", URL: hs.URL, Secret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	must := func(r stage.Result, err error) stage.Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	viewer := aggregate.Permissions{StageAccess: events.CanRequest}
	must(f.eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: aggregate.Permissions{StageAccess: events.Allowed, AcceptStageRequests: true}}))
	for _, u := range []string{"bob", "carol", "dave"} {
		must(f.eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: u, Permissions: viewer}))
	}
	must(f.eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "erin", Permissions: aggregate.Permissions{StageAccess: events.Allowed}}))
	must(f.eng.RequestAccess(ctx, "m", "bob"))
	must(f.eng.GrantAccess(ctx, "m", "alice", []string{"bob", "carol"}))
	must(f.eng.Join(ctx, "m", "bob"))
	must(f.eng.Join(ctx, "m", "erin"))
	must(f.eng.RequestAccess(ctx, "m", "dave"))
	end := must(f.eng.EndStage(ctx, "m", "alice"))
	waitFor(t, 20*time.Second, "the StageEnded delivery", func() bool {
		v := rc.versions()["m"]
		return len(v) > 0 && v[len(v)-1] == end.Version
	})
	rc.check()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got := rc.got["m"][len(rc.got["m"])-1]
	if got.Type != events.TypeStageEnded || !slices.Equal(got.MediaStop, []string{"bob", "erin"}) {
		t.Fatalf("StageEnded payload: type %s, media_stop %v, event %s", got.Type, got.MediaStop, got.Event)
	}
	e, err := events.Unmarshal(got.Event)
	if err != nil || e.Verify() != nil {
		t.Fatalf("event in the payload: %+v %v", e, err)
	}
	p, ok := e.Payload.(*events.StageEnded)
	if !ok || !slices.Equal(p.OnStage, []string{"bob", "erin"}) || !slices.Equal(p.Accepted, []string{"carol"}) || !slices.Equal(p.Requests, []string{"dave"}) {
		t.Fatalf("StageEnded in the payload: %+v", e.Payload)
	}
	for _, q := range rc.got["m"][:len(rc.got["m"])-1] {
		if q.Type == events.TypeStageJoined && !slices.Equal(q.MediaStop, []string{}) {
			t.Errorf("StageJoined with media_stop %v", q.MediaStop)
		}
	}
}

// Two Senders on separate connections share one durable name: both
// deliver, and each meeting's events still come in order, exactly once
// each to a receiver that never fails.
func TestSender_twoProcessesShareLanes(t *testing.T) {
	f := setup(t)
	rc := newReceiver(t, func(n int) bool { return n%4 == 0 })
	var byA, byB atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") == "A" {
			byA.Add(1)
		} else {
			byB.Add(1)
		}
		rc.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	eps := []webhook.Endpoint{{Name: "media", URL: hs.URL, Secret: secret}}
	for _, who := range []string{"A", "B"} {
		nc, err := f.srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: uaTransport(who)}
		s, err := webhook.New(js, f.src, eps, webhook.WithHTTPClient(hc), webhook.WithLanes(2), webhook.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
	}
	want := map[string]uint64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 6 {
		m := fmt.Sprintf("m%d", i)
		wg.Go(func() {
			v := script(t, f.eng, m)
			mu.Lock()
			want[m] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	waitFor(t, 20*time.Second, "every event", func() bool {
		g := rc.versions()
		for m, v := range want {
			if uint64(len(g[m])) != v {
				return false
			}
		}
		return true
	})
	rc.check()
	if byA.Load() == 0 || byB.Load() == 0 {
		t.Fatalf("deliveries by A %d, by B %d: want both", byA.Load(), byB.Load())
	}
}

type uaTransport string

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", string(u))
	return http.DefaultTransport.RoundTrip(r)
}
