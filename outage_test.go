package stage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/internal/natstest"
)

// oldTimeout is the hidden bound a command used to wait out on an outage;
// a command must now fail well before it (the bound is loose on purpose:
// a slow, shared machine).
const oldTimeout = 10 * time.Second

// outageEngine opens a store and an Engine on nc, closed at cleanup.
func outageEngine(t *testing.T, nc *nats.Conn, opts ...natsstore.Option) (*stage.Engine, *natsstore.Store) {
	t.Helper()
	st, err := natsstore.New(jsCtx(t), nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(st, stage.WithClock(jsUTC), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); st.Close() })
	return eng, st
}

// requestKeyed has user ask for the stage with the idempotency key "k-user",
// the caller's context a generous minute: the store must answer on its own.
func requestKeyed(t *testing.T, eng *stage.Engine, meeting, user string) (stage.Result, time.Duration, error) {
	ctx, cancel := context.WithTimeout(jsCtx(t), time.Minute)
	defer cancel()
	began := time.Now()
	res, err := eng.Execute(ctx, meeting, aggregate.Command{Actor: user, Action: aggregate.RequestAccess{}}, stage.WithIdempotencyKey("k-"+user))
	return res, time.Since(began), err
}

// storedBy counts the events of the meeting that user's keyed request stored.
func storedBy(t *testing.T, st eventstore.Store, meeting, user string) int {
	t.Helper()
	n := 0
	for ev, err := range st.Load(jsCtx(t), meeting, 1) {
		if err != nil {
			t.Fatalf("reading meeting %s: %v", meeting, err)
		}
		if ev.Actor == user && ev.CommandID == "k-"+user {
			n++
		}
	}
	return n
}

