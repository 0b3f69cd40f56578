package stage_test

// Reliability tests of the Engine on the JetStream store, against real
// nats-servers running in this process (loopback only). The default run is
// short enough for CI; -jetstream.soak=5m runs each timed test that long.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"pgregory.net/rapid"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
	"github.com/productdb/stage/internal/natstest"
	"github.com/productdb/stage/projections"
)

var jsSoak = flag.Duration("jetstream.soak", 0, "run each timed JetStream reliability test for this long (default: a short CI run)")

func jsRunFor(short time.Duration) time.Duration {
	if *jsSoak > 0 {
		return *jsSoak
	}
	return short
}

// jsGuard bounds waits that only guard against hangs.
const jsGuard = 2 * time.Minute

func jsCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*jsGuard)
	t.Cleanup(cancel)
	return ctx
}

var jsUsers = []string{"host", "ann", "bob", "cat", "dan", "eve"}

var jsPresets = []aggregate.Permissions{
	{StageAccess: aggregate.Allowed, AcceptStageRequests: true},
	{StageAccess: aggregate.CanRequest},
	{StageAccess: aggregate.Allowed},
	{StageAccess: aggregate.NotAllowed},
	{StageAccess: aggregate.CanRequest, AcceptStageRequests: true},
}

func jsPreset(user string) aggregate.Permissions {
	switch user {
	case "host":
		return jsPresets[0]
	case "cat":
		return jsPresets[2]
	case "dan":
		return jsPresets[3]
	case "eve":
		return jsPresets[4]
	default:
		return jsPresets[1]
	}
}

// jsCommand draws a command; pick(n) returns a number in [0, n).
func jsCommand(pick func(n int) int) aggregate.Command {
	user := func() string { return jsUsers[pick(len(jsUsers))] }
	targets := func() []string {
		ts := make([]string, 1+pick(3))
		for i := range ts {
			ts[i] = user()
		}
		return ts
	}
	u := user()
	switch pick(19) {
	case 0:
		return aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: jsPreset(u)}}}
	case 1:
		return aggregate.Command{Action: aggregate.RemoveParticipant{UserID: u}}
	case 2:
		return aggregate.Command{Action: aggregate.UpdatePermissions{UserID: u, Permissions: jsPresets[pick(len(jsPresets))]}}
	case 3, 4, 5:
		return aggregate.Command{Actor: u, Action: aggregate.RequestAccess{}}
	case 6:
		return aggregate.Command{Actor: u, Action: aggregate.CancelRequestAccess{}}
	case 7, 8:
		return aggregate.Command{Actor: u, Action: aggregate.GrantAccess{Users: targets()}}
	case 9:
		return aggregate.Command{Actor: u, Action: aggregate.DenyAccess{Users: targets(), Reason: "not now"}}
	case 10, 11:
		return aggregate.Command{Actor: u, Action: aggregate.Join{}}
	case 12:
		return aggregate.Command{Actor: u, Action: aggregate.Leave{}}
	// The stage controls, mostly by the host; the stage ends rarely.
	case 14:
		if pick(3) == 0 {
			return aggregate.Command{Actor: "host", Action: aggregate.EndStage{}}
		}
		return aggregate.Command{Actor: "host", Action: aggregate.StartStage{}}
	case 15:
		if pick(2) == 0 {
			return aggregate.Command{Actor: "host", Action: aggregate.CloseRequests{DenyPending: pick(2) == 0}}
		}
		return aggregate.Command{Actor: "host", Action: aggregate.OpenRequests{}}
	case 16:
		if pick(2) == 0 {
			return aggregate.Command{Actor: "host", Action: aggregate.PromoteCoHost{UserID: user()}}
		}
		return aggregate.Command{Actor: "host", Action: aggregate.DemoteCoHost{UserID: user()}}
	case 17:
		return aggregate.Command{Actor: u, Action: aggregate.DeclineInvitation{}}
	default:
		return aggregate.Command{Actor: u, Action: aggregate.Kick{Users: targets(), Reason: "time's up"}}
	}
}

