package natsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/service/auth"
	"github.com/productdb/stage/service/natsapi"
)

// tokens: "u:<user>" is the user, "backend" the backend; anything else fails.
var authn = auth.Func(func(_ context.Context, tok string) (auth.Identity, error) {
	if tok == "backend" {
		return auth.Identity{Backend: true}, nil
	}
	if u, ok := strings.CutPrefix(tok, "u:"); ok && u != "" {
		return auth.Identity{UserID: u}, nil
	}
	return auth.Identity{}, fmt.Errorf("%w: unknown token", auth.ErrUnauthenticated)
})

var streamN atomic.Int64

type fixture struct {
	srv *natsstore.Server
	nc  *nats.Conn
	eng *stage.Engine
}

func setup(t *testing.T) *fixture { return setupB(t) }

func setupB(t testing.TB) *fixture {
	t.Helper()
	srv, err := natsstore.StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	f := &fixture{srv: srv, nc: connect(t, srv)}
	n := streamN.Add(1)
	st, err := natsstore.New(context.Background(), f.nc, natsstore.WithStream(fmt.Sprintf("T%d", n)), natsstore.WithSubjectPrefix(fmt.Sprintf("t%d.ev", n)))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(st, stage.CloseWith(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f.eng = eng
	return f
}

func connect(t testing.TB, srv *natsstore.Server) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func startB(t testing.TB, f *fixture) micro.Service { return start(t, f.nc, f.eng) }

func start(t testing.TB, nc *nats.Conn, eng *stage.Engine, opts ...natsapi.Option) micro.Service {
	t.Helper()
	svc, err := natsapi.New(nc, eng, authn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	return svc
}

// call sends a request as a client in another language would.
func call(t *testing.T, nc *nats.Conn, endpoint, token, key string, body any) *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(natsapi.DefaultPrefix + "." + endpoint)
	if token != "" {
		msg.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		msg.Header.Set("Idempotency-Key", key)
	}
	switch b := body.(type) {
	case []byte:
		msg.Data = b
	default:
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		msg.Data = data
	}
	resp, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", endpoint, err)
	}
	return resp
}

// ok calls and decodes a success into out.
func ok(t *testing.T, nc *nats.Conn, endpoint, token, key string, body, out any) {
	t.Helper()
	resp := call(t, nc, endpoint, token, key, body)
	if c := resp.Header.Get(micro.ErrorCodeHeader); c != "" {
		t.Fatalf("%s: error %s %s: %s", endpoint, c, resp.Header.Get(micro.ErrorHeader), resp.Data)
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		t.Fatalf("%s: %v: %s", endpoint, err, resp.Data)
	}
}

// fails calls and checks the status, code and problem body.
func fails(t *testing.T, nc *nats.Conn, endpoint, token string, body any, status int, code string) stage.ErrorBody {
	t.Helper()
	resp := call(t, nc, endpoint, token, "", body)
	if got := resp.Header.Get(micro.ErrorCodeHeader); got != fmt.Sprint(status) {
		t.Fatalf("%s: status %q (%s), want %d", endpoint, got, resp.Data, status)
	}
	if got := resp.Header.Get(micro.ErrorHeader); got != code {
		t.Fatalf("%s: code %q, want %q", endpoint, got, code)
	}
	var b stage.ErrorBody
	if err := json.Unmarshal(resp.Data, &b); err != nil {
		t.Fatalf("%s: problem body: %v: %s", endpoint, err, resp.Data)
	}
	if b.Code != code || b.Status != status || b.Message == "" {
		t.Fatalf("%s: problem %+v", endpoint, b)
	}
	return b
}

type M = map[string]any

var (
	host   = M{"stageAccess": "CanRequest", "acceptStageRequests": true}
	viewer = M{"stageAccess": "CanRequest"}
)

func TestService_cycle(t *testing.T) {
	f := setup(t)
	start(t, f.nc, f.eng)
	client := connect(t, f.srv)

	var res stage.Result
	ok(t, client, "addParticipant", "backend", "", M{"meeting": "m1", "user": "alice", "permissions": host}, &res)
	ok(t, client, "addParticipant", "backend", "", M{"meeting": "m1", "user": "bob", "permissions": viewer}, &res)
	if res.Version != 2 || len(res.Events) != 1 {
		t.Fatalf("add: %+v", res)
	}
	ok(t, client, "requestAccess", "u:bob", "k1", M{"meeting": "m1"}, &res)
	if res.Version != 3 || res.Duplicate {
		t.Fatalf("request: %+v", res)
	}
	// A retry with the same key answers what the first did.
	ok(t, client, "requestAccess", "u:bob", "k1", M{"meeting": "m1"}, &res)
	if res.Version != 3 || !res.Duplicate || res.Events[0].Type != "AccessRequested" {
		t.Fatalf("retried request: %+v", res)
	}
	var reqs natsapi.Requests
	ok(t, client, "getAccessRequests", "u:alice", "", M{"meeting": "m1"}, &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].UserID != "bob" {
		t.Fatalf("requests: %+v", reqs)
	}
	ok(t, client, "grantAccess", "u:alice", "", M{"meeting": "m1", "users": []string{"bob", "zed"}}, &res)
	if len(res.Rejected) != 1 || res.Rejected[0].UserID != "zed" {
		t.Fatalf("grant: %+v", res)
	}
	ok(t, client, "join", "u:bob", "", M{"meeting": "m1"}, &res)
	var st natsapi.Status
	ok(t, client, "status", "u:bob", "", M{"meeting": "m1"}, &st)
	if st.User != "bob" || st.Status != aggregate.OnStage {
		t.Fatalf("status: %+v", st)
	}
	ok(t, client, "status", "backend", "", M{"meeting": "m1", "user": "alice"}, &st)
	if st.User != "alice" || st.Status != aggregate.OffStage {
		t.Fatalf("backend status: %+v", st)
	}
	var ros projections.Roster
	ok(t, client, "roster", "u:carol", "", M{"meeting": "m1"}, &ros)
	if !slices.Equal(ros.OnStage, []string{"bob"}) {
		t.Fatalf("roster: %+v", ros)
	}
	ok(t, client, "kick", "u:alice", "", M{"meeting": "m1", "users": []string{"bob"}, "reason": "off topic"}, &res)
	if res.Events[0].Type != "Kicked" {
		t.Fatalf("kick: %+v", res)
	}
	ok(t, client, "configure", "u:alice", "", M{"meeting": "m1", "settings": M{"maxOnStage": 3}}, &res)
	ok(t, client, "removeParticipant", "backend", "", M{"meeting": "m1", "user": "bob"}, &res)
	if got, _ := f.eng.Roster(context.Background(), "m1"); got.Version != res.Version {
		t.Fatalf("engine at %d, service said %d", got.Version, res.Version)
	}
}

func TestService_errors(t *testing.T) {
	f := setup(t)
	svc := start(t, f.nc, f.eng)
	client := connect(t, f.srv)
	var res stage.Result
	ok(t, client, "addParticipant", "backend", "", M{"meeting": "m1", "user": "alice", "permissions": host}, &res)
	ok(t, client, "addParticipant", "backend", "", M{"meeting": "m1", "user": "bob", "permissions": viewer}, &res)

	fails(t, client, "requestAccess", "", M{"meeting": "m1"}, 401, natsapi.CodeUnauthenticated)
	fails(t, client, "requestAccess", "forged", M{"meeting": "m1"}, 401, natsapi.CodeUnauthenticated)
	fails(t, client, "requestAccess", "u:bob", []byte(`{"meeting":`), 400, natsapi.CodeBadRequest)
	fails(t, client, "requestAccess", "u:bob", M{"meeting": "m1", "actor": "alice"}, 400, natsapi.CodeBadRequest)
	fails(t, client, "requestAccess", "u:bob", M{"meeting": "m1", "users": []string{"x"}}, 400, natsapi.CodeBadRequest)
	fails(t, client, "grantAccess", "u:alice", M{"meeting": "m1"}, 400, natsapi.CodeBadRequest)
	fails(t, client, "requestAccess", "u:bob", M{}, 400, natsapi.CodeBadRequest)
	// A user's token on a backend endpoint, the backend's on a user's.
	fails(t, client, "addParticipant", "u:alice", M{"meeting": "m1", "user": "eve", "permissions": host}, 403, natsapi.CodeForbidden)
	fails(t, client, "join", "backend", M{"meeting": "m1"}, 403, natsapi.CodeForbidden)
	fails(t, client, "status", "u:bob", M{"meeting": "m1", "user": "alice"}, 403, natsapi.CodeForbidden)
	// The Engine's rejections keep their codes and rules.
	b := fails(t, client, "getAccessRequests", "u:bob", M{"meeting": "m1"}, 403, "PermissionDenied")
	if b.Rejection == nil {
		t.Fatalf("no rejection in %+v", b)
	}
	fails(t, client, "cancelRequestAccess", "u:bob", M{"meeting": "m1"}, 409, "InvalidState")
	fails(t, client, "roster", "u:bob", M{"meeting": "nowhere"}, 404, "NoMeeting")
	fails(t, client, "kick", "u:alice", M{"meeting": "m1", "users": []string{"bob"}, "reason": strings.Repeat("x", 100<<10)}, 413, natsapi.CodeBodyTooLarge)

	// Nothing the failures did reached the log: still the two additions.
	if ros, err := f.eng.Roster(context.Background(), "m1"); err != nil || ros.Version != 2 {
		t.Fatalf("roster %+v, %v", ros, err)
	}
	// The failures show in the endpoint's stats data.
	for _, e := range svc.Stats().Endpoints {
		if e.Name != "requestAccess" {
			continue
		}
		var d natsapi.EndpointStats
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Failures != 6 || d.LastFailure != natsapi.CodeBadRequest {
			t.Fatalf("requestAccess stats %+v (%s): %v", d, e.Data, err)
		}
	}
}

func TestService_discovery(t *testing.T) {
	f := setup(t)
	svc := start(t, f.nc, f.eng)
	client := connect(t, f.srv)

	subj, err := micro.ControlSubject(micro.InfoVerb, natsapi.DefaultName, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Request(subj, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(resp.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.ID != svc.Info().ID || info.Name != natsapi.DefaultName {
		t.Fatalf("info: %+v", info)
	}
	var names []string
	for _, e := range info.Endpoints {
		names = append(names, e.Name)
		if e.Subject != natsapi.DefaultPrefix+"."+e.Name || e.QueueGroup != micro.DefaultQueueGroup {
			t.Fatalf("endpoint %+v", e)
		}
	}
	want := natsapi.Endpoints()
	if !slices.Equal(names, want) || len(want) != 26 {
		t.Fatalf("endpoints %v, want %v", names, want)
	}
}

func TestService_queueGroupShares(t *testing.T) {
	f := setup(t)
	a := start(t, connect(t, f.srv), f.eng)
	b := start(t, connect(t, f.srv), f.eng)
	client := connect(t, f.srv)
	var res stage.Result
	ok(t, client, "addParticipant", "backend", "", M{"meeting": "m1", "user": "alice", "permissions": host}, &res)
	const n = 40
	for range n {
		var ros projections.Roster
		ok(t, client, "roster", "u:alice", "", M{"meeting": "m1"}, &ros)
	}
	count := func(s micro.Service) int {
		for _, e := range s.Stats().Endpoints {
			if e.Name == "roster" {
				return e.NumRequests
			}
		}
		return 0
	}
	// micro counts a request after its handler returns, which may be
	// after the answer (sent from a goroutine) arrived.
	ca, cb := count(a), count(b)
	for deadline := time.Now().Add(5 * time.Second); ca+cb < n && time.Now().Before(deadline); ca, cb = count(a), count(b) {
		time.Sleep(5 * time.Millisecond)
	}
	if ca+cb != n || ca == 0 || cb == 0 {
		t.Fatalf("roster requests served: %d and %d, want both > 0 and %d in all", ca, cb, n)
	}
}

func TestService_stopWaitsInFlight(t *testing.T) {
	f := setup(t)
	release := make(chan struct{})
	var entered atomic.Int32
	slow := auth.Func(func(ctx context.Context, tok string) (auth.Identity, error) {
		entered.Add(1)
		<-release
		return authn(ctx, tok)
	})
	svc, err := natsapi.New(f.nc, f.eng, slow)
	if err != nil {
		t.Fatal(err)
	}
	client := connect(t, f.srv)
	msg := nats.NewMsg(natsapi.DefaultPrefix + ".addParticipant")
	msg.Header.Set("Authorization", "Bearer backend")
	msg.Data = []byte(`{"meeting":"m1","user":"alice","permissions":{"stageAccess":"Allowed"}}`)
	got := make(chan *nats.Msg, 1)
	go func() {
		r, err := client.RequestMsg(msg, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	for deadline := time.Now().Add(10 * time.Second); entered.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the service")
		}
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Stop() }()
	select {
	case <-stopped:
		t.Fatal("Stop returned with a request in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r == nil || r.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("in-flight request: %v", r)
	}
	if _, err := client.Request(natsapi.DefaultPrefix+".roster", []byte(`{"meeting":"m1"}`), 200*time.Millisecond); !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("after Stop: %v", err)
	}
}

func TestNew_invalid(t *testing.T) {
	f := setup(t)
	for _, tc := range []struct {
		name string
		opts []natsapi.Option
	}{
		{"prefix", []natsapi.Option{natsapi.WithPrefix("a.*")}},
		{"queue", []natsapi.Option{natsapi.WithQueueGroup("a b")}},
		{"name", []natsapi.Option{natsapi.WithName("a.b", "1.0.0")}},
		{"version", []natsapi.Option{natsapi.WithName("a", "one")}},
		{"timeout", []natsapi.Option{natsapi.WithTimeout(0)}},
		{"body", []natsapi.Option{natsapi.WithMaxBody(-1)}},
		{"conc", []natsapi.Option{natsapi.WithConcurrency(0)}},
		{"logger", []natsapi.Option{natsapi.WithLogger(nil)}},
		{"nil", []natsapi.Option{nil}},
	} {
		if _, err := natsapi.New(f.nc, f.eng, authn, tc.opts...); !errors.Is(err, natsapi.ErrInvalidOption) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := natsapi.New(f.nc, nil, authn); !errors.Is(err, natsapi.ErrInvalidOption) {
		t.Errorf("nil engine: %v", err)
	}
}

func TestService_prefixOption(t *testing.T) {
	f := setup(t)
	start(t, f.nc, f.eng, natsapi.WithPrefix("acme.stage"), natsapi.WithQueueGroup("workers"), natsapi.WithName("acme", "2.0.0"))
	msg := nats.NewMsg("acme.stage.addParticipant")
	msg.Header.Set("Authorization", "Bearer backend")
	msg.Data = []byte(`{"meeting":"m1","user":"alice","permissions":{"stageAccess":"Allowed"}}`)
	r, err := f.nc.RequestMsg(msg, 5*time.Second)
	if err != nil || r.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("%v %v", r, err)
	}
}