func seedViewers(t *testing.T, eng *stage.Engine, meeting string, users []string) {
	t.Helper()
	for _, u := range append([]string{"host"}, users...) {
		p := aggregate.Permissions{StageAccess: aggregate.CanRequest}
		if u == "host" {
			p = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
		}
		if _, err := eng.AddParticipant(jsCtx(t), meeting, aggregate.Participant{UserID: u, Permissions: p}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOutage_ServerStopped stops the only server under a running Engine
// (a connection that reconnects, as nats.go's default does): a command
// fails fast, with ErrUnavailable and ErrNotStored, and is still not
// stored once the server is back (nothing was buffered for later); then
// the same command succeeds.
func TestOutage_ServerStopped(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsstore.StartServer(dir, natsstore.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	defer func() { srv.Shutdown() }()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group commit %v", group), func(t *testing.T) {
			opts := []natsstore.Option{natsstore.WithStream(fmt.Sprintf("OUT%v", group)), natsstore.WithSubjectPrefix(fmt.Sprintf("out%v.ev", group))}
			if group {
				opts = append(opts, natsstore.WithGroupCommit(natsstore.DefaultGroupMin))
			}
			eng, st := outageEngine(t, nc, opts...)
			users := []string{"ann", "bob", "cat"}
			seedViewers(t, eng, "m", append(users, "dan"))
			if _, _, err := requestKeyed(t, eng, "m", "ann"); err != nil {
				t.Fatal(err)
			}

			count, err := storetestCount(jsCtx(t), st, "m")
			if err != nil {
				t.Fatal(err)
			}
			srv.Shutdown()
			jsWaitFor(t, "the client to notice", func() bool { return !nc.IsConnected() })
			// Without a key (no key lookup first: straight to the append).
			began := time.Now()
			_, err = eng.RequestAccess(jsCtx(t), "m", "dan")
			if !errors.Is(err, stage.ErrUnavailable) || !errors.Is(err, stage.ErrNotStored) || time.Since(began) > oldTimeout/2 {
				t.Errorf("dan without a key: %v after %v, want unavailable and not stored, fast", err, time.Since(began))
			}
			for _, u := range users[1:] {
				_, took, err := requestKeyed(t, eng, "m", u)
				t.Logf("%s with the server stopped: %v after %v", u, err, took.Round(time.Millisecond))
				if !errors.Is(err, stage.ErrUnavailable) || !errors.Is(err, stage.ErrNotStored) || errors.Is(err, stage.ErrOutcomeUnknown) {
					t.Errorf("%s: %v, want unavailable and not stored", u, err)
				}
				if took > oldTimeout/2 {
					t.Errorf("%s: failed after %v, want well under %v", u, took, oldTimeout)
				}
				if stage.HTTPStatus(err) != 503 || stage.ErrorCode(err) != stage.CodeUnavailable {
					t.Errorf("%s: status %d code %s", u, stage.HTTPStatus(err), stage.ErrorCode(err))
				}
			}
			// Reads fail fast too.
			began = time.Now()
			if _, err := eng.Roster(jsCtx(t), "m"); err == nil || time.Since(began) > oldTimeout/2 {
				t.Errorf("Roster with the server stopped: %v after %v", err, time.Since(began))
			}

			srv, err = natsstore.StartServer(dir, natsstore.WithListen(strings.TrimPrefix(url, "nats://")))
			if err != nil {
				t.Fatal(err)
			}
			jsWaitFor(t, "the client to reconnect", nc.IsConnected)
			if err := nc.FlushTimeout(30 * time.Second); err != nil { // whatever was buffered is processed
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if n, err := storetestCount(jsCtx(t), st, "m"); err != nil || n != count {
				t.Errorf("after the restart the meeting has %d events (%v), had %d before the stop: a failed command was stored", n, err, count)
			}
			for _, u := range users[1:] {
				if n := storedBy(t, st, "m", u); n != 0 {
					t.Errorf("%s: stored %d times after the restart, though the command said not stored", u, n)
				}
				// Safe to retry as is.
				if res, _, err := requestKeyed(t, eng, "m", u); err != nil || res.Duplicate {
					t.Errorf("%s retried: %+v %v", u, res, err)
				}
				if n := storedBy(t, st, "m", u); n != 1 {
					t.Errorf("%s: stored %d times after the retry", u, n)
				}
			}
		})
	}
}

// restartableCluster is a three-node JetStream cluster on 127.0.0.1 whose
// nodes can be stopped and started again with their data.
type restartableCluster struct {
	t     *testing.T
	opts  []*server.Options
	nodes []*server.Server
}

func startCluster(t *testing.T) *restartableCluster {
	t.Helper()
	c := &restartableCluster{t: t, opts: natstest.ClusterOptions(t, "outage", 3)}
	for _, o := range c.opts {
		o.SyncAlways = false
	}
	c.nodes = make([]*server.Server, 3)
	for i := range c.nodes {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

func (c *restartableCluster) start(i int) {
	c.nodes[i] = natstest.Start(c.t, c.opts[i])
}

func (c *restartableCluster) stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

func (c *restartableCluster) urls() string {
	var u []string
	for _, o := range c.opts {
		u = append(u, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(u, ",")
}

// leader returns the node that leads stream, or -1.
func (c *restartableCluster) leader(stream string) int {
	for i, s := range c.nodes {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// TestOutage_ClusterLeaderLost runs an Engine on a three-node cluster with
// an R3 stream. It stops the stream's leader, then a second node (no
// quorum: no leader can be elected): every command that fails says so
// within a few seconds, with ErrUnavailable once no leader answers, and
// says whether it may have been stored. With the nodes back, no command
// that said "not stored" is in the log, and each failed command retried
// with its key is stored exactly once.
func TestOutage_ClusterLeaderLost(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	c := startCluster(t)
	nc, err := nats.Connect(c.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	opts := []natsstore.Option{natsstore.WithReplicas(3), natsstore.WithStream("OUTAGE"), natsstore.WithSubjectPrefix("outage.ev")}
	jsWaitFor(t, "the cluster to create an R3 stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := natsstore.New(ctx, nc, opts...)
		if err == nil {
			st.Close()
		}
		return err == nil
	})
	eng, _ := outageEngine(t, nc, opts...)
	var users []string
	for i := range 24 {
		users = append(users, fmt.Sprintf("u%02d", i))
	}
	seedViewers(t, eng, "m", users)
	next := 0
	type attempt struct {
		user string
		err  error
		took time.Duration
	}
	var failed []attempt
	run := func(phase string, n int) (ok int) {
		for range n {
			u := users[next]
			next++
			_, took, err := requestKeyed(t, eng, "m", u)
			t.Logf("%s: %s: %v after %v", phase, u, err, took.Round(time.Millisecond))
			if err == nil {
				ok++
				continue
			}
			failed = append(failed, attempt{u, err, took})
			if ns, unk := errors.Is(err, stage.ErrNotStored), errors.Is(err, stage.ErrOutcomeUnknown); ns == unk {
				t.Errorf("%s: %s: %v says neither or both of not stored and unknown", phase, u, err)
			}
			if took > oldTimeout*3/4 {
				t.Errorf("%s: %s failed after %v, want well under the old %v", phase, u, took, oldTimeout)
			}
		}
		return ok
	}

	var leader int
	jsWaitFor(t, "a stream leader", func() bool { leader = c.leader("OUTAGE"); return leader >= 0 })
	c.stop(leader)
	// Right after the leader stopped: commands fail fast or succeed (a new
	// leader is elected within seconds).
	run("leader stopped", 4)

	// A second node down: no quorum, no leader at all.
	other := (leader + 1) % 3
	c.stop(other)
	before := len(failed)
	run("no quorum", 4)
	if len(failed)-before != 4 {
		t.Fatalf("without quorum %d of 4 commands succeeded", 4-(len(failed)-before))
	}
	for _, a := range failed[before:] {
		if !errors.Is(a.err, stage.ErrUnavailable) {
			t.Errorf("no quorum: %s: %v, want ErrUnavailable", a.user, a.err)
		}
	}
	// Once the store knows, it asks before sending: not stored.
	if last := failed[len(failed)-1]; !errors.Is(last.err, stage.ErrNotStored) {
		t.Errorf("no quorum, known: %s: %v, want not stored", last.user, last.err)
	}
	// Without keys: straight to the event stream's append.
	var unkeyed []attempt
	for range 2 {
		u := users[next]
		next++
		ctx, cancel := context.WithTimeout(jsCtx(t), time.Minute)
		began := time.Now()
		_, err := eng.RequestAccess(ctx, "m", u)
		took := time.Since(began)
		cancel()
		t.Logf("no quorum, no key: %s: %v after %v", u, err, took.Round(time.Millisecond))
		if !errors.Is(err, stage.ErrUnavailable) || errors.Is(err, stage.ErrNotStored) == errors.Is(err, stage.ErrOutcomeUnknown) || took > oldTimeout*3/4 {
			t.Errorf("no quorum, no key: %s: %v after %v, want unavailable, not stored or unknown, fast", u, err, took)
		}
		unkeyed = append(unkeyed, attempt{u, err, took})
	}

	c.start(leader)
	c.start(other)
	// A fresh store reads the log once a leader serves it.
	var st *natsstore.Store
	jsWaitFor(t, "the stream to serve again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := natsstore.New(ctx, nc, opts...)
		if err != nil {
			return false
		}
		if _, err := storetestCount(ctx, s, "m"); err != nil {
			s.Close()
			return false
		}
		st = s
		return true
	})
	defer st.Close()
	for _, a := range failed {
		n := storedBy(t, st, "m", a.user)
		if errors.Is(a.err, stage.ErrNotStored) && n != 0 {
			t.Errorf("%s: said not stored (%v), stored %d times", a.user, a.err, n)
		}
	}
	for _, a := range unkeyed {
		n := 0
		for ev, err := range st.Load(jsCtx(t), "m", 1) {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Actor == a.user {
				n++
			}
		}
		if errors.Is(a.err, stage.ErrNotStored) && n != 0 {
			t.Errorf("%s (no key): said not stored (%v), stored %d times", a.user, a.err, n)
		}
	}
	// Every failed command retried with its key: stored exactly once.
	for _, a := range failed {
		var err error
		for range 20 {
			var res stage.Result
			if res, _, err = requestKeyed(t, eng, "m", a.user); err == nil {
				if errors.Is(a.err, stage.ErrNotStored) && res.Duplicate {
					t.Errorf("%s: not stored, yet the retry is a duplicate", a.user)
				}
				break
			}
			if !errors.Is(err, stage.ErrNotStored) && !errors.Is(err, stage.ErrOutcomeUnknown) {
				t.Fatalf("%s retried: %v", a.user, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s retried: %v", a.user, err)
		}
		if n := storedBy(t, st, "m", a.user); n != 1 {
			t.Errorf("%s: stored %d times after the retry", a.user, n)
		}
	}
	failed = append(failed, unkeyed...)
	slices.SortFunc(failed, func(a, b attempt) int { return int(b.took - a.took) })
	t.Logf("%d commands failed during the outage; slowest failure %v", len(failed), failed[0].took.Round(time.Millisecond))
}

func storetestCount(ctx context.Context, st eventstore.Store, meeting string) (int, error) {
	n := 0
	for _, err := range st.Load(ctx, meeting, 1) {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