func jsIsDomain(err error) bool {
	var ae *aggregate.Error
	return errors.As(err, &ae)
}

func jsUTC() time.Time { return time.Now().UTC() }

func jsEngine(t testing.TB, nc *nats.Conn, opts ...natsstore.Option) (*stage.Engine, *natsstore.Store) {
	t.Helper()
	st, err := natsstore.New(jsCtx(t), nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(st, stage.WithClock(jsUTC), stage.WithRetry(200, time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); st.Close() })
	return eng, st
}

// jsSeed adds every user to the meetings.
func jsSeed(t testing.TB, eng *stage.Engine, meetings []string) {
	t.Helper()
	for _, m := range meetings {
		for _, u := range jsUsers {
			if _, err := eng.AddParticipant(jsCtx(t), m, aggregate.Participant{UserID: u, Permissions: jsPreset(u)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// jsAcks records the acknowledged commands: command id -> meeting and the
// versions of its events.
type jsAcks struct {
	mu   sync.Mutex
	cmds map[string]jsAck
}

type jsAck struct {
	meeting string
	first   uint64
	last    uint64
}

func (a *jsAcks) add(meeting, id string, r stage.Result) {
	if len(r.Events) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmds == nil {
		a.cmds = map[string]jsAck{}
	}
	ack := jsAck{meeting: meeting, first: r.Events[0].Version, last: r.Events[len(r.Events)-1].Version}
	if old, ok := a.cmds[id]; ok && old != ack {
		panic(fmt.Sprintf("command %s acknowledged twice with different events: %+v, %+v", id, old, ack))
	}
	a.cmds[id] = ack
}

// jsT is what the checks need of *testing.T and *rapid.T.
type jsT interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// jsReport is what jsVerify counts.
type jsReport struct {
	Events, Acked, Lost, Duplicates int
}

// jsVerify reads every meeting's log from st and checks it: the hash chain
// holds, versions run 1, 2, 3 ... with no gap, each command's events were
// appended once (no command applied twice), every acknowledged command is
// there exactly as acknowledged (none lost), the folded state keeps the
// invariants, and each engine's roster equals the fold of the log.
func jsVerify(t jsT, st eventstore.Store, meetings []string, acks *jsAcks, engines ...*stage.Engine) jsReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), jsGuard)
	defer cancel()
	var rep jsReport
	seen := map[string]jsAck{}
	for _, m := range meetings {
		s := aggregate.NewState(m)
		for e, err := range st.Load(ctx, m, 0) {
			if err != nil {
				t.Fatalf("meeting %s: %v", m, err)
			}
			if err := eventstore.CheckNext(&e, s.Version(), s.LastHash()); err != nil {
				t.Fatalf("meeting %s: %v", m, err)
			}
			aggregate.Evolve(s, &e)
			rep.Events++
			a, ok := seen[e.CommandID]
			switch {
			case !ok:
				seen[e.CommandID] = jsAck{meeting: m, first: e.Version, last: e.Version}
			case a.meeting == m && a.last == e.Version-1:
				a.last = e.Version
				seen[e.CommandID] = a
			default:
				rep.Duplicates++
				t.Errorf("meeting %s version %d: command %s applied again (first at %s version %d)", m, e.Version, e.CommandID, a.meeting, a.first)
			}
		}
		jsInvariants(t, s)
		want, _ := json.Marshal(projections.RosterOf(s))
		for i, eng := range engines {
			r, err := eng.Roster(ctx, m)
			if errors.Is(err, aggregate.ErrNoMeeting) && s.Version() == 0 {
				continue // no event in the log: no meeting
			}
			if err != nil {
				t.Fatalf("engine %d roster of %s: %v", i, m, err)
			}
			if got, _ := json.Marshal(r); string(got) != string(want) {
				t.Errorf("meeting %s: engine %d's roster\n%s\ndiffers from the log's\n%s", m, i, got, want)
			}
		}
	}
	if acks != nil {
		acks.mu.Lock()
		defer acks.mu.Unlock()
		for id, a := range acks.cmds {
			rep.Acked++
			if got, ok := seen[id]; !ok || got != a {
				rep.Lost++
				t.Errorf("acknowledged command %s (%+v) is not in the log as acknowledged (log: %+v, %v)", id, a, got, ok)
			}
		}
	}
	return rep
}

// jsInvariants checks the invariants of stage-rules.md that a single state
// shows (the others are checked by the engine's own property tests).
func jsInvariants(t jsT, s *aggregate.State) {
	t.Helper()
	var requested []string
	for _, m := range s.Members() {
		switch m.Status {
		case aggregate.OffStage, aggregate.RequestedToJoinStage, aggregate.AcceptedToJoinStage, aggregate.OnStage:
		default:
			t.Errorf("meeting %s: %s has status %v", s.MeetingID(), m.UserID, m.Status)
		}
		if m.Permissions.StageAccess == aggregate.NotAllowed && m.Status != aggregate.OffStage {
			t.Errorf("meeting %s: NotAllowed %s is %v", s.MeetingID(), m.UserID, m.Status)
		}
		if m.Status == aggregate.RequestedToJoinStage {
			requested = append(requested, m.UserID)
		}
	}
	var queue []string
	for _, m := range s.Queue() {
		queue = append(queue, m.UserID)
	}
	slices.Sort(requested)
	slices.Sort(queue)
	if !slices.Equal(requested, queue) {
		t.Errorf("meeting %s: queue %v, requested %v", s.MeetingID(), queue, requested)
	}
	if s.Phase() == aggregate.PhaseEnded {
		for _, m := range s.Members() {
			if m.Status != aggregate.OffStage {
				t.Errorf("meeting %s: the stage ended, and %s is %v", s.MeetingID(), m.UserID, m.Status)
			}
		}
	}
}

// jsEmbedded starts an embedded server in a temp dir.
func jsEmbedded(t testing.TB, opts ...natsstore.ServerOption) *natsstore.Server {
	t.Helper()
	srv, err := natsstore.StartServer(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func jsConnect(t testing.TB, srv *natsstore.Server) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestJetStream_EnginesShareMeetings runs several Engines, each on its own
// connection (as separate processes would be), hammering the same meetings
// at once. Conflicts between them are resolved by catch-up and retry.
func TestJetStream_EnginesShareMeetings(t *testing.T) {
	srv := jsEmbedded(t)
	const nEngines, workers = 3, 3
	perWorker := 40
	if *jsSoak > 0 {
		perWorker = 2000
	}
	meetings := []string{"m0", "m1", "m2"}
	engines := make([]*stage.Engine, nEngines)
	for i := range engines {
		engines[i], _ = jsEngine(t, jsConnect(t, srv))
	}
	jsSeed(t, engines[0], meetings)
	var acks jsAcks
	var domain atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i, eng := range engines {
		for w := range workers {
			r := rand.New(rand.NewPCG(uint64(i), uint64(w)))
			wg.Go(func() {
				for range perWorker {
					m := meetings[r.IntN(len(meetings))]
					id := uuid.NewString()
					res, err := eng.Execute(jsCtx(t), m, jsCommand(r.IntN), stage.WithIdempotencyKey(id))
					switch {
					case err == nil:
						acks.add(m, id, res)
					case jsIsDomain(err):
						domain.Add(1)
					default:
						t.Errorf("engine %d: %v", i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	ctrl := jsConnect(t, srv)
	_, st := jsEngine(t, ctrl)
	rep := jsVerify(t, st, meetings, &acks, engines...)
	t.Logf("%d engines x %d workers: %d commands in %v, %d applied (%d events), %d rejected by the rules; lost %d, duplicates %d",
		nEngines, workers, nEngines*workers*perWorker, elapsed.Round(time.Millisecond), rep.Acked, rep.Events, domain.Load(), rep.Lost, rep.Duplicates)
}

// TestJetStream_EnginesRapid drives two Engines on separate connections,
// interleaving their commands on shared meetings: each must follow the
// other's writes, and the log must replay to both engines' view.
func TestJetStream_EnginesRapid(t *testing.T) {
	srv := jsEmbedded(t)
	ncs := []*nats.Conn{jsConnect(t, srv), jsConnect(t, srv)}
	var run atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		n := run.Add(1)
		meetings := []string{fmt.Sprintf("r%d-a", n), fmt.Sprintf("r%d-b", n)}
		engines := []*stage.Engine{}
		var st *natsstore.Store
		for _, nc := range ncs {
			eng, s := jsEngine(t, nc)
			engines, st = append(engines, eng), s
		}
		var acks jsAcks
		type sent struct {
			id  string
			cmd aggregate.Command
		}
		applied := map[string][]sent{}
		for i := range rapid.IntRange(1, 40).Draw(rt, "steps") {
			e := rapid.IntRange(0, len(engines)-1).Draw(rt, fmt.Sprintf("engine%d", i))
			m := meetings[rapid.IntRange(0, len(meetings)-1).Draw(rt, fmt.Sprintf("meeting%d", i))]
			pick := func(k int) int { return rapid.IntRange(0, k-1).Draw(rt, "pick") }
			cmd := jsCommand(pick)
			id := uuid.NewString()
			retry := false
			if prev := applied[m]; len(prev) > 0 && rapid.IntRange(0, 4).Draw(rt, "retry") == 0 {
				// Retry an applied command, maybe on the other engine: it
				// must not apply twice.
				s := prev[rapid.IntRange(0, len(prev)-1).Draw(rt, "which")]
				id, cmd, retry = s.id, s.cmd, true
			}
			res, err := engines[e].Execute(jsCtx(t), m, cmd, stage.WithIdempotencyKey(id))
			if err != nil && !jsIsDomain(err) {
				rt.Fatalf("engine %d on %s: %v", e, m, err)
			}
			if retry && (err != nil || !res.Duplicate) {
				rt.Fatalf("engine %d on %s: retry of %s: %+v, %v; want the duplicate", e, m, id, res, err)
			}
			if err == nil && !res.Duplicate {
				acks.add(m, id, res)
				applied[m] = append(applied[m], sent{id, cmd})
			}
		}
		jsVerify(rt, st, meetings, &acks, engines...)
	})
}

// jsFreeAddr returns a free 127.0.0.1 port.
func jsFreeAddr(t testing.TB) (string, int) {
	t.Helper()
	return "127.0.0.1", natstest.FreePort(t)
}

// jsLoad runs commands with idempotency keys from several goroutines until
// stop is closed; a command that fails for any reason but the rules is
// retried with the same key until it is acknowledged, as a careful client
// would. It records each acknowledgement and its time.
// jsAckTime is when the acknowledged attempt of a command began, and when
// its acknowledgement came.
type jsAckTime struct{ began, at time.Time }

type jsLoad struct {
	acks     jsAcks
	domain   atomic.Int64
	retries  atomic.Int64
	mu       sync.Mutex
	ackTimes []jsAckTime
	maxRetry time.Duration
}

func (l *jsLoad) run(t testing.TB, engines []*stage.Engine, meetings []string, workers int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for i := range workers {
		eng := engines[i%len(engines)]
		r := rand.New(rand.NewPCG(uint64(i), 7))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := meetings[r.IntN(len(meetings))]
				cmd := jsCommand(r.IntN)
				id := uuid.NewString()
				began := time.Now()
				for {
					// A short timeout per attempt, as a client that retries would
					// use: a request lost with a dying server is abandoned soon.
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					attempt := time.Now()
					res, err := eng.Execute(ctx, m, cmd, stage.WithIdempotencyKey(id))
					cancel()
					if err == nil {
						l.acks.add(m, id, res)
						l.mu.Lock()
						l.ackTimes = append(l.ackTimes, jsAckTime{attempt, time.Now()})
						if d := time.Since(began); d > l.maxRetry {
							l.maxRetry = d
						}
						l.mu.Unlock()
						break
					}
					if jsIsDomain(err) {
						l.domain.Add(1)
						break
					}
					if time.Since(began) > jsGuard {
						t.Errorf("command %s on %s not acknowledged after %v: %v", id, m, jsGuard, err)
						return
					}
					l.retries.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

// firstAckAfter returns the time of the first acknowledgement of an
// attempt that began at or after t0.
func (l *jsLoad) firstAckAfter(t0 time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, a := range l.ackTimes {
		if !a.began.Before(t0) && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	return first, !first.IsZero()
}

func (l *jsLoad) acksAfter(t0 time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.ackTimes {
		if a.at.After(t0) {
			n++
		}
	}
	return n
}

func jsWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(jsGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJetStream_ServerRestart kills the server under load and starts it
// again on the same directory and port. Engines and a live subscription
// carry on by themselves; no acknowledged command is lost, none is applied
// twice, and the subscription sees every event once, in order.
func TestJetStream_ServerRestart(t *testing.T) {
	dir := t.TempDir()
	host, port := jsFreeAddr(t)
	hostport := net.JoinHostPort(host, strconv.Itoa(port))
	srv, err := natsstore.StartServer(dir, natsstore.WithListen(hostport))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown() }()
	dial := func() *nats.Conn {
		nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	meetings := []string{"k0", "k1", "k2", "k3"}
	var engines []*stage.Engine
	var stores []*natsstore.Store
	for range 2 {
		eng, st := jsEngine(t, dial())
		engines, stores = append(engines, eng), append(stores, st)
	}
	jsSeed(t, engines[0], meetings)

	// A live subscriber across the restart.
	subCtx, stopSub := context.WithCancel(context.Background())
	defer stopSub()
	var subMu sync.Mutex
	var subSeqs []uint64
	subDone := make(chan error, 1)
	go func() {
		for e, err := range stores[1].Subscribe(subCtx, 0) {
			if err != nil {
				if errors.Is(err, context.Canceled) {
					err = nil
				}
				subDone <- err
				return
			}
			subMu.Lock()
			subSeqs = append(subSeqs, e.Seq)
			subMu.Unlock()
		}
		subDone <- nil
	}()

	var load jsLoad
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() { load.run(t, engines, meetings, 4, stop); close(loadDone) }()

	// Run a phase, restart, run another; a soak restarts every 3s or so.
	phase, restarts := 500*time.Millisecond, 1
	if *jsSoak > 0 {
		phase, restarts = 1500*time.Millisecond, max(1, int(*jsSoak/(3*time.Second)))
	}
	var downtimes, recoveries []time.Duration
	for range restarts {
		jsWaitFor(t, "commands before the restart", func() bool { return load.acksAfter(time.Now().Add(-time.Hour)) > 20 })
		time.Sleep(phase)
		killed := time.Now()
		srv.Shutdown()
		stopped := time.Now()
		time.Sleep(200 * time.Millisecond)
		srv, err = natsstore.StartServer(dir, natsstore.WithListen(hostport))
		if err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		t.Logf("shutdown took %v, start %v", stopped.Sub(killed), restarted.Sub(stopped))
		downtimes = append(downtimes, restarted.Sub(killed))
		jsWaitFor(t, "a command acknowledged after the restart", func() bool { _, ok := load.firstAckAfter(restarted); return ok })
		first, _ := load.firstAckAfter(restarted)
		recoveries = append(recoveries, first.Sub(restarted))
		time.Sleep(phase)
	}
	close(stop)
	<-loadDone

	rep := jsVerify(t, stores[0], meetings, &load.acks, engines...)

	// The subscription saw every event in the stream, once, in order.
	all, err := collectSeqs(stores[0].ReadAll(jsCtx(t), 0))
	if err != nil {
		t.Fatal(err)
	}
	jsWaitFor(t, "the subscriber to catch up", func() bool {
		subMu.Lock()
		defer subMu.Unlock()
		return len(subSeqs) >= len(all)
	})
	stopSub()
	if err := <-subDone; err != nil {
		t.Fatalf("subscription ended with %v", err)
	}
	subMu.Lock()
	if !slices.Equal(subSeqs[:len(all)], all) {
		t.Errorf("subscription across the restart saw %d events, the stream has %d: gap or duplicate", len(subSeqs), len(all))
	}
	subMu.Unlock()
	t.Logf("restarts %d, downtime %v, first ack after the restart %v; %d commands acknowledged, %d rejected by the rules, %d retries of failed attempts, slowest command %v; lost %d, duplicates %d; subscriber saw %d/%d events",
		restarts, downtimes, recoveries, rep.Acked, load.domain.Load(), load.retries.Load(), load.maxRetry.Round(time.Millisecond), rep.Lost, rep.Duplicates, len(subSeqs), len(all))
}

func collectSeqs(seq func(func(events.Envelope, error) bool)) ([]uint64, error) {
	var out []uint64
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e.Seq)
	}
	return out, nil
}

// TestJetStream_ClusterFailover runs the engine on a three-node cluster with
// an R3 stream, stops the stream's leader while commands flow, and checks
// that every acknowledged event survives and writes resume.
func TestJetStream_ClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	servers := natstest.StartCluster(t, "stage")
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	dial := func(url string) *nats.Conn {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	// The stream can be created once the cluster has a meta leader.
	opts := []natsstore.Option{natsstore.WithReplicas(3)}
	jsWaitFor(t, "a JetStream meta leader", func() bool {
		return slices.ContainsFunc(servers, (*server.Server).JetStreamIsLeader)
	})
	nc := dial(strings.Join(urls, ","))
	jsWaitFor(t, "the cluster to create an R3 stream", func() bool {
		// A JetStream request sent while the cluster settles may get no
		// answer at all: bound each attempt.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := natsstore.New(ctx, nc, opts...)
		if err == nil {
			st.Close()
		}
		return err == nil
	})
	// The conformance suite on R3 streams: conflicts there come back with
	// their own error code (10164), and reads may reach replicas.
	var streams atomic.Int64
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) eventstore.Store {
			n := streams.Add(1)
			st, err := natsstore.New(jsCtx(t), nc, natsstore.WithReplicas(3),
				natsstore.WithStream(fmt.Sprintf("R3_%d", n)), natsstore.WithSubjectPrefix(fmt.Sprintf("r3.%d", n)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})

	meetings := []string{"c0", "c1", "c2"}
	var engines []*stage.Engine
	for i := range 2 {
		// Each engine knows every server, starting from a different one.
		order := append(slices.Clone(urls[i:]), urls[:i]...)
		eng, _ := jsEngine(t, dial(strings.Join(order, ",")), opts...)
		engines = append(engines, eng)
	}
	jsSeed(t, engines[0], meetings)

	var load jsLoad
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() { load.run(t, engines, meetings, 4, stop); close(loadDone) }()

	runFor := jsRunFor(1500 * time.Millisecond)
	jsWaitFor(t, "commands before the failover", func() bool { return load.acksAfter(time.Now().Add(-time.Hour)) > 20 })
	time.Sleep(runFor / 2)
	leader := -1
	jsWaitFor(t, "a stream leader", func() bool {
		for i, s := range servers {
			if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, natsstore.DefaultStream) {
				leader = i
				return true
			}
		}
		return false
	})
	killed := time.Now()
	servers[leader].Shutdown()
	var elected atomic.Int64 // nanoseconds after the stop
	go func() {
		for time.Since(killed) < jsGuard {
			for i, s := range servers {
				if i != leader && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, natsstore.DefaultStream) {
					elected.Store(int64(time.Since(killed)))
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	jsWaitFor(t, "a command acknowledged after the leader stopped", func() bool { _, ok := load.firstAckAfter(killed); return ok })
	first, _ := load.firstAckAfter(killed)
	failover := first.Sub(killed)
	time.Sleep(runFor / 2)
	close(stop)
	<-loadDone

	// Verify from a surviving server.
	survivor := servers[(leader+1)%3]
	_, st := jsEngine(t, dial(survivor.ClientURL()), opts...)
	rep := jsVerify(t, st, meetings, &load.acks, engines...)
	t.Logf("stopped stream leader n%d: new leader elected after %v, first command begun after the stop acknowledged %v after it; %d commands acknowledged, %d rejected by the rules, %d retries of failed attempts, slowest command %v; lost %d, duplicates %d",
		leader, time.Duration(elected.Load()).Round(time.Millisecond), failover.Round(time.Millisecond), rep.Acked, load.domain.Load(), load.retries.Load(), load.maxRetry.Round(time.Millisecond), rep.Lost, rep.Duplicates)
}

// TestJetStream_HostileInput feeds the engine on the JetStream store ids
// that try subject injection, an oversized reason, and a foreign message in
// a meeting's subject.
func TestJetStream_HostileInput(t *testing.T) {
	srv := jsEmbedded(t)
	nc := jsConnect(t, srv)
	eng, st := jsEngine(t, nc)
	ctx := jsCtx(t)
	jsSeed(t, eng, []string{"h1"})
	before, _ := collectSeqs(st.ReadAll(ctx, 0))

	for _, id := range []string{"", "x\x00y", "a\tb", "a\xffb", strings.Repeat("x", events.MaxIDLen+1)} {
		if _, err := eng.RequestAccess(ctx, id, "ann"); !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("RequestAccess on meeting %q: %v, want ErrInvalidCommand", id, err)
		}
		if _, err := eng.AddParticipant(ctx, "h1", aggregate.Participant{UserID: id, Permissions: jsPresets[1]}); !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("AddParticipant %q: %v, want ErrInvalidCommand", id, err)
		}
		if _, err := eng.Roster(ctx, id); !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("Roster of meeting %q: %v, want ErrInvalidCommand", id, err)
		}
	}
	if _, err := eng.RequestAccess(ctx, "h1", "ann"); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", int(nc.MaxPayload()))
	_, err := eng.Execute(ctx, "h1", aggregate.Command{Actor: "host", Action: aggregate.DenyAccess{Users: []string{"ann"}, Reason: huge}})
	// The rules cap a reason's length; the store refuses what still exceeds
	// the server's limit (see natsstore's TestStore_Oversized).
	if !errors.Is(err, aggregate.ErrInvalidCommand) && !errors.Is(err, natsstore.ErrTooLarge) {
		t.Fatalf("DenyAccess with a %d-byte reason: %v, want ErrInvalidCommand or ErrTooLarge", len(huge), err)
	}
	after, _ := collectSeqs(st.ReadAll(ctx, 0))
	if len(after) != len(before)+1 {
		t.Fatalf("hostile commands stored %d events", len(after)-len(before)-1)
	}
	// The meeting goes on.
	if _, err := eng.DenyAccess(ctx, "h1", "host", []string{"ann"}); err != nil {
		t.Fatal(err)
	}

	// A message someone else published on the meeting's subject.
	ack, err := nc.Request(st.Subject("h1"), []byte(`{"schema":1,"hello":"world"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var pub struct{ Seq uint64 }
	if err := json.Unmarshal(ack.Data, &pub); err != nil || pub.Seq == 0 {
		t.Fatalf("publish ack %s: %v", ack.Data, err)
	}
	other, _ := jsEngine(t, jsConnect(t, srv))
	for i, e := range []*stage.Engine{eng, other} {
		_, err := e.Roster(ctx, "h1")
		var ce *eventstore.CorruptError
		if !errors.As(err, &ce) || ce.Seq != pub.Seq {
			t.Errorf("engine %d: Roster after a foreign message: %v, want a CorruptError at sequence %d", i, err, pub.Seq)
		}
		if _, err := e.RequestAccess(ctx, "h1", "bob"); !errors.As(err, &ce) {
			t.Errorf("engine %d: RequestAccess after a foreign message: %v, want a CorruptError", i, err)
		}
	}
}
